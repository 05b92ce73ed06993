/**
 * The local edge runtime: every tenant's Worker in ONE workerd process (Miniflare), routed by hostname.
 *
 * Started by `python -m orchestrator local up` (orchestrator/local_edge/runtime.py) as a background process.
 * Input: the runtime plan as JSON on stdin (it carries relay keys, so it never touches argv or disk).
 * Output: `runtime.json` in the state directory once every tenant is seeded and serving; log lines on stdout.
 * Stops cleanly on SIGTERM/SIGINT (Miniflare disposes workerd).
 *
 * Miniflare is the pinned copy in worker_src/node_modules; migrations use worker_src/tools/migrations.mjs,
 * the same helper the Worker's own tests use, run inside workerd by the control worker (control.mjs).
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// Before Miniflare is loaded: its config serialisation is quadratic in the config's size (workers-sdk#15271).
import { growthPatch } from './capnp_growth.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
// Python passes its WORKER_SRC (orchestrator.core.contract): the checkout's worker_src/, or in an
// installed package orchestrator/_assets/worker_src/, where setup-vps.sh runs `npm ci`.
const WORKER_SRC = process.env.CLAWDBOT_WORKER_SRC || join(HERE, '..', '..', 'worker_src');
const MIGRATIONS_TOOL = join(WORKER_SRC, 'tools', 'migrations.mjs');
const DISPATCH_TOOL = join(WORKER_SRC, 'tools', 'dispatch.mjs');
const require = createRequire(join(WORKER_SRC, 'package.json'));
const { Miniflare, Log, LogLevel } = await import(pathToFileURL(require.resolve('miniflare')).href);

const FALLBACK_WORKER = 'clawdbot-local-unrouted';
const CONTROL_WORKER = 'clawdbot-local-control';
// Unknown hosts land on Miniflare's fallback (the first worker): answer them like Cloudflare would, 404.
const FALLBACK_SCRIPT = `export default { fetch() {
	return new Response(JSON.stringify({ error: 'no_tenant_for_host' }), { status: 404, headers: { 'content-type': 'application/json' } });
} };`;

/** Secrets this process holds; every line it prints passes through redact(). @type {string[]} */
const secrets = [];

/** @param {unknown} text */
function redact(text) {
	let out = String(text);
	for (const s of secrets) if (s) out = out.split(s).join('[redacted]');
	return out;
}

/** @param {string} message */
function log(message) {
	process.stdout.write(`${new Date().toISOString()} local-edge: ${redact(message)}\n`);
}

async function readStdin() {
	const chunks = [];
	for await (const chunk of process.stdin) chunks.push(chunk);
	return Buffer.concat(chunks).toString('utf8');
}

/** @param {string} text */
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * One tenant's Miniflare worker options, from its plan (bindings already resolved by the Python side). A user
 * Worker (dispatch mode) gets no route: like on Cloudflare, only the dispatcher reaches it.
 */
function tenantWorker(t, routed = true) {
	const root = `/clawdbot/${t.worker}`;
	// Miniflare runs the first module as the main one.
	const ordered = [...t.modules.filter((m) => m.name === t.main_module), ...t.modules.filter((m) => m.name !== t.main_module)];
	const options = {
		name: t.worker,
		modulesRoot: root,
		modules: ordered.map((m) => ({ type: 'ESModule', path: `${root}/${m.name}`, contents: m.content })),
		compatibilityDate: t.compatibility_date,
		compatibilityFlags: t.compatibility_flags,
		routes: routed ? t.routes : [],
		bindings: {},
		kvNamespaces: {},
		d1Databases: {},
	};
	for (const b of t.bindings) {
		if (b.type === 'kv_namespace') options.kvNamespaces[b.name] = t.kv_namespace;
		else if (b.type === 'd1') options.d1Databases[b.name] = t.d1_database;
		else if (b.type === 'secret_text' || b.type === 'plain_text') options.bindings[b.name] = b.value;
		else throw new Error(`tenant ${t.tenant}: binding ${b.name} has unsupported type ${b.type}`);
	}
	return options;
}

