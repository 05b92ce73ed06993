// Routing: the documented routes answer, unknown paths are 404 JSON, wrong methods 405 JSON with Allow.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { contract, startEdge, TENANT } from './helpers/edge.mjs';

/** @type {import('./helpers/edge.mjs').Edge} */
let e;
before(async () => {
	e = await startEdge();
});
after(() => e?.close());

test('GET / answers tenant, config version and source, greeting', async () => {
	const { status, body, headers } = await e.fetchJson('/');
	assert.equal(status, 200);
	assert.match(headers.get('content-type') ?? '', /^application\/json/);
	assert.deepEqual(body, { tenant: TENANT, config_version: 1, config_source: 'embedded', greeting: 'hello from the embedded config' });
});

test('unknown paths are 404 JSON, query strings do not matter, paths are exact', async () => {
	for (const path of ['/nope', '/_edge', `${contract.health.path}/`, `${contract.webhook.path}/x`, '/index.js', '/embedded.js']) {
		const { status, body } = await e.fetchJson(path);
		assert.deepEqual({ status, body }, { status: 404, body: { error: 'not_found' } }, path);
	}
	assert.equal((await e.fetchJson('/?x=1')).status, 200);
});

test('wrong methods are 405 JSON and say which method is allowed', async () => {
	const cases = [
		['/', 'POST', 'GET'],
		['/', 'DELETE', 'GET'],
		[contract.health.path, 'POST', 'GET'],
		[contract.webhook.path, 'GET', 'POST'],
		[contract.webhook.path, 'PUT', 'POST'],
	];
	for (const [path, method, allow] of cases) {
		const { status, body, headers } = await e.fetchJson(path, { method });
		assert.deepEqual(
			{ status, body, allow: headers.get('allow') },
			{ status: 405, body: { error: 'method_not_allowed' }, allow },
			`${method} ${path}`,
		);
	}
});
