/**
 * Starts dispatch mode in workerd: the real dispatcher and outbound Worker (tools/dispatch.mjs, the same wiring the
 * local edge uses), each tenant's user Worker built from the SAME bundle as workers mode (tools/bundle.mjs) with
 * its own KV and D1, and a routing KV seeded the way the tenant stacks write it.
 */
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { COMPATIBILITY_DATE, embeddedFor, workerModules } from '../../tools/bundle.mjs';
import { DISPATCH_WORKER, dispatchWorkers } from '../../tools/dispatch.mjs';
import { applyMigrations } from '../../tools/migrations.mjs';
import { contract, migrations } from './edge.mjs';

export const PLANS = { free: { cpu_ms: 10, subrequests: 5 }, standard: { cpu_ms: 50, subrequests: 50 } };
export const SCRIPT_PREFIX = 'clawdbot-test-';
export const SETTINGS = { contract, plans: PLANS, script_prefix: SCRIPT_PREFIX };
const D = contract.dispatch;

/**
 * @typedef {{ tenant: string, hostnames: string[], plan?: string, limits?: object | null, egress?: string[],
 *   crons?: string[], deployed?: boolean, script?: string }} TenantCase
 *   deployed: false = routing entries exist but the user Worker is not in the namespace
 */

/** @param {TenantCase} t */
export const scriptOf = (t) => t.script ?? `${SCRIPT_PREFIX}${t.tenant}`;

/** The routing entry a tenant stack writes (see src/dispatch/routing.js). @param {TenantCase} t */
export function routeEntry(t) {
	return { v: 1, tenant: t.tenant, script: scriptOf(t), plan: t.plan ?? 'standard', limits: t.limits ?? null, egress: t.egress ?? [] };
}

/** A user Worker that fetches `?to=<url>` and reports what came back: the egress tests' client. */
const PROBE_SCRIPT = `export default { async fetch(request) {
	const to = new URL(request.url).searchParams.get('to');
	const res = await fetch(to);
	return new Response(JSON.stringify({ status: res.status, body: await res.text() }), { headers: { 'content-type': 'application/json' } });
} };`;

/**
 * @param {{ tenants: TenantCase[], probe?: { tenant: string, host: string, egress: string[] } }} opts
 */
export async function startDispatch(opts) {
	const b = contract.bindings;
	/** @type {{ name: string, args: any, options: any }[]} */
	const calls = [];
	/** @type {string[]} */
	const egressSeen = [];
	/** @type {Record<string, Buffer>} */
	const relayKeys = {};
	const users = [];
	for (const t of opts.tenants) {
		if (t.deployed === false) continue;
		relayKeys[t.tenant] = randomBytes(32);
		const embedded = embeddedFor(contract, migrations, {
			tenant: t.tenant,
			bundleHash: `sha256:${t.tenant}`,
			greeting: `hello ${t.tenant}`,
		});
		users.push({
			script: scriptOf(t),
			tenant: t.tenant,
			egress: t.egress ?? [],
			options: {
				...(await workerModules(embedded)),
				compatibilityDate: COMPATIBILITY_DATE,
				bindings: { [b.relay_key]: relayKeys[t.tenant].toString('base64'), [b.tenant_id]: t.tenant, [D.isolation_binding]: 'dispatch' },
				kvNamespaces: { [b.kv]: `kv-${t.tenant}` },
				d1Databases: { [b.d1]: `db-${t.tenant}` },
			},
		});
	}
	if (opts.probe) {
		users.push({
			script: `${SCRIPT_PREFIX}${opts.probe.tenant}`,
			tenant: opts.probe.tenant,
			egress: opts.probe.egress,
			options: { modules: true, script: PROBE_SCRIPT, compatibilityDate: COMPATIBILITY_DATE },
		});
	}
	const workers = await dispatchWorkers({
		settings: SETTINGS,
		compatibilityDate: COMPATIBILITY_DATE,
		routesKv: 'routing',
		users,
		observer: (call) => calls.push(call),
		egressFetch: (req) => {
			egressSeen.push(req.url);
			return new Response('upstream ok', { status: 200 });
		},
	});
	const mf = new Miniflare({ workers });
	try {
		const routes = await mf.getKVNamespace(D.bindings.routes, DISPATCH_WORKER);
		for (const t of opts.tenants) {
			for (const host of t.hostnames) await routes.put(D.host_key_prefix + host, JSON.stringify(routeEntry(t)));
			if (t.crons?.length) {
				await routes.put(D.cron_key_prefix + t.tenant, JSON.stringify({ ...routeEntry(t), crons: t.crons }), {
					metadata: { crons: t.crons },
				});
			}
		}
		if (opts.probe) {
			const entry = {
				v: 1,
				tenant: opts.probe.tenant,
				script: `${SCRIPT_PREFIX}${opts.probe.tenant}`,
				plan: 'standard',
				limits: null,
				egress: opts.probe.egress,
			};
			await routes.put(D.host_key_prefix + opts.probe.host, JSON.stringify(entry));
		}
		/** @type {Record<string, any>} */
		const dbs = {};
		for (const u of users) {
			if (u.tenant === opts.probe?.tenant) continue;
			dbs[u.tenant] = await mf.getD1Database(b.d1, u.script);
			await applyMigrations(dbs[u.tenant], migrations);
		}
		return {
			mf,
			routes,
			calls,
			egressSeen,
			relayKeys,
			dbs,
			/** @param {string} url @param {RequestInit} [init] */
			fetch: (url, init) => mf.dispatchFetch(url, /** @type {any} */ (init)),
			/** @param {string} tenant */
			kv: (tenant) => mf.getKVNamespace(b.kv, scriptOf(/** @type {TenantCase} */ (opts.tenants.find((t) => t.tenant === tenant)))),
			/** @param {Date} at */
			cron: async (at) => (await mf.getWorker(DISPATCH_WORKER)).scheduled({ cron: '* * * * *', scheduledTime: at }),
			close: () => mf.dispose(),
		};
	} catch (err) {
		await mf.dispose();
		throw err;
	}
}
