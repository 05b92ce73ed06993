// Health: public shape, token-gated detail (time window, replay in one isolate and across isolates), D1 and schema state,
// and no secret material in any answer.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { workerModules } from '../tools/bundle.mjs';
import { applyMigrations } from '../tools/migrations.mjs';
import { COMPATIBILITY_DATE, contract, makeEmbedded, migrations, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { healthToken, sealEnvelope, signConfig } from './helpers/sign.mjs';

const H = contract.health;
/** @type {{ close(): Promise<void> }[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {Parameters<typeof startEdge>[0]} [opts] */
async function healthyEdge(opts) {
	const e = await startEdge(opts);
	open.push(e);
	const name = contract.webhook.secret_name;
	await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
	await e.kv.put(
		contract.kv_keys.config,
		signConfig(contract, e.relayKey, TENANT, { tenant: TENANT, version: 4, config: { greeting: 'hi' } }),
	);
	return e;
}

/** @param {import('./helpers/edge.mjs').Edge} e @param {string} [token] */
const health = (e, token) => e.fetchJson(H.path, token === undefined ? {} : { headers: { [H.token_header]: token } });

describe('public answer', () => {
	test('has exactly the documented fields, status ok, no detail', async () => {
		const e = await healthyEdge();
		const { status, body, headers } = await health(e);
		assert.equal(status, 200);
		assert.match(headers.get('content-type') ?? '', /^application\/json/);
		assert.deepEqual(Object.keys(body).sort(), ['config', 'd1', 'script', 'status', 'tenant', 'time']);
		assert.deepEqual(
			{ ...body, time: undefined },
			{
				tenant: TENANT,
				status: 'ok',
				config: { version: 4, source: 'kv', floor: 4, problem: null },
				script: { version: 'sha256:test-bundle' },
				d1: { reachable: true, schema: 'current' },
				time: undefined,
			},
		);
		assert.ok(Math.abs(Date.parse(body.time) - Date.now()) < 60_000, body.time);
	});

	test('no answer ever contains the relay key, a derived key or a secret value', async () => {
		const e = await healthyEdge();
		const token = healthToken(contract, e.relayKey, TENANT);
		const texts = [];
		for (const init of [{}, { headers: { [H.token_header]: token } }]) texts.push(await (await e.fetch(H.path, init)).text());
		texts.push(await (await e.fetch('/')).text());
		for (const t of texts) {
			assert.ok(!t.includes(WEBHOOK_SECRET), 'webhook secret leaked');
			assert.ok(!t.includes(e.relayKey.toString('base64')), 'relay key leaked');
			assert.ok(!t.includes(e.relayKey.toString('hex')), 'relay key leaked (hex)');
		}
		assert.ok(texts[1].includes('"detail"'), 'the token-gated answer was checked too');
	});

	test('D1 not bound: reachable false, schema unknown, degraded — still 200', async () => {
		const e = await healthyEdge({ withoutD1: true });
		const { status, body } = await health(e);
		assert.equal(status, 200);
		assert.deepEqual([body.status, body.d1], ['degraded', { reachable: false, schema: 'unknown' }]);
	});

	test('schema older than the bundle needs: behind and degraded; fresh database with nothing applied too', async () => {
		for (const migrate of [1, false]) {
			const e = await healthyEdge({ migrate });
			const { body } = await health(e);
			assert.deepEqual([body.status, body.d1], ['degraded', { reachable: true, schema: 'behind' }], `migrate=${migrate}`);
		}
	});

	test('schema that later catches up is seen without a restart (token: fresh D1 probe)', async () => {
		const e = await healthyEdge({ migrate: 1 });
		const token = () => healthToken(contract, e.relayKey, TENANT);
		assert.equal((await health(e, token())).body.d1.schema, 'behind');
		await applyMigrations(e.db, migrations);
		assert.deepEqual((await health(e, token())).body.d1, { reachable: true, schema: 'current' });
	});

	test('public answers reuse a recent D1 probe; a token-holder always gets a fresh one', async () => {
		const e = await healthyEdge();
		assert.equal((await health(e)).body.d1.schema, 'current');
		await e.db.prepare(`DROP TABLE ${contract.migrations_table}`).run();
		// Within the probe's max age the public answer does not query D1 again (unauthenticated callers cannot spend D1 reads).
		assert.equal((await health(e)).body.d1.schema, 'current');
		const fresh = await health(e, healthToken(contract, e.relayKey, TENANT));
		assert.deepEqual([fresh.body.d1, fresh.body.status], [{ reachable: true, schema: 'behind' }, 'degraded']);
		assert.equal((await health(e)).body.d1.schema, 'behind', 'the fresh probe is what the public answer reuses next');
	});

	test('a history that diverges from the bundle is unknown, not guessed', async () => {
		const embedded = makeEmbedded({ migrations: ['0001_init.sql', '0002_something_else.sql'] });
		const e = await healthyEdge({ embedded });
		const { body } = await health(e, healthToken(contract, e.relayKey, TENANT));
		assert.deepEqual([body.status, body.d1.schema], ['degraded', 'unknown']);
		assert.ok(body.detail.reasons.includes('schema_diverged'));
	});
});

describe('token-gated detail', () => {
	test('a valid token adds reasons, per-secret state and migrations', async () => {
		const e = await healthyEdge();
		const { body } = await health(e, healthToken(contract, e.relayKey, TENANT));
		const names = migrations.map((m) => m.name);
		assert.deepEqual(body.detail, {
			reasons: [],
			secrets: { [contract.webhook.secret_name]: 'ok' },
			migrations: { required: names, applied: names },
		});
	});

	test('detail names why the edge is degraded (secret tampered)', async () => {
		const e = await healthyEdge();
		const name = contract.webhook.secret_name;
		await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, 'globex', name, WEBHOOK_SECRET));
		const { body } = await health(e, healthToken(contract, e.relayKey, TENANT));
		assert.equal(body.status, 'degraded');
		assert.deepEqual(body.detail.secrets, { [name]: 'wrong_tenant' });
		assert.deepEqual(body.detail.reasons, [`secret:${name}:wrong_tenant`]);
	});

	const rejected = {
		'expired (ts older than the window)': (/** @type {Buffer} */ k) =>
			healthToken(contract, k, TENANT, { ts: Math.floor(Date.now() / 1000) - H.token_window_seconds - 5 }),
		'from the future beyond the window': (/** @type {Buffer} */ k) =>
			healthToken(contract, k, TENANT, { ts: Math.floor(Date.now() / 1000) + H.token_window_seconds + 5 }),
		'signed with another relay key': () => healthToken(contract, randomBytes(32), TENANT),
		'minted for another tenant': (/** @type {Buffer} */ k) => healthToken(contract, k, 'globex'),
		malformed: () => 'not-a-token',
		'uppercase nonce': (/** @type {Buffer} */ k) => healthToken(contract, k, TENANT, { nonce: 'ABCDEF0123456789' }),
		'empty header': () => '',
	};
	for (const [why, make] of Object.entries(rejected)) {
		test(`token ${why}: public answer only, still 200`, async () => {
			const e = await healthyEdge();
			const { status, body } = await health(e, make(e.relayKey));
			assert.equal(status, 200);
			assert.equal(body.detail, undefined);
			assert.equal(body.status, 'ok');
		});
	}

	test('a token is honoured once: a replay to the same isolate gets no detail', async () => {
		const e = await healthyEdge();
		const token = healthToken(contract, e.relayKey, TENANT);
		assert.ok((await health(e, token)).body.detail);
		assert.equal((await health(e, token)).body.detail, undefined);
		assert.ok((await health(e, healthToken(contract, e.relayKey, TENANT))).body.detail, 'a fresh token still works');
	});

	test('concurrent replays of one token: exactly one answer has detail', async () => {
		const e = await healthyEdge();
		const token = healthToken(contract, e.relayKey, TENANT);
		const answers = await Promise.all(Array.from({ length: 10 }, () => health(e, token)));
		assert.equal(answers.filter((a) => a.body.detail).length, 1);
	});

	test('a replay to a fresh isolate sharing the same D1 is refused too', async () => {
		const persist = await mkdtemp(join(tmpdir(), 'edge-health-'));
		open.push({ close: () => rm(persist, { recursive: true, force: true }) });
		const relayKey = randomBytes(32);
		const b = contract.bindings;
		const { modules, modulesRoot } = await workerModules(makeEmbedded({ secret_names: [] }));
		const opts = {
			modules,
			modulesRoot,
			compatibilityDate: COMPATIBILITY_DATE,
			bindings: { [b.relay_key]: relayKey.toString('base64'), [b.tenant_id]: TENANT },
			kvNamespaces: { [b.kv]: 'kv' },
			d1Databases: { [b.d1]: 'db' },
			d1Persist: persist,
		};
		const token = healthToken(contract, relayKey, TENANT);
		const first = new Miniflare(opts);
		await applyMigrations(await first.getD1Database(b.d1), migrations);
		const a = await (await first.dispatchFetch(`http://edge.test${H.path}`, { headers: { [H.token_header]: token } })).json();
		await first.dispose();
		const second = new Miniflare(opts);
		const replay = await (await second.dispatchFetch(`http://edge.test${H.path}`, { headers: { [H.token_header]: token } })).json();
		await second.dispose();
		assert.ok(/** @type {any} */ (a).detail, 'first use has detail');
		assert.equal(/** @type {any} */ (replay).detail, undefined, 'replay in a new isolate has none');
	});
});
