/**
 * Starts the real Worker in workerd (Miniflare) with real KV and D1, one fresh isolate per call, nothing persisted.
 * Optionally puts a wrapper around EDGE_KV that the test controls: count reads, or make them throw.
 */
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { COMPATIBILITY_DATE, embeddedFor, workerModules, MIGRATIONS_DIR } from '../../tools/bundle.mjs';
import { loadContract } from '../../tools/contract.mjs';
import { KV_PROBE_INNER, kvProbeWorker } from '../../tools/kv-probe.mjs';
import { applyMigrations, loadMigrations } from '../../tools/migrations.mjs';

export const contract = await loadContract();
export const migrations = await loadMigrations(MIGRATIONS_DIR);
export const TENANT = 'acme';
export const WEBHOOK_SECRET = 'whsec-test-0123456789';
export { COMPATIBILITY_DATE };

/**
 * The contract with a TTL of 0 and no stale window: every request re-reads KV and waits for it, so a test can change
 * KV between two requests and see the change on the next one.
 */
export const REREAD_EVERY_REQUEST = { ...contract, config_cache_ttl_seconds: 0, config_max_stale_seconds: 0 };

/** @param {Partial<Record<string, unknown>>} [overrides] */
export function makeEmbedded(overrides = {}) {
	return {
		...embeddedFor(contract, migrations, { tenant: TENANT, bundleHash: 'sha256:test-bundle', greeting: 'hello from the embedded config' }),
		...overrides,
	};
}

/**
 * @typedef {object} Edge
 * @property {Miniflare} mf
 * @property {any} kv node-side handle on the namespace the Worker reads
 * @property {any} db node-side handle on EDGE_DB
 * @property {(path: string, init?: RequestInit) => Promise<Response>} fetch
 * @property {(path: string, init?: RequestInit) => Promise<{ status: number, body: any, headers: Headers }>} fetchJson
 * @property {{ gets: string[], throwing: boolean, hanging: boolean }} kvControl reads seen by the wrapper; set throwing/hanging to fail them
 * @property {Buffer} relayKey
 * @property {() => Promise<void>} close
 */

/**
 * @param {{ embedded?: object, relayKey?: Buffer, relayKeyB64?: string, tenantBinding?: string, wrapKv?: boolean,
 *   migrate?: boolean | number, main?: { name: string, contents: string }, withoutD1?: boolean, d1Persist?: string }} [opts]
 *   migrate: true = all migrations, a number = only the first N, false = none; d1Persist: a directory that keeps D1
 *   across instances (a restart), so a later startEdge with the same directory sees what this one recorded
 * @returns {Promise<Edge>}
 */
export async function startEdge(opts = {}) {
	const embedded = opts.embedded ?? makeEmbedded();
	const relayKey = opts.relayKey ?? randomBytes(32);
	const b = contract.bindings;
	const kvControl = { gets: /** @type {string[]} */ ([]), throwing: false, hanging: false };
	const { modules, modulesRoot } = await workerModules(embedded, opts.main ? { main: opts.main } : {});
	const edgeWorker = {
		name: 'edge',
		modules,
		modulesRoot,
		compatibilityDate: COMPATIBILITY_DATE,
		bindings: { [b.relay_key]: opts.relayKeyB64 ?? relayKey.toString('base64'), [b.tenant_id]: opts.tenantBinding ?? TENANT },
		...(opts.withoutD1 ? {} : { d1Databases: { [b.d1]: 'edge-db' } }),
		...(opts.wrapKv ? { wrappedBindings: { [b.kv]: { scriptName: 'kv-wrapper' } } } : { kvNamespaces: { [b.kv]: 'edge-kv' } }),
	};
	const workers = [edgeWorker];
	if (opts.wrapKv) {
		workers.push(
			kvProbeWorker('kv-wrapper', 'edge-kv', (key) => {
				kvControl.gets.push(key);
				return kvControl.hanging ? 'hang' : kvControl.throwing ? 'throw' : 'pass';
			}),
		);
	}
	// Persistence is a shared option in Miniflare: it belongs beside `workers`, not inside one.
	const mf = new Miniflare({ workers, ...(opts.d1Persist ? { d1Persist: opts.d1Persist } : {}) });
	try {
		const kv = opts.wrapKv ? await mf.getKVNamespace(KV_PROBE_INNER, 'kv-wrapper') : await mf.getKVNamespace(b.kv, 'edge');
		const db = opts.withoutD1 ? null : await mf.getD1Database(b.d1, 'edge');
		const migrate = opts.migrate ?? true;
		if (db && migrate !== false) await applyMigrations(db, migrate === true ? migrations : migrations.slice(0, migrate));
		/** @param {string} path @param {RequestInit} [init] */
		const fetch = (path, init) => mf.dispatchFetch(`http://edge.test${path}`, /** @type {any} */ (init));
		return {
			mf,
			kv,
			db,
			fetch,
			fetchJson: async (path, init) => {
				const res = await fetch(path, init);
				const text = await res.text();
				return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
			},
			kvControl,
			relayKey,
			close: () => mf.dispose(),
		};
	} catch (err) {
		await mf.dispose();
		throw err;
	}
}