/** What the runtime was given, minus values: the parity tests compare this with what TenantEdge registers. */
function describeTenant(t, seeded) {
	return {
		tenant: t.tenant,
		worker: t.worker,
		hostnames: t.hostnames,
		bundle_hash: t.bundle_hash,
		config_version: t.config_version,
		routes: t.routes,
		kv_namespace: t.kv_namespace,
		d1_database: t.d1_database,
		bindings: t.bindings.map((b) => ({
			name: b.name,
			type: b.type,
			target: b.type === 'kv_namespace' ? t.kv_namespace : b.type === 'd1' ? t.d1_database : null,
		})),
		modules: t.modules.map((m) => ({ name: m.name, sha256: sha256(m.content) })),
		main_module: t.main_module,
		compatibility_date: t.compatibility_date,
		compatibility_flags: t.compatibility_flags,
		kv_keys: Object.keys(t.kv).sort(),
		migrations: { applied: seeded.applied, skipped: seeded.skipped },
	};
}

async function controlWorker(plan) {
	const root = '/clawdbot/control';
	// migrations.mjs reads the contract from disk through import.meta.url, which workerd does not provide; the shim
	// hands it the same contract object instead.
	const contractShim = `export async function loadContract() { return ${JSON.stringify(plan.contract)}; }\n`;
	return {
		name: CONTROL_WORKER,
		modulesRoot: root,
		modules: [
			{ type: 'ESModule', path: `${root}/control.mjs`, contents: await readFile(join(HERE, 'control.mjs'), 'utf8') },
			{ type: 'ESModule', path: `${root}/readonly_sql.mjs`, contents: await readFile(join(HERE, 'readonly_sql.mjs'), 'utf8') },
			{ type: 'ESModule', path: `${root}/migrations.mjs`, contents: await readFile(MIGRATIONS_TOOL, 'utf8') },
			{ type: 'ESModule', path: `${root}/contract.mjs`, contents: contractShim },
		],
		compatibilityDate: plan.control_compatibility_date,
		// migrations.mjs imports node:fs/promises and node:path at module level.
		compatibilityFlags: ['nodejs_compat'],
		bindings: { CONTROL_TOKEN: plan.control_token, TENANTS: Object.fromEntries(plan.tenants.map((t, i) => [t.tenant, i])) },
		kvNamespaces: {
			...Object.fromEntries(plan.tenants.map((t, i) => [`KV_${i}`, t.kv_namespace])),
			// Dispatch mode: the routing KV, the same namespace the dispatcher reads (rewritten at every start).
			...(plan.dispatch ? { ROUTES: plan.dispatch.routes_kv } : {}),
		},
		d1Databases: Object.fromEntries(plan.tenants.map((t, i) => [`DB_${i}`, t.d1_database])),
	};
}

/** Workers mode: the fallback (unknown hosts) and every tenant on its routes. Dispatch mode: the dispatcher first. */
async function frontWorkers(plan) {
	if (!plan.dispatch) {
		const fallback = { name: FALLBACK_WORKER, modules: true, script: FALLBACK_SCRIPT, compatibilityDate: plan.control_compatibility_date };
		return [fallback, ...plan.tenants.map((t) => tenantWorker(t))];
	}
	// The same wiring the dispatch tests use: the real dispatcher and outbound Worker, a namespace binding
	// of the dispatcher API's shape over one service binding per user Worker (worker_src/tools/dispatch.mjs).
	const { dispatchWorkers } = await import(pathToFileURL(DISPATCH_TOOL).href);
	return dispatchWorkers({
		settings: plan.dispatch.settings,
		compatibilityDate: plan.dispatch.compatibility_date,
		routesKv: plan.dispatch.routes_kv,
		users: plan.tenants.map((t) => ({ script: t.worker, tenant: t.tenant, egress: t.egress, options: tenantWorker(t, false) })),
	});
}

