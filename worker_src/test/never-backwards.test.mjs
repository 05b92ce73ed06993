// Never backwards (docs/contract.md): on every path — fresh isolate, embedded config, KV, a restart — the Worker
// adopts no KV document below the highest version recorded in D1, and says so in health when it serves below it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { contract, makeEmbedded, REREAD_EVERY_REQUEST, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { healthToken, sealEnvelope, signConfig } from './helpers/sign.mjs';
import { recordConfigVersion } from '../src/records.js';

const CONFIG_KEY = contract.kv_keys.config;
const H = contract.health;

/** @type {{ close(): Promise<void> }[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** An edge whose only possible fault is the config (the webhook secret is in place). @param {Parameters<typeof startEdge>[0]} opts */
async function edge(opts) {
	const e = await startEdge(opts);
	open.push(e);
	const name = contract.webhook.secret_name;
	await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
	return e;
}

/** @param {number} version @param {{ reread?: boolean }} [o] */
const embeddedAt = (version, o = {}) =>
	makeEmbedded({
		config: { tenant: TENANT, version, config: { greeting: `v${version}` } },
		...(o.reread ? { contract: REREAD_EVERY_REQUEST } : {}),
	});

/** @param {import('./helpers/edge.mjs').Edge} e @param {number} version @param {string} [greeting] */
const putConfig = (e, version, greeting = `v${version}`) =>
	e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, TENANT, { tenant: TENANT, version, config: { greeting } }));

/** Another isolate (or an earlier run) accepted `version`. @param {import('./helpers/edge.mjs').Edge} e @param {number} version */
const recorded = (e, version) => recordConfigVersion(e.db, { version, at: new Date().toISOString(), bundleHash: 'other' }).run();

/** What the edge serves, its public health and the token-gated reasons. @param {import('./helpers/edge.mjs').Edge} e */
async function observe(e) {
	const root = await e.fetchJson('/');
	const pub = await e.fetchJson(H.path);
	const gated = await e.fetchJson(H.path, { headers: { [H.token_header]: healthToken(contract, e.relayKey, TENANT) } });
	return {
		greeting: root.body.greeting,
		version: root.body.config_version,
		status: pub.body.status,
		config: pub.body.config,
		reasons: gated.body.detail.reasons,
	};
}

describe('a fresh isolate, D1 recorded version 5 earlier', () => {
	/** name → [embedded version, what KV holds, expected public config, expected reasons] */
	const cases = {
		'KV holds the embedded version (a reverted stack file)': [
			3,
			(/** @type {any} */ e) => putConfig(e, 3),
			{ version: 3, source: 'embedded', floor: 5, problem: 'rollback_refused' },
			['config:rollback_refused', 'config:below_floor'],
		],
		'KV holds a version above the embedded one but below the floor (an old document replayed)': [
			3,
			(/** @type {any} */ e) => putConfig(e, 4, 'replayed'),
			{ version: 3, source: 'embedded', floor: 5, problem: 'rollback_refused' },
			['config:rollback_refused', 'config:below_floor'],
		],
		'KV empty, embedded below the floor (a rollback by deploy)': [
			3,
			async () => {},
			{ version: 3, source: 'embedded', floor: 5, problem: 'missing' },
			['config:missing', 'config:below_floor'],
		],
		'KV forged, embedded below the floor': [
			3,
			(/** @type {any} */ e) =>
				e.kv.put(
					CONFIG_KEY,
					signConfig(contract, e.relayKey, TENANT, { tenant: TENANT, version: 9, config: {} }, { mac: randomBytes(32).toString('base64') }),
				),
			{ version: 3, source: 'embedded', floor: 5, problem: 'bad_mac' },
			['config:bad_mac', 'config:below_floor'],
		],
		'KV older than the embedded version, both below the floor': [
			4,
			(/** @type {any} */ e) => putConfig(e, 2),
			{ version: 4, source: 'embedded', floor: 5, problem: 'stale_version' },
			['config:stale_version', 'config:below_floor'],
		],
		'KV at the floor: adopted': [3, (/** @type {any} */ e) => putConfig(e, 5), { version: 5, source: 'kv', floor: 5, problem: null }, []],
		'KV above the floor: adopted, the floor moves up': [
			3,
			(/** @type {any} */ e) => putConfig(e, 7),
			{ version: 7, source: 'kv', floor: 7, problem: null },
			[],
		],
		'embedded above the floor, KV holds it: adopted': [
			6,
			(/** @type {any} */ e) => putConfig(e, 6),
			{ version: 6, source: 'kv', floor: 6, problem: null },
			[],
		],
		'embedded above the floor, KV empty: embedded, not below the floor': [
			6,
			async () => {},
			{ version: 6, source: 'embedded', floor: 5, problem: 'missing' },
			['config:missing'],
		],
	};
	for (const [name, [embeddedVersion, seed, config, reasons]] of Object.entries(cases)) {
		test(name, async () => {
			const e = await edge({ embedded: embeddedAt(/** @type {number} */ (embeddedVersion)) });
			await recorded(e, 5);
			await /** @type {(e: any) => Promise<void>} */ (seed)(e);
			const o = await observe(e);
			assert.deepEqual(o.config, config);
			assert.equal(o.version, /** @type {any} */ (config).version);
			assert.equal(o.status, /** @type {any} */ (reasons).length === 0 ? 'ok' : 'degraded');
			assert.deepEqual(o.reasons, reasons);
		});
	}

	test('D1 cannot say what was accepted: not even the embedded version is adopted from KV (fail closed)', async () => {
		for (const kvVersion of [1, 3]) {
			const e = await edge({});
			await e.db.prepare('DROP TABLE applied_config_versions').run();
			await putConfig(e, kvVersion, kvVersion === 1 ? 'hello from the embedded config' : 'unverifiable');
			const o = await observe(e);
			assert.deepEqual(o.config, { version: 1, source: 'embedded', floor: null, problem: 'floor_unavailable' }, `KV v${kvVersion}`);
			assert.ok(o.reasons.includes('config:floor_unavailable'), `KV v${kvVersion}`);
			assert.equal(o.greeting, 'hello from the embedded config');
		}
	});

	test('D1 unbound: the same, and never a 5xx', async () => {
		const e = await edge({ withoutD1: true });
		await putConfig(e, 2);
		const root = await e.fetchJson('/');
		assert.deepEqual([root.status, root.body.config_version, root.body.config_source], [200, 1, 'embedded']);
		assert.deepEqual((await e.fetchJson(H.path)).body.config, {
			version: 1,
			source: 'embedded',
			floor: null,
			problem: 'floor_unavailable',
		});
	});
});

