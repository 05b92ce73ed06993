// Cron fan-out: the dispatcher's minute tick calls exactly the due tenants' user Workers (their own scheduled
// handler writes the heartbeat into their own D1), keeps going past a failing tenant, and reports the run failed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cronMatches } from '../src/dispatch/cron.js';
import { contract } from './helpers/edge.mjs';
import { startDispatch } from './helpers/dispatch.mjs';

const D = contract.dispatch;
/** @param {string} iso */
const at = (iso) => new Date(iso);

test('cron matching: fields, lists, ranges, steps, names, 7 = Sunday', () => {
	const yes = [
		['* * * * *', '2026-03-02T10:07:00Z'],
		['*/15 * * * *', '2026-03-02T10:45:00Z'],
		['7 10 * * *', '2026-03-02T10:07:30Z'],
		['0-10/5 * * * *', '2026-03-02T10:05:00Z'],
		['5/20 * * * *', '2026-03-02T10:45:00Z'],
		['0 0 1 JAN *', '2026-01-01T00:00:00Z'],
		['0 12 * * MON-FRI', '2026-03-02T12:00:00Z'], // a Monday
		['0 12 * * 7', '2026-03-01T12:00:00Z'], // a Sunday
		['0 12 * * sun', '2026-03-01T12:00:00Z'],
		['0 0 1,15 * *', '2026-03-15T00:00:00Z'],
	];
	const no = [
		['*/15 * * * *', '2026-03-02T10:46:00Z'],
		['7 10 * * *', '2026-03-02T11:07:00Z'],
		['0 12 * * MON-FRI', '2026-03-01T12:00:00Z'],
		['0 0 1 FEB *', '2026-01-01T00:00:00Z'],
		['5/20 * * * *', '2026-03-02T10:15:00Z'],
	];
	for (const [c, t] of yes) assert.ok(cronMatches(c, at(t)), `${c} at ${t}`);
	for (const [c, t] of no) assert.ok(!cronMatches(c, at(t)), `${c} at ${t}`);
});

test('cron matching: L, LW, nW, dL, d#k and either-day when both day fields are set', () => {
	assert.ok(cronMatches('0 0 L * *', at('2026-02-28T00:00:00Z')));
	assert.ok(!cronMatches('0 0 L * *', at('2026-02-27T00:00:00Z')));
	assert.ok(cronMatches('0 0 LW * *', at('2026-05-29T00:00:00Z')), 'May 2026 ends on a Sunday: Friday 29th');
	assert.ok(cronMatches('0 0 1W * *', at('2026-08-03T00:00:00Z')), 'Aug 1 2026 is a Saturday: Monday 3rd, never July');
	assert.ok(cronMatches('0 0 15W * *', at('2026-03-16T00:00:00Z')), 'Mar 15 2026 is a Sunday: Monday 16th');
	assert.ok(cronMatches('0 0 * * 5L', at('2026-03-27T00:00:00Z')), 'last Friday of March 2026');
	assert.ok(!cronMatches('0 0 * * 5L', at('2026-03-20T00:00:00Z')));
	assert.ok(cronMatches('0 0 * * MON#2', at('2026-03-09T00:00:00Z')));
	assert.ok(!cronMatches('0 0 * * MON#2', at('2026-03-16T00:00:00Z')));
	assert.ok(cronMatches('0 0 13 * FRI', at('2026-03-06T00:00:00Z')), 'a Friday that is not the 13th');
	assert.ok(cronMatches('0 0 13 * FRI', at('2026-03-13T00:00:00Z')));
	assert.ok(!cronMatches('0 0 13 * FRI', at('2026-03-12T00:00:00Z')));
});

test('cron matching refuses what orchestrator/cron.py refuses', () => {
	for (const bad of ['* * * *', '60 * * * *', '*/0 * * * *', '* 24 * * *', '5-1-2 * * * *', '* * * FOO *', '1/2/3 * * * *']) {
		assert.throws(() => cronMatches(bad, at('2026-03-02T10:00:00Z')), RangeError, bad);
	}
});

/** @type {Awaited<ReturnType<typeof startDispatch>>} */
let edge;
before(async () => {
	edge = await startDispatch({
		tenants: [
			{ tenant: 'acme', hostnames: ['shop.acme.example.com'], crons: ['*/5 * * * *'] },
			{ tenant: 'globex', hostnames: ['edge.globex.example.org'], crons: ['0 * * * *', '30 2 * * *'], plan: 'free' },
			{ tenant: 'quiet', hostnames: ['quiet.example.net'] },
			{ tenant: 'gone', hostnames: ['gone.example.net'], crons: ['* * * * *'], deployed: false },
		],
	});
});
after(async () => {
	await edge?.close();
});

/** @param {string} tenant */
async function beats(tenant) {
	return (await edge.dbs[tenant].prepare('SELECT cron FROM heartbeats ORDER BY id').all()).results.map((r) => r.cron);
}

test('only due tenants run, each with its own schedule and plan limits; a missing one fails the run, not the others', async () => {
	edge.calls.length = 0;
	const run = await edge.cron(at('2026-03-02T10:05:00Z'));
	assert.equal(run.outcome, 'exception', 'tenant gone has no user Worker: the run is reported failed');
	assert.deepEqual(await beats('acme'), ['*/5 * * * *']);
	assert.deepEqual(await beats('globex'), []);
	assert.deepEqual(await beats('quiet'), []);
	const acme = edge.calls.find((c) => c.name === 'clawdbot-test-acme');
	assert.deepEqual(acme?.options.limits, { cpuMs: 50, subRequests: 50 });

	await edge.routes.delete(`${D.cron_key_prefix}gone`);
	const hourly = await edge.cron(at('2026-03-02T11:00:00Z'));
	assert.equal(hourly.outcome, 'ok');
	assert.deepEqual(await beats('acme'), ['*/5 * * * *', '*/5 * * * *']);
	assert.deepEqual(await beats('globex'), ['0 * * * *']);
	assert.equal(edge.calls.find((c) => c.name === 'clawdbot-test-globex')?.options.limits.cpuMs, 10);
});

test('a cron entry naming another tenant, or another tenant’s script, is refused', async () => {
	const every = { metadata: { crons: ['* * * * *'] } };
	const entry = { v: 1, plan: 'free', limits: null, egress: [], crons: ['* * * * *'] };
	const forged = {
		mallory: { ...entry, tenant: 'acme', script: 'clawdbot-test-acme' },
		eve: { ...entry, tenant: 'eve', script: 'clawdbot-test-acme' },
	};
	for (const [key, value] of Object.entries(forged)) await edge.routes.put(`${D.cron_key_prefix}${key}`, JSON.stringify(value), every);
	const before = (await beats('acme')).length;
	const run = await edge.cron(at('2026-03-02T10:01:00Z'));
	assert.equal(run.outcome, 'exception');
	assert.equal((await beats('acme')).length, before);
	for (const key of Object.keys(forged)) await edge.routes.delete(`${D.cron_key_prefix}${key}`);
});
