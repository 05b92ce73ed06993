// Dispatch mode in workerd: hostname routing through the routing KV, unknown hosts, missing user Workers, per-plan
// limits per call, the internal cron path closed from outside, and parity with workers mode (same bundle).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { contract, startEdge } from './helpers/edge.mjs';
import { PLANS, startDispatch } from './helpers/dispatch.mjs';

const D = contract.dispatch;
/** @type {Awaited<ReturnType<typeof startDispatch>>} */
let edge;

before(async () => {
	edge = await startDispatch({
		tenants: [
			{ tenant: 'acme', hostnames: ['shop.acme.example.com', 'edge.acme.example.com'], plan: 'standard' },
			{ tenant: 'globex', hostnames: ['*.globex.example.org'], plan: 'free' },
			{ tenant: 'lowcap', hostnames: ['low.example.net'], plan: 'standard', limits: { cpu_ms: 20, subrequests: 500 } },
			{ tenant: 'gone', hostnames: ['gone.example.net'], deployed: false },
			{ tenant: 'mystery', hostnames: ['mystery.example.net'], plan: 'platinum' },
		],
	});
});
after(async () => {
	await edge?.close();
});

/** @param {Response} res */
const body = async (res) => JSON.parse(await res.text());

test('each hostname reaches its own tenant', async () => {
	for (const [url, tenant] of [
		['https://shop.acme.example.com/', 'acme'],
		['https://EDGE.acme.example.com./', 'acme'],
		['https://a.globex.example.org/', 'globex'],
		['https://deep.er.globex.example.org/', 'globex'],
	]) {
		const res = await edge.fetch(url);
		assert.equal(res.status, 200, url);
		const b = await body(res);
		assert.equal(b.tenant, tenant, url);
		assert.equal(b.greeting, `hello ${tenant}`, url);
	}
});

test('an unknown host is a clear 404, and a wildcard does not cover its own apex', async () => {
	for (const url of ['https://nobody.example.com/', 'https://globex.example.org/', 'http://127.0.0.1/']) {
		const res = await edge.fetch(url);
		assert.equal(res.status, 404, url);
		assert.deepEqual(await body(res), { error: 'unknown_host' }, url);
	}
});

test('a routed tenant whose user Worker is not in the namespace answers 503', async () => {
	const res = await edge.fetch('https://gone.example.net/');
	assert.equal(res.status, 503);
	assert.deepEqual(await body(res), { error: 'tenant_unavailable', tenant: 'gone' });
});

test('limits are the plan’s, per call, lowered (never raised) by the tenant’s own', async () => {
	edge.calls.length = 0;
	await (await edge.fetch('https://shop.acme.example.com/')).text();
	await (await edge.fetch('https://x.globex.example.org/')).text();
	await (await edge.fetch('https://low.example.net/')).text();
	const byName = Object.fromEntries(edge.calls.map((c) => [c.name, c.options]));
	assert.deepEqual(byName['clawdbot-test-acme'].limits, { cpuMs: PLANS.standard.cpu_ms, subRequests: PLANS.standard.subrequests });
	assert.deepEqual(byName['clawdbot-test-globex'].limits, { cpuMs: 10, subRequests: 5 });
	assert.deepEqual(byName['clawdbot-test-lowcap'].limits, { cpuMs: 20, subRequests: 50 });
	assert.deepEqual(byName['clawdbot-test-acme'].outbound, { tenant: 'acme', egress: [] });
});

test('a tenant naming an unknown plan is refused, not served uncapped', async () => {
	edge.calls.length = 0;
	const res = await edge.fetch('https://mystery.example.net/');
	assert.equal(res.status, 503);
	assert.deepEqual(await body(res), { error: 'plan_unknown', tenant: 'mystery' });
	assert.equal(edge.calls.length, 0, 'the user Worker was never called');
});

test('a malformed routing entry answers 503 and is never guessed at', async () => {
	const cases = {
		'notjson.example.net': '{not json',
		'badscript.example.net': JSON.stringify({ v: 1, tenant: 'x1', script: '../etc', plan: 'free', limits: null, egress: [] }),
		'badegress.example.net': JSON.stringify({ v: 1, tenant: 'x2', script: 'clawdbot-test-x2', plan: 'free', limits: null, egress: ['*'] }),
		'badlimits.example.net': JSON.stringify({
			v: 1,
			tenant: 'x3',
			script: 'clawdbot-test-x3',
			plan: 'free',
			limits: { cpu_ms: -1 },
			egress: [],
		}),
		'oldformat.example.net': JSON.stringify({ v: 2, tenant: 'x4', script: 'clawdbot-test-x4', plan: 'free', limits: null, egress: [] }),
		'otherscript.example.net': JSON.stringify({ v: 1, tenant: 'x5', script: 'clawdbot-test-acme', plan: 'free', limits: null, egress: [] }),
	};
	for (const [host, value] of Object.entries(cases)) await edge.routes.put(D.host_key_prefix + host, value);
	for (const host of Object.keys(cases)) {
		const res = await edge.fetch(`https://${host}/`);
		assert.equal(res.status, 503, host);
		assert.deepEqual(await body(res), { error: 'route_invalid' }, host);
	}
});

test('the internal cron path is closed from outside, however it is spelled', async () => {
	for (const path of [D.cron_path, D.cron_path.toUpperCase(), `${D.cron_path}/`, D.cron_path.replace('cron', '%63ron')]) {
		const res = await edge.fetch(`https://shop.acme.example.com${path}`, { method: 'POST', headers: { [D.cron_header]: '* * * * *' } });
		assert.equal(res.status, 404, path);
	}
	const beats = await edge.dbs.acme.prepare('SELECT COUNT(*) AS n FROM heartbeats').first();
	assert.equal(beats.n, 0);
});

test('the same bundle answers the same through the dispatcher as an account Worker', async () => {
	const direct = await startEdge();
	try {
		const viaDispatch = await body(await edge.fetch('https://shop.acme.example.com/'));
		const asWorker = await body(await direct.fetch('/'));
		assert.deepEqual(Object.keys(viaDispatch).sort(), Object.keys(asWorker).sort());
		assert.equal(viaDispatch.config_source, asWorker.config_source);
		const h1 = await body(await edge.fetch(`https://shop.acme.example.com${contract.health.path}`));
		const h2 = await body(await direct.fetch(contract.health.path));
		assert.deepEqual({ ...h1, tenant: null, time: null, script: null }, { ...h2, tenant: null, time: null, script: null });
		// In workers mode the cron path does not exist at all.
		const res = await direct.fetch(D.cron_path, { method: 'POST', headers: { [D.cron_header]: '* * * * *' } });
		assert.equal(res.status, 404);
	} finally {
		await direct.close();
	}
});