describe('a running isolate', () => {
	test('a version between the one held and a floor another isolate recorded is refused; the cache stays', async () => {
		const e = await edge({ embedded: embeddedAt(1, { reread: true }) });
		await putConfig(e, 5);
		assert.deepEqual((await observe(e)).config, { version: 5, source: 'kv', floor: 5, problem: null });
		await recorded(e, 7);
		await putConfig(e, 6, 'replayed');
		const o = await observe(e);
		assert.deepEqual([o.greeting, o.config], ['v5', { version: 5, source: 'cache', floor: 7, problem: 'rollback_refused' }]);
		assert.deepEqual(o.reasons, ['config:rollback_refused', 'config:below_floor']);
		// The very v5 document it adopted earlier, byte for byte, is below the floor now: refused too, not waved through.
		await putConfig(e, 5);
		assert.deepEqual((await observe(e)).config, { version: 5, source: 'cache', floor: 7, problem: 'rollback_refused' });
		// Once the fleet's newest version reaches KV, the edge is whole again.
		await putConfig(e, 7);
		const back = await observe(e);
		assert.deepEqual([back.greeting, back.status, back.config], ['v7', 'ok', { version: 7, source: 'kv', floor: 7, problem: null }]);
	});

	test('once a floor is known, an older document is refused even when D1 has gone away', async () => {
		const e = await edge({ embedded: embeddedAt(1, { reread: true }) });
		await recorded(e, 4);
		await putConfig(e, 4);
		assert.equal((await observe(e)).config.source, 'kv');
		await e.db.prepare('DROP TABLE applied_config_versions').run();
		await putConfig(e, 3, 'replayed');
		const o = await observe(e);
		assert.deepEqual([o.greeting, o.config], ['v4', { version: 4, source: 'cache', floor: 4, problem: 'stale_version' }]);
	});

	test('a newer document while D1 is unreachable is not adopted; it is once D1 answers again', async () => {
		const e = await edge({ embedded: embeddedAt(1, { reread: true }) });
		await putConfig(e, 2);
		assert.equal((await observe(e)).config.source, 'kv');
		await e.db.prepare('ALTER TABLE applied_config_versions RENAME TO hidden').run();
		await putConfig(e, 3);
		assert.deepEqual((await observe(e)).config, { version: 2, source: 'cache', floor: 2, problem: 'floor_unavailable' });
		await e.db.prepare('ALTER TABLE hidden RENAME TO applied_config_versions').run();
		assert.deepEqual((await observe(e)).config, { version: 3, source: 'kv', floor: 3, problem: null });
	});
});

describe('a restart (fresh isolates, the same D1)', () => {
	test('push v4, revert the stack to v3, restart: v3 is refused as a rollback and health says degraded', async () => {
		const persist = await mkdtemp(join(tmpdir(), 'edge-restart-'));
		open.push({ close: () => rm(persist, { recursive: true, force: true }) });
		const relayKey = randomBytes(32);
		// First run: deployed with v3, then v4 pushed to KV and served (which records it in D1).
		const first = await startEdge({ embedded: embeddedAt(3), relayKey, d1Persist: persist });
		await putConfig(first, 4);
		assert.equal((await first.fetchJson('/')).body.config_version, 4);
		await waitForRecord(first, 4);
		await first.close();
		// Second run: the stack file says v3 again, so the deploy embeds v3 and writes v3 to KV.
		const second = await edge({ embedded: embeddedAt(3), relayKey, d1Persist: persist });
		await putConfig(second, 3);
		const o = await observe(second);
		assert.equal(o.status, 'degraded');
		assert.deepEqual(o.config, { version: 3, source: 'embedded', floor: 4, problem: 'rollback_refused' });
		assert.deepEqual(o.reasons, ['config:rollback_refused', 'config:below_floor']);
	});
});

/** The record is written off the response path (waitUntil); wait for it rather than race it. @param {import('./helpers/edge.mjs').Edge} e @param {number} version */
async function waitForRecord(e, version) {
	for (let i = 0; i < 100; i++) {
		const row = await e.db.prepare('SELECT MAX(version) AS v FROM applied_config_versions').first();
		if (row?.v === version) return;
		await new Promise((r) => setTimeout(r, 20));
	}
	assert.fail(`version ${version} was never recorded in D1`);
}