async function writeAtomically(path, text) {
	const tmp = `${path}.${process.pid}.tmp`;
	await writeFile(tmp, text, { mode: 0o600 });
	await rename(tmp, path);
}

/** The running Miniflare, so a failure after start still disposes workerd (never an orphan runtime). */
let current = null;

async function main() {
	const plan = JSON.parse(await readStdin());
	secrets.push(plan.control_token, ...plan.tenants.flatMap((t) => t.bindings.filter((b) => b.type === 'secret_text').map((b) => b.value)));
	const started = performance.now();
	log(`starting workerd with ${plan.tenants.length} tenant(s) on ${plan.host}:${plan.port}`);
	if (growthPatch.state !== 'applied') log(`config serialisation fix (workers-sdk#15271) not applied: ${growthPatch.state}`);
	const mf = new Miniflare({
		host: plan.host,
		port: plan.port,
		kvPersist: plan.kv_persist,
		d1Persist: plan.d1_persist,
		log: new Log(LogLevel.INFO),
		// A placeholder request.cf instead of fetching Cloudflare's: loopback only, no network at start.
		cf: false,
		workers: [...(await frontWorkers(plan)), await controlWorker(plan)],
	});
	current = mf;
	let stopping = false;
	const stop = async (signal) => {
		if (stopping) return;
		stopping = true;
		log(`${signal}: stopping`);
		await mf.dispose().catch((err) => log(`dispose failed: ${err?.message ?? err}`));
		process.exit(0);
	};
	process.on('SIGTERM', () => stop('SIGTERM'));
	process.on('SIGINT', () => stop('SIGINT'));

	const url = await mf.ready;
	const runtimeReadyMs = performance.now() - started;
	log(`workerd ready at ${url.href} after ${runtimeReadyMs.toFixed(0)} ms; seeding KV and applying migrations`);
	const response = await mf.dispatchFetch('http://control.local/seed', {
		method: 'POST',
		headers: { 'MF-Route-Override': CONTROL_WORKER, authorization: `Bearer ${plan.control_token}` },
		body: JSON.stringify({
			migrations_table: plan.contract.migrations_table,
			tenants: plan.tenants.map((t) => ({ tenant: t.tenant, kv: t.kv, migrations: t.migrations })),
			routing: plan.dispatch ? plan.dispatch.routing : null,
		}),
	});
	if (response.status !== 200) throw new Error(`control worker refused the seed: HTTP ${response.status}`);
	const { results, routing } = await response.json();
	const failed = results.filter((r) => r.error);
	if (failed.length) {
		throw new Error(failed.map((r) => `tenant ${r.tenant}: ${r.error}`).join('; '));
	}
	if (routing) log(`dispatch mode: ${routing.written} routing entries written`);
	const byTenant = Object.fromEntries(results.map((r) => [r.tenant, r]));
	for (const r of results) {
		log(`tenant ${r.tenant}: KV seeded, migrations applied ${JSON.stringify(r.applied)} (already there: ${r.skipped.length})`);
	}
	const readyMs = performance.now() - started;
	await writeAtomically(
		plan.ready_file,
		JSON.stringify(
			{
				v: 1,
				pid: process.pid,
				url: url.href,
				host: plan.host,
				port: Number(url.port),
				control_worker: CONTROL_WORKER,
				started_at: new Date().toISOString(),
				runtime_ready_ms: Math.round(runtimeReadyMs),
				ready_ms: Math.round(readyMs),
				config_ttl_seconds: plan.config_ttl_seconds,
				isolation: plan.dispatch ? 'dispatch' : 'workers',
				tenants: plan.tenants.map((t) => describeTenant(t, byTenant[t.tenant])),
			},
			null,
			2,
		),
	);
	log(`ready: ${plan.tenants.length} tenant(s) serving at ${url.href} after ${readyMs.toFixed(0)} ms`);
}

main().catch(async (err) => {
	log(`failed: ${err?.stack ?? err}`);
	await current?.dispose().catch(() => {});
	process.exit(1);
});
