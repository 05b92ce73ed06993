// Config sync: pickup of new versions, the isolate cache, and every fault serving last-known-good with health degraded.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { contract, makeEmbedded, REREAD_EVERY_REQUEST, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { healthToken, sealEnvelope, signConfig } from './helpers/sign.mjs';

const CONFIG_KEY = contract.kv_keys.config;
const HEALTH = contract.health.path;
// TTL 0 makes every request re-read KV, so a test can change KV between two requests without waiting out the cache.
const rereadEveryRequest = () => makeEmbedded({ contract: REREAD_EVERY_REQUEST });

/** @type {import('./helpers/edge.mjs').Edge[]} */
const open = [];
/** @param {Parameters<typeof startEdge>[0]} opts */
async function edge(opts) {
	const e = await startEdge(opts);
	open.push(e);
	return e;
}
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {import('./helpers/edge.mjs').Edge} e @param {number} version @param {string} greeting @param {string} [tenant] */
function putConfig(e, version, greeting, tenant = TENANT) {
	return e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, TENANT, { tenant, version, config: { greeting } }));
}

/** With every expected secret in place, a fault in the config is the only thing that can make the edge degraded. @param {import('./helpers/edge.mjs').Edge} e */
function seedSecret(e) {
	const name = contract.webhook.secret_name;
	return e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
}

/** @param {import('./helpers/edge.mjs').Edge} e */
async function served(e) {
	const root = await e.fetchJson('/');
	const health = await e.fetchJson(HEALTH);
	assert.equal(root.status, 200);
	assert.equal(health.status, 200);
	return {
		version: root.body.config_version,
		source: root.body.config_source,
		greeting: root.body.greeting,
		status: health.body.status,
		health: health.body,
	};
}

describe('happy paths', () => {
	test('no KV document yet: the embedded config is served, and the edge says it is degraded', async () => {
		const e = await edge({});
		await seedSecret(e);
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.greeting, s.status], [1, 'embedded', 'hello from the embedded config', 'degraded']);
		assert.deepEqual(s.health.config, { version: 1, source: 'embedded', floor: 0, problem: 'missing' });
	});

	test('a newer signed KV config is served from KV, health ok', async () => {
		const e = await edge({});
		await seedSecret(e);
		await putConfig(e, 2, 'v2');
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.greeting, s.status], [2, 'kv', 'v2', 'ok']);
		assert.deepEqual(s.health.config, { version: 2, source: 'kv', floor: 2, problem: null });
	});

	test('a version change in KV is picked up without a restart', async () => {
		const e = await edge({ embedded: rereadEveryRequest() });
		await putConfig(e, 2, 'v2');
		assert.equal((await served(e)).greeting, 'v2');
		await putConfig(e, 3, 'v3');
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.greeting], [3, 'kv', 'v3']);
	});

	test('KV identical to the embedded config (same version, same content, other key order) is accepted', async () => {
		const e = await edge({});
		const payload = `{"version":1,"config":{"greeting":"hello from the embedded config"},"tenant":"${TENANT}"}`;
		await e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, TENANT, payload));
		assert.deepEqual((await e.fetchJson('/')).body.config_source, 'kv');
	});

	test('within the TTL a cached request does not read KV; the contract TTL is what is used', async () => {
		const e = await edge({ wrapKv: true });
		await putConfig(e, 2, 'v2');
		assert.equal((await served(e)).source, 'kv');
		const reads = e.kvControl.gets.filter((k) => k === CONFIG_KEY).length;
		assert.equal(reads, 1, 'first request reads the config once');
		await putConfig(e, 3, 'v3');
		for (let i = 0; i < 20; i++) assert.equal((await e.fetchJson('/')).body.config_version, 2);
		assert.equal(e.kvControl.gets.filter((k) => k === CONFIG_KEY).length, 1, `no KV read within ${contract.config_cache_ttl_seconds}s`);
	});

	test('concurrent requests after the TTL share one KV read', async () => {
		const e = await edge({ wrapKv: true });
		await putConfig(e, 2, 'v2');
		const all = await Promise.all(Array.from({ length: 25 }, () => e.fetchJson('/')));
		assert.ok(all.every((r) => r.status === 200 && r.body.config_version === 2));
		assert.equal(e.kvControl.gets.filter((k) => k === CONFIG_KEY).length, 1);
	});
});

