// Webhook receiver: documented status codes and their order, idempotent storage in D1, concurrent duplicate deliveries.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { contract, makeEmbedded, REREAD_EVERY_REQUEST, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { sealEnvelope, webhookSignature } from './helpers/sign.mjs';

const W = contract.webhook;
/** @type {import('./helpers/edge.mjs').Edge[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {Parameters<typeof startEdge>[0]} [opts] @param {{ secret?: boolean }} [seed] */
async function edge(opts, seed = { secret: true }) {
	const e = await startEdge(opts);
	open.push(e);
	if (seed.secret) {
		await e.kv.put(
			contract.kv_keys.secret_prefix + W.secret_name,
			sealEnvelope(contract, e.relayKey, TENANT, W.secret_name, WEBHOOK_SECRET),
		);
	}
	return e;
}

/**
 * @param {import('./helpers/edge.mjs').Edge} e
 * @param {{ body?: string | Uint8Array | ReadableStream, id?: string | null, signature?: string | null, topic?: string, headers?: Record<string, string>, method?: string }} [d]
 */
function deliver(e, d = {}) {
	const body = d.body ?? JSON.stringify({ order: 1, total: '9.99' });
	const headers = { ...(d.headers ?? {}) };
	const signature =
		d.signature === undefined
			? webhookSignature(WEBHOOK_SECRET, typeof body === 'string' ? body : Buffer.from(/** @type {Uint8Array} */ (body)))
			: d.signature;
	if (signature !== null) headers[W.signature_header] = signature;
	if (d.id !== null) headers[W.id_header] = d.id ?? 'evt-1';
	headers[W.topic_header] = d.topic ?? 'orders/create';
	/** @type {any} */
	const init = { method: d.method ?? 'POST', body, headers };
	if (body instanceof ReadableStream) init.duplex = 'half';
	return e.fetchJson(W.path, init);
}

/** @param {import('./helpers/edge.mjs').Edge} e */
async function rows(e) {
	return (await e.db.prepare('SELECT webhook_id, topic, body FROM webhook_events ORDER BY webhook_id').all()).results;
}

describe('accepted deliveries', () => {
	test('first delivery is stored with its topic and raw body', async () => {
		const e = await edge();
		const body = JSON.stringify({ id: 7, note: 'Grüße 👋' });
		assert.deepEqual(await deliver(e, { body }).then((r) => [r.status, r.body]), [200, { stored: true, duplicate: false }]);
		assert.deepEqual(await rows(e), [{ webhook_id: 'evt-1', topic: 'orders/create', body }]);
	});

	test('a replay of the same id is 200 duplicate and stores nothing new', async () => {
		const e = await edge();
		await deliver(e);
		const replay = await deliver(e, { body: JSON.stringify({ different: true }) });
		assert.deepEqual([replay.status, replay.body], [200, { stored: false, duplicate: true }]);
		assert.equal((await rows(e)).length, 1);
		assert.equal((await rows(e))[0].body, JSON.stringify({ order: 1, total: '9.99' }), 'the first body is kept');
	});

	test('concurrent duplicate deliveries: exactly one row, exactly one "stored"', async () => {
		const e = await edge();
		const answers = await Promise.all(Array.from({ length: 24 }, () => deliver(e, { id: 'evt-race' })));
		assert.ok(answers.every((a) => a.status === 200));
		assert.equal(answers.filter((a) => a.body.stored).length, 1);
		assert.equal(answers.filter((a) => a.body.duplicate).length, 23);
		assert.equal((await rows(e)).length, 1);
	});

	test('a body of exactly the maximum size is accepted', async () => {
		const e = await edge();
		const prefix = '{"pad":"';
		const body = prefix + 'x'.repeat(W.max_body_bytes - prefix.length - 2) + '"}';
		assert.equal(Buffer.byteLength(body), W.max_body_bytes);
		assert.equal((await deliver(e, { body })).status, 200);
	});
});

