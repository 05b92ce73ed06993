// Crypto parity with the Python side: the Worker (in workerd) must derive, decrypt and verify exactly what
// `python -m orchestrator.testing vectors` wrote to contract/vectors.json, and reject every tampered variant.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { contract, makeEmbedded, REREAD_EVERY_REQUEST, startEdge } from './helpers/edge.mjs';
import { deriveKey, healthToken, sealEnvelope, signConfig, webhookSignature } from './helpers/sign.mjs';

const VECTORS_PATH = process.env.EDGE_VECTORS ?? fileURLToPath(new URL('../../contract/vectors.json', import.meta.url));
const missing = existsSync(VECTORS_PATH) ? false : `${VECTORS_PATH} not found: run \`python -m orchestrator.testing vectors\``;
const V = missing ? null : JSON.parse(readFileSync(VECTORS_PATH, 'utf8'));

describe('crypto parity with contract/vectors.json', { skip: missing }, () => {
	/** @type {import('./helpers/edge.mjs').Edge} */
	let harness;
	/** @param {string} op @param {object} input */
	const call = async (op, input) => {
		const res = await harness.fetch(`/${op}`, {
			method: 'POST',
			body: JSON.stringify({ tenant: V.tenant, relay_key_b64: V.relay_key_b64, ...input }),
		});
		const body = await res.json();
		assert.equal(res.status, 200, `harness ${op} failed: ${JSON.stringify(body)}`);
		return body;
	};

	before(async () => {
		const main = { name: 'parity.js', contents: readFileSync(new URL('./harness/parity.js', import.meta.url), 'utf8') };
		harness = await startEdge({ main, migrate: false });
	});
	after(() => harness?.close());

	test('vector file is the contract version the Worker speaks', () => {
		assert.equal(V.v, contract.v);
	});

	test('HKDF derives the same per-purpose keys as Python', async () => {
		assert.deepEqual(await call('derive', {}), V.derived_keys_hex);
	});

	test('every envelope decrypts to the Python plaintext', async () => {
		assert.ok(V.envelopes.length > 0);
		for (const e of V.envelopes) {
			assert.deepEqual(await call('open', { name: e.name, kv_value: e.kv_value }), { ok: true, value: e.plaintext }, e.name);
		}
	});

	test('every tampered envelope is rejected with a state, never a value', async () => {
		assert.ok(V.rejects.tampered_envelopes.length > 0);
		for (const t of V.rejects.tampered_envelopes) {
			const r = await call('open', { name: t.name, kv_value: t.kv_value });
			assert.equal(r.ok, false, t.why);
			assert.equal(r.value, undefined, t.why);
			assert.match(r.state, /^(malformed|wrong_tenant|wrong_name|decrypt_failed)$/, t.why);
		}
	});

	test('the wrong relay key opens no envelope and verifies no config', async () => {
		const wrong = { relay_key_b64: V.rejects.wrong_relay_key_b64 };
		for (const e of V.envelopes)
			assert.deepEqual(await call('open', { ...wrong, name: e.name, kv_value: e.kv_value }), { ok: false, state: 'decrypt_failed' });
		for (const c of V.configs) assert.deepEqual(await call('config', { ...wrong, kv_value: c.kv_value }), { ok: false, reason: 'bad_mac' });
	});

	test('every config document verifies and yields the exact payload', async () => {
		for (const c of V.configs) {
			assert.deepEqual(await call('config', { kv_value: c.kv_value }), { ok: true, payload: c.payload, payloadText: c.payload_text });
		}
	});

	test('every tampered config is rejected', async () => {
		assert.ok(V.rejects.tampered_configs.length > 0);
		for (const t of V.rejects.tampered_configs) {
			const r = await call('config', { kv_value: t.kv_value });
			assert.equal(r.ok, false, `${t.why}: accepted`);
		}
	});

	test('health tokens verify at their time, and expire outside the window', async () => {
		const windowSeconds = contract.health.token_window_seconds;
		for (const t of V.health_tokens) {
			assert.deepEqual(await call('token', { token: t.token, now: t.now }), { ok: true, ts: t.ts, nonce: t.nonce });
			assert.deepEqual(await call('token', { token: t.token, now: t.ts + windowSeconds + 1 }), { ok: false, reason: 'expired' });
			assert.deepEqual(await call('token', { token: t.token, now: t.ts - windowSeconds - 1 }), { ok: false, reason: 'expired' });
			const flipped = t.token.slice(0, -2) + (t.token.at(-2) === 'A' ? 'B' : 'A') + t.token.at(-1);
			assert.deepEqual(await call('token', { token: flipped, now: t.now }), { ok: false, reason: 'bad_mac' });
			const otherTenant = await call('token', { tenant: 'globex', token: t.token, now: t.now });
			assert.deepEqual(otherTenant, { ok: false, reason: 'bad_mac' });
		}
	});

	test('webhook signatures verify, and fail for another secret', async () => {
		for (const w of V.webhooks) {
			assert.deepEqual(await call('webhook', w), { ok: true, roundTrip: true }, w.body);
			assert.equal((await call('webhook', { ...w, secret: `${w.secret}x` })).ok, false);
		}
	});
});

