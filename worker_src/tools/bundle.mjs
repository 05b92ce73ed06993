/**
 * Builds the Worker's module list for Miniflare the way the deploy step does: every `.js` file in src/ plus an
 * `embedded.js` rendered as `export const EMBEDDED = <json>;` (the Python side renders embedded.js.j2 the same way).
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** The compatibility date the tests and benches run the Worker with: the deployed default (wrangler.jsonc, the platform stack). */
export const COMPATIBILITY_DATE = '2026-04-01';

/**
 * The EMBEDDED object a tenant's bundle carries, for node-side runs: version 1 of a config holding only a greeting.
 * @param {any} contract @param {{ name: string }[]} migrations
 * @param {{ tenant: string, bundleHash: string, greeting: string }} bundle
 */
export function embeddedFor(contract, migrations, { tenant, bundleHash, greeting }) {
	return {
		contract,
		tenant,
		bundle_hash: bundleHash,
		config: { tenant, version: 1, config: { greeting } },
		migrations: migrations.map((m) => m.name),
		secret_names: [contract.webhook.secret_name],
	};
}

/** @param {unknown} embedded */
export function renderEmbedded(embedded) {
	return `export const EMBEDDED = ${JSON.stringify(embedded)};\n`;
}

/**
 * @param {unknown} embedded the EMBEDDED object (contract, tenant, bundle_hash, config, migrations, secret_names)
 * @param {{ main?: { name: string, contents: string } }} [options] a test harness to use as the main module instead of index.js
 * @returns {Promise<{ modulesRoot: string, modules: { type: 'ESModule', path: string, contents: string }[] }>}
 */
export async function workerModules(embedded, options = {}) {
	const names = (await readdir(SRC_DIR)).filter((n) => n.endsWith('.js')).sort();
	const own = await Promise.all(names.map(async (name) => ({ name, contents: await readFile(join(SRC_DIR, name), 'utf8') })));
	const files = [...own, { name: 'embedded.js', contents: renderEmbedded(embedded) }];
	// Miniflare runs the first module as the main one.
	const main = options.main ?? files.find((f) => f.name === 'index.js');
	if (!main) throw new Error(`${SRC_DIR}: no index.js`);
	const ordered = [main, ...files.filter((f) => f.name !== main.name)];
	return {
		modulesRoot: SRC_DIR,
		modules: ordered.map((f) => ({ type: /** @type {const} */ ('ESModule'), path: join(SRC_DIR, f.name), contents: f.contents })),
	};
}