describe('faults: last-known-good, health degraded, never a 5xx', () => {
	/** Each fault is applied after a good v2 was served, so the isolate holds it and must fall back to it. */
	const faults = {
		'KV document deleted': async (/** @type {any} */ e) => e.kv.delete(CONFIG_KEY),
		'corrupt JSON': async (/** @type {any} */ e) => e.kv.put(CONFIG_KEY, '{"v":1,"payload":'),
		'bad MAC': async (/** @type {any} */ e) =>
			e.kv.put(
				CONFIG_KEY,
				signConfig(
					contract,
					e.relayKey,
					TENANT,
					{ tenant: TENANT, version: 9, config: { greeting: 'evil' } },
					{ mac: randomBytes(32).toString('base64') },
				),
			),
		'signed with another relay key': async (/** @type {any} */ e) =>
			e.kv.put(CONFIG_KEY, signConfig(contract, randomBytes(32), TENANT, { tenant: TENANT, version: 9, config: { greeting: 'evil' } })),
		'payload naming another tenant, signed with this key': async (/** @type {any} */ e) => putConfig(e, 9, 'evil', 'globex'),
		"another tenant's document under its own key": async (/** @type {any} */ e) =>
			e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, 'globex', { tenant: 'globex', version: 9, config: { greeting: 'evil' } })),
		'older version': async (/** @type {any} */ e) => putConfig(e, 1, 'old'),
		'same version, different content': async (/** @type {any} */ e) => putConfig(e, 2, 'changed without a bump'),
		'KV throwing': async (/** @type {any} */ e) => {
			e.kvControl.throwing = true;
		},
		'KV hanging (read deadline)': async (/** @type {any} */ e) => {
			e.kvControl.hanging = true;
		},
	};
	const reasons = {
		'KV document deleted': 'config:missing',
		'corrupt JSON': 'config:malformed',
		'bad MAC': 'config:bad_mac',
		'signed with another relay key': 'config:bad_mac',
		'payload naming another tenant, signed with this key': 'config:wrong_tenant',
		// The tenant is in the HKDF info, so a document signed for another tenant never verifies here.
		"another tenant's document under its own key": 'config:bad_mac',
		'older version': 'config:stale_version',
		'same version, different content': 'config:version_conflict',
		'KV throwing': 'config:kv_error',
		'KV hanging (read deadline)': 'config:kv_error',
	};
	// A throwing KV fails the secret read too (its TTL is 0 here as well).
	const alsoSecret = {
		'KV throwing': [`secret:${contract.webhook.secret_name}:kv_error`],
		'KV hanging (read deadline)': [`secret:${contract.webhook.secret_name}:kv_error`],
	};

	for (const [name, apply] of Object.entries(faults)) {
		test(`${name}: the cached v2 keeps being served`, async () => {
			const e = await edge({ embedded: rereadEveryRequest(), wrapKv: true });
			await seedSecret(e);
			await putConfig(e, 2, 'v2');
			assert.deepEqual(await served(e).then((s) => [s.version, s.source, s.status]), [2, 'kv', 'ok']);
			await apply(e);
			const s = await served(e);
			assert.deepEqual([s.version, s.source, s.greeting, s.status], [2, 'cache', 'v2', 'degraded']);
			assert.equal(s.health.config.source, 'cache');
		});

		test(`${name} from a cold start: the embedded config is served`, async () => {
			const e = await edge({ embedded: rereadEveryRequest(), wrapKv: true });
			await putConfig(e, 2, 'v2');
			await apply(e);
			const s = await served(e);
			if (name === 'same version, different content') {
				// From cold, nothing is held at v2 yet, so this is simply a valid new version.
				assert.deepEqual([s.version, s.source], [2, 'kv']);
				return;
			}
			assert.deepEqual([s.version, s.source, s.greeting, s.status], [1, 'embedded', 'hello from the embedded config', 'degraded']);
		});
	}

	test('each fault is named in the token-gated health detail', async () => {
		for (const [name, apply] of Object.entries(faults)) {
			const e = await edge({ embedded: rereadEveryRequest(), wrapKv: true });
			await seedSecret(e);
			await putConfig(e, 2, 'v2');
			await e.fetchJson('/');
			await apply(e);
			const h = await e.fetchJson(HEALTH, { headers: { [contract.health.token_header]: healthToken(contract, e.relayKey, TENANT) } });
			const expected = [
				reasons[/** @type {keyof typeof reasons} */ (name)],
				...(alsoSecret[/** @type {keyof typeof alsoSecret} */ (name)] ?? []),
			];
			assert.deepEqual(h.body.detail.reasons, expected, name);
			await e.close();
			open.splice(open.indexOf(e), 1);
		}
	});

	test('a version below the embedded one is refused even from a cold start', async () => {
		const embedded = makeEmbedded({ config: { tenant: TENANT, version: 5, config: { greeting: 'embedded v5' } } });
		const e = await edge({ embedded });
		await putConfig(e, 4, 'older than the deploy');
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.greeting, s.status], [5, 'embedded', 'embedded v5', 'degraded']);
	});

	test('recovers to source kv and status ok once KV holds a valid newer document again', async () => {
		const e = await edge({ embedded: rereadEveryRequest() });
		await seedSecret(e);
		await putConfig(e, 2, 'v2');
		assert.equal((await served(e)).source, 'kv');
		await e.kv.put(CONFIG_KEY, 'garbage');
		assert.deepEqual(await served(e).then((s) => [s.source, s.status]), ['cache', 'degraded']);
		await putConfig(e, 3, 'v3');
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.status], [3, 'kv', 'ok']);
	});

	test('a failed KV read is cached for the TTL too, so a broken KV is not hammered', async () => {
		const e = await edge({ wrapKv: true });
		e.kvControl.throwing = true;
		for (let i = 0; i < 10; i++) assert.equal((await e.fetchJson('/')).status, 200);
		assert.equal(e.kvControl.gets.filter((k) => k === CONFIG_KEY).length, 1);
	});

	test('a relay key binding that is not 32 bytes of base64 serves embedded, degraded, no 5xx', async () => {
		for (const relayKeyB64 of ['', 'not base64!', Buffer.alloc(16).toString('base64')]) {
			const e = await edge({ relayKeyB64 });
			const s = await served(e);
			assert.deepEqual([s.version, s.source, s.status], [1, 'embedded', 'degraded'], JSON.stringify(relayKeyB64));
		}
	});
});

describe('document checks', () => {
	test('a payload with a lone surrogate is malformed, even with a valid MAC', async () => {
		const e = await edge({});
		await seedSecret(e);
		const text = `{"config":{"greeting":"a\uD800b"},"tenant":"${TENANT}","version":2}`;
		await e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, TENANT, text));
		const s = await served(e);
		assert.deepEqual([s.version, s.source, s.status], [1, 'embedded', 'degraded']);
	});
});
