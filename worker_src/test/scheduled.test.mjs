// Cron: heartbeat row, config version recorded, pruning by age; refuses to write on a schema that is behind.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { contract, startEdge, TENANT } from './helpers/edge.mjs';
import { signConfig } from './helpers/sign.mjs';

const CRON = '*/5 * * * *';
const DAY = 24 * 60 * 60 * 1000;
/** @type {import('./helpers/edge.mjs').Edge[]} */
const open = [];
afterEach(async () => {
	await Promise.all(open.splice(0).map((e) => e.close()));
});

/** @param {Parameters<typeof startEdge>[0]} [opts] */
async function edge(opts) {
	const e = await startEdge(opts);
	open.push(e);
	return e;
}

/** @param {import('./helpers/edge.mjs').Edge} e */
async function runCron(e) {
	const worker = await e.mf.getWorker('edge');
	return worker.scheduled({ cron: CRON, scheduledTime: new Date() });
}

/** @param {import('./helpers/edge.mjs').Edge} e @param {string} sql */
async function all(e, sql) {
	return (await e.db.prepare(sql).all()).results;
}

test('writes one heartbeat with what is served, and records the KV config version', async () => {
	const e = await edge();
	await e.kv.put(contract.kv_keys.config, signConfig(contract, e.relayKey, TENANT, { tenant: TENANT, version: 3, config: {} }));
	assert.equal((await runCron(e)).outcome, 'ok');
	const beats = await all(e, 'SELECT cron, config_version, config_source, status, bundle_hash, at FROM heartbeats');
	assert.equal(beats.length, 1);
	assert.deepEqual(
		{ ...beats[0], at: undefined },
		{
			cron: CRON,
			config_version: 3,
			config_source: 'kv',
			status: 'degraded', // no webhook secret relayed in this test
			bundle_hash: 'sha256:test-bundle',
			at: undefined,
		},
	);
	assert.ok(Math.abs(Date.parse(String(beats[0].at)) - Date.now()) < 60_000);
	assert.deepEqual(await all(e, 'SELECT version, bundle_hash FROM applied_config_versions'), [
		{ version: 3, bundle_hash: 'sha256:test-bundle' },
	]);
	assert.equal((await runCron(e)).outcome, 'ok');
	assert.equal((await all(e, 'SELECT id FROM heartbeats')).length, 2, 'one row per run');
	assert.equal((await all(e, 'SELECT version FROM applied_config_versions')).length, 1, 'a version is recorded once');
});

test('serving the embedded config records no applied version', async () => {
	const e = await edge();
	assert.equal((await runCron(e)).outcome, 'ok');
	assert.deepEqual(await all(e, 'SELECT config_source FROM heartbeats'), [{ config_source: 'embedded' }]);
	assert.deepEqual(await all(e, 'SELECT version FROM applied_config_versions'), []);
});

test('prunes events older than 30 days, heartbeats older than 7, expired nonces; keeps the rest', async () => {
	const e = await edge();
	const iso = (/** @type {number} */ daysAgo) => new Date(Date.now() - daysAgo * DAY).toISOString();
	const nowS = Math.floor(Date.now() / 1000);
	await e.db.batch([
		e.db.prepare("INSERT INTO webhook_events (webhook_id, topic, body, received_at) VALUES ('old', 't', '{}', ?1)").bind(iso(31)),
		e.db.prepare("INSERT INTO webhook_events (webhook_id, topic, body, received_at) VALUES ('recent', 't', '{}', ?1)").bind(iso(29)),
		e.db
			.prepare("INSERT INTO heartbeats (at, cron, config_version, config_source, status, bundle_hash) VALUES (?1, 'c', 1, 'kv', 'ok', 'h')")
			.bind(iso(8)),
		e.db
			.prepare("INSERT INTO heartbeats (at, cron, config_version, config_source, status, bundle_hash) VALUES (?1, 'c', 1, 'kv', 'ok', 'h')")
			.bind(iso(6)),
		e.db.prepare("INSERT INTO health_token_nonces (nonce, expires_at) VALUES ('expired', ?1)").bind(nowS - 10),
		e.db.prepare("INSERT INTO health_token_nonces (nonce, expires_at) VALUES ('live', ?1)").bind(nowS + 50),
	]);
	assert.equal((await runCron(e)).outcome, 'ok');
	assert.deepEqual(await all(e, 'SELECT webhook_id FROM webhook_events'), [{ webhook_id: 'recent' }]);
	assert.equal((await all(e, 'SELECT id FROM heartbeats')).length, 2, 'the 6-day-old one and the new one');
	assert.deepEqual(await all(e, 'SELECT nonce FROM health_token_nonces'), [{ nonce: 'live' }]);
});

test('schema behind: the run fails visibly and writes nothing', async () => {
	const e = await edge({ migrate: 1 });
	assert.equal((await runCron(e)).outcome, 'exception');
	assert.deepEqual(await all(e, 'SELECT id FROM heartbeats'), []);
});

test('KV throwing does not stop the heartbeat: it records the degraded state', async () => {
	const e = await edge({ wrapKv: true });
	e.kvControl.throwing = true;
	assert.equal((await runCron(e)).outcome, 'ok');
	assert.deepEqual(await all(e, 'SELECT config_source, status FROM heartbeats'), [{ config_source: 'embedded', status: 'degraded' }]);
});
