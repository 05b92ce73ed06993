// Webhook replay: idempotency is bound to what the signature covers (the exact body), so nothing an attacker can
// change without the secret — id header, topic header, header order or case, signature spelling — stores an event twice.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { applyMigrations } from '../tools/migrations.mjs';
import { contract, migrations, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { sealEnvelope, webhookSignature } from './helpers/sign.mjs';

const W = contract.webhook;
const BODY = JSON.stringify({ order: 1, total: '9.99', note: 'Grüße' });
const SIGNATURE = webhookSignature(WEBHOOK_SECRET, BODY);

/** @type {import('./helpers/edge.mjs').Edge[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {Parameters<typeof startEdge>[0]} [opts] */
async function edge(opts) {
	const e = await startEdge(opts);
	open.push(e);
	const name = W.secret_name;
	await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
	return e;
}

/** Raw delivery: headers exactly as given (a list, so order and duplicates are the test's to choose). @param {import('./helpers/edge.mjs').Edge} e @param {string | Uint8Array} body @param {[string, string][]} headers */
async function post(e, body, headers) {
	const h = new Headers();
	for (const [k, v] of headers) h.append(k, v);
	return e.fetchJson(W.path, { method: 'POST', body, headers: h });
}

/** @param {{ id?: string, topic?: string, signature?: string }} [o] @returns {[string, string][]} */
const standard = (o = {}) => [
	[W.signature_header, o.signature ?? SIGNATURE],
	[W.id_header, o.id ?? 'evt-original'],
	[W.topic_header, o.topic ?? 'orders/create'],
];

/** @param {import('./helpers/edge.mjs').Edge} e */
const rows = async (e) =>
	(await e.db.prepare('SELECT webhook_id, topic, body, body_sha256 FROM webhook_events ORDER BY received_at, webhook_id').all()).results;

const sha256 = (/** @type {string} */ text) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('a captured delivery resent is a duplicate, whatever the unsigned headers say', () => {
	/** One edge for the table: each case signs its own body, so cases cannot see each other's rows. @type {import('./helpers/edge.mjs').Edge} */
	let shared;
	before(async () => {
		shared = await startEdge();
		const name = W.secret_name;
		await shared.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, shared.relayKey, TENANT, name, WEBHOOK_SECRET));
	});
	after(() => shared?.close());

	/** Each variant keeps the body and its valid signature, and changes only what the signature does not cover. */
	const replays = {
		'a new id': (/** @type {[string, string][]} */ h) =>
			h.map(([k, v]) => /** @type {[string, string]} */ ([k, k === W.id_header ? 'evt-new' : v])),
		'another topic': (/** @type {[string, string][]} */ h) =>
			h.map(([k, v]) => /** @type {[string, string]} */ ([k, k === W.topic_header ? 'app/uninstalled' : v])),
		'a new id and another topic': (/** @type {[string, string][]} */ h) =>
			h.map(
				([k, v]) => /** @type {[string, string]} */ ([k, k === W.id_header ? 'evt-other' : k === W.topic_header ? 'customers/redact' : v]),
			),
		'no topic at all': (/** @type {[string, string][]} */ h) => h.filter(([k]) => k !== W.topic_header),
		'headers in another order': (/** @type {[string, string][]} */ h) => [...h].reverse(),
		'header names in another case': (/** @type {[string, string][]} */ h) =>
			h.map(([k, v]) => /** @type {[string, string]} */ ([k.toUpperCase(), v])),
		'the same everything': (/** @type {[string, string][]} */ h) => h,
		'extra unsigned headers': (/** @type {[string, string][]} */ h) => [
			...h,
			['X-Forwarded-For', '203.0.113.9'],
			['X-Webhook-Shop-Domain', 'evil'],
		],
	};
	for (const [name, vary] of Object.entries(replays)) {
		test(name, async () => {
			const body = JSON.stringify({ order: 1, total: '9.99', case: name });
			const id = `evt-${sha256(name).slice(0, 12)}`;
			const headers = standard({ id, signature: webhookSignature(WEBHOOK_SECRET, body) });
			assert.deepEqual((await post(shared, body, headers)).body, { stored: true, duplicate: false });
			const replay = await post(shared, body, vary(headers));
			assert.deepEqual([replay.status, replay.body], [200, { stored: false, duplicate: true }]);
			const stored = (await rows(shared)).filter((r) => r.body === body);
			assert.deepEqual(stored, [{ webhook_id: id, topic: 'orders/create', body, body_sha256: sha256(body) }]);
		});
	}

	test('concurrent replays under distinct ids and topics: exactly one row', async () => {
		const e = await edge();
		const answers = await Promise.all(
			Array.from({ length: 20 }, (_, i) => post(e, BODY, standard({ id: `evt-${i}`, topic: `topic/${i % 3}` }))),
		);
		assert.ok(answers.every((a) => a.status === 200));
		assert.equal(answers.filter((a) => a.body.stored).length, 1);
		assert.equal((await rows(e)).length, 1);
	});

	test('the id header still counts: a new body under a stored id is a duplicate too (the first body is kept)', async () => {
		const e = await edge();
		await post(e, BODY, standard());
		const other = JSON.stringify({ order: 2 });
		const r = await post(e, other, standard({ signature: webhookSignature(WEBHOOK_SECRET, other) }));
		assert.deepEqual(r.body, { stored: false, duplicate: true });
		assert.deepEqual(
			(await rows(e)).map((row) => row.body),
			[BODY],
		);
	});

	test('distinct signed bodies under distinct ids are distinct events', async () => {
		const e = await edge();
		for (let i = 0; i < 5; i++) {
			const body = JSON.stringify({ order: i });
			const r = await post(e, body, standard({ id: `evt-${i}`, signature: webhookSignature(WEBHOOK_SECRET, body) }));
			assert.deepEqual(r.body, { stored: true, duplicate: false });
		}
		assert.equal((await rows(e)).length, 5);
	});
});

