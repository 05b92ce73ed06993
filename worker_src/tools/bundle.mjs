/**
 * Builds the Worker for Miniflare the way the deploy step does: every `.js` file in src/ plus an `embedded.js` rendered
 * as `export const EMBEDDED = <json>;` (the Python side renders embedded.js.j2 the same way), linked into ONE module by
 * the deploy step's own linker (orchestrator/core/esm_link.py), so the tests run the very form Cloudflare runs.
 * CLAWDBOT_WORKER_FORM=modules runs the source modules as they are instead (to tell a linker fault from a Worker one).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const SRC_DIR = fileURLToPath(new URL('../src/', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VENV_PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
/** The linker needs only the standard library: the checkout's venv, else python3 (CLAWDBOT_PYTHON overrides). */
const PYTHON = process.env.CLAWDBOT_PYTHON || (existsSync(VENV_PYTHON) ? VENV_PYTHON : 'python3');
/** @type {Map<string, string>} bundle text by its extra modules: linking costs a Python start. */
const linkedCache = new Map();

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
 * @param {string} main @param {Record<string, string>} extra modules besides src/*.js, by name
 * @returns {string} the one module the deploy step would upload
 */
export function linkModules(main, extra) {
	const request = JSON.stringify({ main, modules: extra });
	let text = linkedCache.get(request);
	if (text === undefined) {
		text = execFileSync(PYTHON, ['-m', 'orchestrator.core.esm_link', SRC_DIR], {
			cwd: REPO_ROOT,
			input: request,
			encoding: 'utf8',
			maxBuffer: 64 * 1024 * 1024,
		});
		linkedCache.set(request, text);
	}
	return text;
}

/**
 * @param {unknown} embedded the EMBEDDED object (contract, tenant, bundle_hash, config, migrations, secret_names)
 * @param {{ main?: { name: string, contents: string } }} [options] a test harness to use as the main module instead of index.js
 * @returns {Promise<{ modulesRoot: string, modules: { type: 'ESModule', path: string, contents: string }[] }>}
 */
export async function workerModules(embedded, options = {}) {
	const main = options.main ?? { name: 'index.js', contents: '' };
	const extra = { 'embedded.js': renderEmbedded(embedded), ...(options.main ? { [main.name]: main.contents } : {}) };
	if (process.env.CLAWDBOT_WORKER_FORM === 'modules') return sourceModules(extra, main.name);
	const contents = linkModules(main.name, extra);
	return { modulesRoot: SRC_DIR, modules: [{ type: 'ESModule', path: join(SRC_DIR, main.name), contents }] };
}

/** The Worker as separate modules, main first (Miniflare runs the first module as the main one). @param {Record<string, string>} extra @param {string} mainName */
async function sourceModules(extra, mainName) {
	const names = (await readdir(SRC_DIR)).filter((n) => n.endsWith('.js')).sort();
	const own = await Promise.all(names.map(async (name) => ({ name, contents: await readFile(join(SRC_DIR, name), 'utf8') })));
	const files = [...own.filter((f) => !(f.name in extra)), ...Object.entries(extra).map(([name, contents]) => ({ name, contents }))];
	const main = files.find((f) => f.name === mainName);
	if (!main) throw new Error(`${SRC_DIR}: no ${mainName}`);
	const ordered = [main, ...files.filter((f) => f !== main)];
	return {
		modulesRoot: SRC_DIR,
		modules: ordered.map((f) => ({ type: /** @type {const} */ ('ESModule'), path: join(SRC_DIR, f.name), contents: f.contents })),
	};
}
