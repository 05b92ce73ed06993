// Stale-while-revalidate: past its TTL (within the stale window) traffic is answered from the held config while the
// refresh runs behind the response; health never is; and the refresh keeps every never-backwards and fail-closed rule.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { contract, makeEmbedded, startEdge, TENANT, WEBHOOK_SECRET } from './helpers/edge.mjs';
import { sealEnvelope, signConfig } from './helpers/sign.mjs';
import { recordConfigVersion } from '../src/records.js';

const CONFIG_KEY = contract.kv_keys.config;
/** Every request is past the TTL, and the held view stays servable for the contract's stale window. */
const ALWAYS_EXPIRED = makeEmbedded({ contract: { ...contract, config_cache_ttl_seconds: 0 } });

/** @type {import('./helpers/edge.mjs').Edge[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {Parameters<typeof startEdge>[0]} opts */
async function edge(opts) {
	const e = await startEdge({ embedded: ALWAYS_EXPIRED, ...opts });
	open.push(e);
	const name = contract.webhook.secret_name;
	await e.kv.put(contract.kv_keys.secret_prefix + name, sealEnvelope(contract, e.relayKey, TENANT, name, WEBHOOK_SECRET));
	return e;
}

/** @param {import('./helpers/edge.mjs').Edge} e @param {number} version */
const putConfig = (e, version) =>
	e.kv.put(CONFIG_KEY, signConfig(contract, e.relayKey, TENANT, { tenant: TENANT, version, config: { greeting: `v${version}` } }));

/** @param {import('./helpers/edge.mjs').Edge} e */
const root = async (e) => {
	const r = await e.fetchJson('/');
	assert.equal(r.status, 200);
	return [r.body.config_version, r.body.config_source];
};

/** The refresh runs after the response (waitUntil): poll GET / until it shows. @param {import('./helpers/edge.mjs').Edge} e @param {unknown[]} want */
async function eventually(e, want) {
	let last;
	for (let i = 0; i < 50; i++) {
		last = await root(e);
		if (JSON.stringify(last) === JSON.stringify(want)) return;
		await new Promise((r) => setTimeout(r, 20));
	}
	assert.fail(`GET / never served ${JSON.stringify(want)}; last ${JSON.stringify(last)}`);
}

describe('traffic past the TTL', () => {
	test('is answered from the held config, and the next request sees what the refresh found', async () => {
		const e = await edge({});
		await putConfig(e, 2);
		assert.deepEqual(await root(e), [2, 'kv'], 'a fresh isolate has nothing held: it waits for KV, never serves embedded first');
		await putConfig(e, 3);
		assert.deepEqual(await root(e), [2, 'kv'], 'answered from the held view');
		await eventually(e, [3, 'kv']);
	});

	test('many concurrent requests: all answered from the held view, one KV read behind them', async () => {
		const e = await edge({ wrapKv: true });
		await putConfig(e, 2);
		await root(e);
		const before = e.kvControl.gets.filter((k) => k === CONFIG_KEY).length;
		const answers = await Promise.all(Array.from({ length: 20 }, () => root(e)));
		assert.ok(answers.every((a) => a[0] === 2));
		assert.equal(e.kvControl.gets.filter((k) => k === CONFIG_KEY).length - before, 1);
	});

	test('past the stale window the request waits for the refresh', async () => {
		const e = await edge({
			embedded: makeEmbedded({ contract: { ...contract, config_cache_ttl_seconds: 0, config_max_stale_seconds: 0.05 } }),
		});
		await putConfig(e, 2);
		await root(e);
		await putConfig(e, 3);
		await new Promise((r) => setTimeout(r, 100));
		assert.deepEqual(await root(e), [3, 'kv']);
	});

	test('health never answers from a stale view: it waits, and what it learns serves traffic too', async () => {
		const e = await edge({});
		await putConfig(e, 2);
		await root(e);
		await putConfig(e, 3);
		const h = await e.fetchJson(contract.health.path);
		assert.deepEqual([h.body.status, h.body.config.version, h.body.config.source], ['ok', 3, 'kv']);
		assert.deepEqual(await root(e), [3, 'kv']);
	});
});

describe('the background refresh keeps the rules', () => {
	test('a KV fault found behind a response: the next answers come from the cache, health degraded', async () => {
		const e = await edge({ wrapKv: true });
		await putConfig(e, 2);
		await root(e);
		e.kvControl.throwing = true;
		await root(e);
		await eventually(e, [2, 'cache']);
		const h = await e.fetchJson(contract.health.path);
		assert.deepEqual([h.body.status, h.body.config.problem], ['degraded', 'kv_error']);
	});

	test('a replayed document below the floor is not adopted in the background either', async () => {
		const e = await edge({});
		await putConfig(e, 5);
		assert.deepEqual(await root(e), [5, 'kv']);
		await recordConfigVersion(e.db, { version: 7, at: new Date().toISOString(), bundleHash: 'other' }).run();
		await putConfig(e, 6);
		await root(e);
		await eventually(e, [5, 'cache']);
		for (let i = 0; i < 5; i++) assert.deepEqual(await root(e), [5, 'cache']);
		const h = await e.fetchJson(contract.health.path);
		assert.deepEqual(h.body.config, { version: 5, source: 'cache', floor: 7, problem: 'rollback_refused' });
	});

	test('a newer document while D1 is away is not adopted in the background (fail closed)', async () => {
		const e = await edge({});
		await putConfig(e, 2);
		await root(e);
		await e.db.prepare('DROP TABLE applied_config_versions').run();
		await putConfig(e, 3);
		await root(e);
		await eventually(e, [2, 'cache']);
		assert.equal((await e.fetchJson(contract.health.path)).body.config.problem, 'floor_unavailable');
	});
});
