// The outbound Worker in workerd: a user Worker's fetch() passes only to hosts on its tenant's allow-list.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { COMPATIBILITY_DATE } from '../tools/bundle.mjs';
import { dispatchModules, OUTBOUND_MAIN } from '../tools/dispatch.mjs';
import { egressAllowed, isEgressPattern } from '../src/dispatch/egress.js';
import { SETTINGS, startDispatch } from './helpers/dispatch.mjs';

/** @type {Awaited<ReturnType<typeof startDispatch>>} */
let edge;
before(async () => {
	edge = await startDispatch({
		tenants: [],
		probe: { tenant: 'probe', host: 'probe.acme.example.com', egress: ['api.stripe.com', '*.hooks.example.org'] },
	});
});
after(async () => {
	await edge?.close();
});

/** @param {string} to */
async function probe(to) {
	const res = await edge.fetch(`https://probe.acme.example.com/?to=${encodeURIComponent(to)}`);
	assert.equal(res.status, 200);
	return JSON.parse(await res.text());
}

test('a listed host passes, through the dispatcher and the user Worker, to the network', async () => {
	edge.egressSeen.length = 0;
	for (const to of ['https://api.stripe.com/v1/charges', 'https://a.hooks.example.org/x', 'https://API.STRIPE.COM./y']) {
		assert.deepEqual(await probe(to), { status: 200, body: 'upstream ok' }, to);
	}
	assert.equal(edge.egressSeen.length, 3);
	assert.equal(new URL(edge.egressSeen[0]).hostname, 'api.stripe.com');
});

test('anything else is refused with 403 and never leaves', async () => {
	edge.egressSeen.length = 0;
	for (const to of [
		'https://evil.example.com/',
		'https://api.stripe.com.evil.example.com/',
		'https://hooks.example.org/', // the wildcard covers names below it, not the suffix itself
		'https://xhooks.example.org/',
		'https://10.0.0.1/',
		'https://[::1]/',
		'http://api.stripe.com@evil.example.com/',
	]) {
		const got = await probe(to);
		assert.equal(got.status, 403, to);
		assert.deepEqual(JSON.parse(got.body), { error: 'egress_denied' }, to);
	}
	assert.deepEqual(edge.egressSeen, []);
});

test('without the dispatcher’s parameters every fetch is refused (fail closed)', async () => {
	const mf = new Miniflare({
		name: 'outbound',
		...(await dispatchModules(SETTINGS, OUTBOUND_MAIN)),
		compatibilityDate: COMPATIBILITY_DATE,
		bindings: { tenant: 'acme' }, // egress missing
		outboundService: () => new Response('must not be reached'),
	});
	try {
		const res = await mf.dispatchFetch('https://api.stripe.com/');
		assert.equal(res.status, 403);
		assert.deepEqual(JSON.parse(await res.text()), { error: 'egress_unconfigured' });
	} finally {
		await mf.dispose();
	}
});

test('allow-list patterns: names and one-level wildcards only', () => {
	for (const ok of ['api.stripe.com', '*.example.org', 'a-b.c.example.co']) assert.ok(isEgressPattern(ok), ok);
	for (const bad of [
		'*',
		'*.com',
		'example',
		'10.0.0.1',
		'API.stripe.com',
		'a..b.com',
		'*.*.example.org',
		'x.com/path',
		'ex ample.com',
		7,
	]) {
		assert.ok(!isEgressPattern(bad), String(bad));
	}
	assert.ok(egressAllowed(['*.example.org'], 'deep.er.example.org'));
	assert.ok(!egressAllowed(['*.example.org'], 'example.org'));
	assert.ok(!egressAllowed([], 'api.stripe.com'));
});