describe('a changed body or signature spelling never passes as a new event', () => {
	/** Nothing in this block may ever be stored, so one edge serves every case. @type {import('./helpers/edge.mjs').Edge} */
	let e;
	before(async () => {
		e = await startEdge();
		const name = W.secret_name;
		await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
	});
	after(() => e?.close());

	// Same JSON meaning, other bytes: the original signature no longer matches, so it is not a delivery at all.
	const altered = {
		'a trailing newline': `${BODY}\n`,
		'a leading space': ` ${BODY}`,
		'CRLF inside': BODY.replace(',', ',\r\n'),
		'pretty-printed': JSON.stringify(JSON.parse(BODY), null, 2),
		'keys reordered': JSON.stringify({ total: '9.99', order: 1, note: 'Grüße' }),
		'a BOM in front': `\uFEFF${BODY}`,
		'unicode escaped': BODY.replace('ü', '\\u00fc'),
		'NFD-normalised': BODY.normalize('NFD'),
	};
	for (const [name, body] of Object.entries(altered)) {
		test(`body with ${name}, original signature: 401, nothing stored`, async () => {
			assert.notEqual(body, BODY);
			const r = await post(e, body, standard({ id: 'evt-altered' }));
			assert.deepEqual([r.status, r.body], [401, { error: 'unauthorized' }]);
			assert.deepEqual(await rows(e), []);
		});
	}

	const raw = Buffer.from(SIGNATURE, 'base64');
	const spellings = {
		'base64url alphabet': raw.toString('base64url'),
		'no padding': SIGNATURE.replace(/=+$/, ''),
		hex: raw.toString('hex'),
		'surrounding spaces inside a joined value': `${SIGNATURE}, ${SIGNATURE}`,
		'a "sha256=" prefix': `sha256=${SIGNATURE}`,
		'line-wrapped': `${SIGNATURE.slice(0, 20)}\t${SIGNATURE.slice(20)}`,
	};
	for (const [name, signature] of Object.entries(spellings)) {
		test(`the right MAC spelt as ${name}: 401`, async () => {
			const r = await post(e, BODY, standard({ id: 'evt-spelling', signature }));
			assert.deepEqual([r.status, r.body], [401, { error: 'unauthorized' }]);
			assert.deepEqual(await rows(e), []);
		});
	}

	test('two signature headers (one right, one wrong) are one joined value: 401', async () => {
		const wrong = webhookSignature('other-secret', BODY);
		const r = await post(e, BODY, [[W.signature_header, SIGNATURE], [W.signature_header, wrong], ...standard().slice(1)]);
		assert.equal(r.status, 401);
	});

	test('two id headers are one joined value, not an id: 400', async () => {
		const r = await post(e, BODY, [...standard(), [W.id_header, 'evt-second']]);
		assert.deepEqual([r.status, r.body], [400, { error: 'bad_request' }]);
		assert.deepEqual(await rows(e), []);
	});
});

describe('rows stored before the body hash existed', () => {
	test('a replay of a pre-0003 delivery under a new id is a duplicate', async () => {
		const upTo = migrations.findIndex((m) => m.name === '0003_webhook_body_hash.sql');
		assert.ok(upTo > 0, 'the body-hash migration exists');
		const e = await edge({ migrate: upTo });
		// What the previous Worker wrote: no body hash column yet.
		await e.db
			.prepare("INSERT INTO webhook_events (webhook_id, topic, body, received_at) VALUES ('evt-old', 'orders/create', ?1, ?2)")
			.bind(BODY, new Date().toISOString())
			.run();
		await applyMigrations(e.db, migrations);
		const replay = await post(e, BODY, standard({ id: 'evt-replayed' }));
		assert.deepEqual([replay.status, replay.body], [200, { stored: false, duplicate: true }]);
		const fresh = JSON.stringify({ order: 3 });
		const r = await post(e, fresh, standard({ id: 'evt-fresh', signature: webhookSignature(WEBHOOK_SECRET, fresh) }));
		assert.deepEqual(r.body, { stored: true, duplicate: false });
		assert.deepEqual(
			(await rows(e)).map((row) => [row.webhook_id, row.body_sha256]),
			[
				['evt-old', null],
				['evt-fresh', sha256(fresh)],
			],
		);
	});
});