describe('rejected deliveries', () => {
	test('bad signature 401, nothing stored', async () => {
		const e = await edge();
		for (const signature of [
			webhookSignature('wrong-secret', '{}'),
			webhookSignature(`${WEBHOOK_SECRET}x`, JSON.stringify({ order: 1, total: '9.99' })),
		]) {
			const r = await deliver(e, { signature });
			assert.deepEqual([r.status, r.body], [401, { error: 'unauthorized' }]);
		}
		assert.deepEqual(await rows(e), []);
	});

	test('missing, empty, non-base64 or truncated signature: 401', async () => {
		const e = await edge();
		const good = webhookSignature(WEBHOOK_SECRET, JSON.stringify({ order: 1, total: '9.99' }));
		const truncated = Buffer.from(good, 'base64').subarray(0, 16).toString('base64');
		for (const signature of [null, '', '%%%', truncated, good.toLowerCase()]) {
			assert.equal((await deliver(e, { signature })).status, 401, String(signature));
		}
	});

	test('body over the limit: 413, by Content-Length and by a streamed body without one', async () => {
		const e = await edge();
		const big = '{"a":"' + 'x'.repeat(W.max_body_bytes) + '"}';
		assert.deepEqual(await deliver(e, { body: big }).then((r) => [r.status, r.body]), [413, { error: 'payload_too_large' }]);
		const chunk = new Uint8Array(16 * 1024).fill(0x20);
		let sent = 0;
		const stream = new ReadableStream({
			pull(controller) {
				if (sent > W.max_body_bytes) return controller.close();
				sent += chunk.length;
				controller.enqueue(chunk);
			},
		});
		assert.equal((await deliver(e, { body: stream, signature: 'AAAA' })).status, 413);
		assert.deepEqual(await rows(e), []);
	});

	test('malformed JSON or missing/invalid id: 400 after a valid signature', async () => {
		const e = await edge();
		for (const body of ['{not json', '', '\u00ff'.repeat(3)]) {
			assert.equal((await deliver(e, { body })).status, 400, JSON.stringify(body));
		}
		const invalidUtf8 = new Uint8Array([0x22, 0xc3, 0x28, 0x22]);
		assert.equal((await deliver(e, { body: invalidUtf8 })).status, 400, 'invalid UTF-8');
		for (const id of [null, '', 'a'.repeat(257), 'has space', 'tab\there']) {
			assert.equal((await deliver(e, { id })).status, 400, JSON.stringify(id));
		}
		assert.deepEqual(await rows(e), []);
	});

	test('checks run in the documented order: 413 before 401, 401 before 400', async () => {
		const e = await edge();
		const big = 'x'.repeat(W.max_body_bytes + 1);
		assert.equal((await deliver(e, { body: big, signature: null })).status, 413);
		assert.equal((await deliver(e, { body: '{not json', signature: 'AAAA', id: null })).status, 401);
	});

	test('secret never relayed, or tampered from a cold start: 503 with a generic message', async () => {
		const missing = await edge({}, { secret: false });
		assert.deepEqual(await deliver(missing).then((r) => [r.status, r.body]), [503, { error: 'unavailable' }]);
		const tampered = await edge({}, { secret: false });
		const envelope = JSON.parse(sealEnvelope(contract, tampered.relayKey, TENANT, W.secret_name, WEBHOOK_SECRET));
		envelope.ct = Buffer.from(Buffer.from(envelope.ct, 'base64').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64');
		await tampered.kv.put(contract.kv_keys.secret_prefix + W.secret_name, JSON.stringify(envelope));
		const r = await deliver(tampered);
		assert.deepEqual([r.status, r.body], [503, { error: 'unavailable' }]);
	});

	test('schema behind or D1 missing: 503 and nothing half-written', async () => {
		// Only the first migration: webhook_events exists, so only the schema gate can refuse the write.
		const behind = await edge({ migrate: 1 });
		assert.deepEqual(await deliver(behind).then((r) => [r.status, r.body]), [503, { error: 'unavailable' }]);
		assert.deepEqual(await rows(behind), []);
		const noD1 = await edge({ withoutD1: true });
		assert.equal((await deliver(noD1)).status, 503);
	});
});

describe('secret lifecycle and exact bytes', () => {
	const rereadEveryRequest = () => makeEmbedded({ contract: REREAD_EVERY_REQUEST });

	test('deleting the secret from KV switches webhooks off in a running isolate', async () => {
		const e = await edge({ embedded: rereadEveryRequest() });
		assert.equal((await deliver(e, { id: 'evt-a' })).status, 200);
		await e.kv.delete(contract.kv_keys.secret_prefix + W.secret_name);
		assert.deepEqual(await deliver(e, { id: 'evt-b' }).then((r) => [r.status, r.body]), [503, { error: 'unavailable' }]);
		assert.deepEqual(
			(await rows(e)).map((r) => r.webhook_id),
			['evt-a'],
		);
	});

	test('an empty secret is unavailable (503), not an internal error', async () => {
		const e = await edge({}, { secret: false });
		await e.kv.put(contract.kv_keys.secret_prefix + W.secret_name, sealEnvelope(contract, e.relayKey, TENANT, W.secret_name, ''));
		const r = await deliver(e, { signature: webhookSignature('', '{}'), body: '{}' });
		assert.deepEqual([r.status, r.body], [503, { error: 'unavailable' }]);
	});

	test('a body with a leading BOM is not JSON: 400, nothing stored', async () => {
		const e = await edge();
		const r = await deliver(e, { body: '\uFEFF{"order":1}' });
		assert.deepEqual([r.status, r.body], [400, { error: 'bad_request' }]);
		assert.deepEqual(await rows(e), []);
	});
});