// The other test files sign with helpers/sign.mjs; this proves those helpers write byte-for-byte what Python writes.
describe('node-side test signer matches the Python vectors', { skip: missing }, () => {
	const relayKey = missing ? Buffer.alloc(0) : Buffer.from(V.relay_key_b64, 'base64');
	test('derived keys, envelopes, configs, tokens and signatures are identical', () => {
		for (const [purpose, hex] of Object.entries(V.derived_keys_hex))
			assert.equal(deriveKey(contract, relayKey, V.tenant, purpose).toString('hex'), hex);
		for (const e of V.envelopes) assert.equal(sealEnvelope(contract, relayKey, V.tenant, e.name, e.plaintext), e.kv_value, e.name);
		for (const c of V.configs) assert.equal(signConfig(contract, relayKey, V.tenant, c.payload_text), c.kv_value);
		for (const t of V.health_tokens) assert.equal(healthToken(contract, relayKey, V.tenant, { ts: t.ts, nonce: t.nonce }), t.token);
		for (const w of V.webhooks) assert.equal(webhookSignature(w.secret, w.body), w.signature);
	});
});

describe('the real routes accept Python-made documents end to end', { skip: missing }, () => {
	const relayKey = missing ? Buffer.alloc(0) : Buffer.from(V.relay_key_b64, 'base64');
	/** @type {import('./helpers/edge.mjs').Edge} */
	let edge;

	before(async () => {
		// Embedded = the first vector config, so KV's identical copy is accepted (same version, same content).
		const embedded = makeEmbedded({
			tenant: V.tenant,
			config: V.configs[0].payload,
			contract: REREAD_EVERY_REQUEST,
		});
		edge = await startEdge({ embedded, relayKey, tenantBinding: V.tenant });
	});
	after(() => edge?.close());

	test('config versions from Python are served in order, with their greeting', async () => {
		for (const c of V.configs) {
			await edge.kv.put(contract.kv_keys.config, c.kv_value);
			const { status, body } = await edge.fetchJson('/');
			assert.equal(status, 200);
			assert.deepEqual(body, {
				tenant: V.tenant,
				config_version: c.payload.version,
				config_source: 'kv',
				greeting: c.payload.config.greeting ?? null,
			});
		}
	});

	test('a Python-made webhook secret envelope and signature pass the webhook route', async () => {
		const envelope = V.envelopes.find((/** @type {any} */ e) => e.name === contract.webhook.secret_name);
		const hook = V.webhooks.find((/** @type {any} */ w) => w.secret === envelope.plaintext && w.body.startsWith('{'));
		assert.ok(envelope && hook, 'vectors need a WEBHOOK_SECRET envelope and a JSON webhook signed with it');
		await edge.kv.put(contract.kv_keys.secret_prefix + envelope.name, envelope.kv_value);
		const { status, body } = await edge.fetchJson(contract.webhook.path, {
			method: 'POST',
			body: hook.body,
			headers: { [contract.webhook.signature_header]: hook.signature, [contract.webhook.id_header]: 'vector-1' },
		});
		assert.deepEqual({ status, body }, { status: 200, body: { stored: true, duplicate: false } });
	});

	test('each tampered config in KV leaves the last good one in service, degraded, never a 5xx', async () => {
		await edge.kv.put(contract.kv_keys.config, V.configs.at(-1).kv_value);
		assert.equal((await edge.fetchJson('/')).body.config_source, 'kv');
		for (const t of V.rejects.tampered_configs) {
			await edge.kv.put(contract.kv_keys.config, t.kv_value);
			const health = await edge.fetchJson(contract.health.path);
			assert.equal(health.status, 200, t.why);
			assert.equal(health.body.status, 'degraded', t.why);
			const { version, source, problem } = health.body.config;
			assert.deepEqual({ version, source }, { version: V.configs.at(-1).payload.version, source: 'cache' }, t.why);
			assert.match(problem, /^[a-z_]+$/, `${t.why}: the public answer names the problem`);
		}
	});
});
