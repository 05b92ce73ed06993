// The node-side bundle helpers: tests and benches run the Worker with the date it is deployed with.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { COMPATIBILITY_DATE } from '../tools/bundle.mjs';

test('COMPATIBILITY_DATE is the compatibility_date in wrangler.jsonc', () => {
	const wrangler = readFileSync(new URL('../wrangler.jsonc', import.meta.url), 'utf8');
	const match = wrangler.match(/^\s*"compatibility_date":\s*"([^"]+)"/m);
	assert.ok(match, 'wrangler.jsonc has no compatibility_date');
	assert.equal(COMPATIBILITY_DATE, match[1]);
});
