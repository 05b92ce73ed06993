/**
 * The platform's dispatch Worker (Workers for Platforms): every request on the `*\/*` route lands here and goes to the
 * tenant's user Worker named by the routing KV entry of its hostname, with the plan's custom limits and the tenant's
 * egress parameters for the outbound Worker. Every minute it fans the tenants' cron schedules out (fanout.js).
 *
 * Answers of its own: 404 unknown host; 404 for the internal cron path from outside; 503 when the routing entry is
 * unreadable, names an unknown plan, or the user Worker is missing; 502 when the user Worker threw (limits hit).
 */
import { fanOut } from './fanout.js';
import { callLimits } from './limits.js';
import { json } from './respond.js';
import { RouteTable, routedHost } from './routing.js';
import { SETTINGS } from './settings.js';

const D = SETTINGS.contract.dispatch;
const routes = new RouteTable({ prefix: D.host_key_prefix, scriptPrefix: SETTINGS.script_prefix, ttlMs: D.route_cache_ttl_seconds * 1000 });

/** The internal cron path is only ever called by fanout.js; from outside it must not reach a tenant. @param {string} path */
function isInternal(path) {
	let decoded = path;
	try {
		decoded = decodeURIComponent(path);
	} catch {
		// Undecodable: compare as is.
	}
	return decoded.toLowerCase().replace(/\/+$/, '') === D.cron_path.toLowerCase();
}

/** @param {unknown} err */
const workerMissing = (err) => String(/** @type {Error} */ (err)?.message ?? '').startsWith('Worker not found');

export default {
	/** @param {Request} request @param {Record<string, any>} env */
	async fetch(request, env) {
		const url = new URL(request.url);
		if (isInternal(url.pathname)) return json(404, { error: 'not_found' });
		const host = routedHost(request.url);
		let found;
		try {
			found = await routes.lookup(env[D.bindings.routes], host, Date.now());
		} catch (err) {
			console.error(`dispatch: routing KV read failed (${/** @type {Error} */ (err)?.name ?? 'error'})`);
			return json(503, { error: 'routing_unavailable' });
		}
		if (found.invalid) {
			console.error('dispatch: routing entry is malformed');
			return json(503, { error: 'route_invalid' });
		}
		const route = found.route;
		if (!route) return json(404, { error: 'unknown_host' });
		const limits = callLimits(SETTINGS.plans, route.plan, route.limits);
		if (!limits) {
			console.error(`dispatch: tenant ${route.tenant} names unknown plan ${route.plan}`);
			return json(503, { error: 'plan_unknown', tenant: route.tenant });
		}
		const worker = env[D.bindings.namespace].get(route.script, {}, { limits, outbound: { tenant: route.tenant, egress: route.egress } });
		try {
			return await worker.fetch(request);
		} catch (err) {
			if (workerMissing(err)) {
				console.error(`dispatch: tenant ${route.tenant}: script ${route.script} is not in the namespace`);
				return json(503, { error: 'tenant_unavailable', tenant: route.tenant });
			}
			// Only the class: a user Worker's exception message is the tenant's data.
			console.error(`dispatch: tenant ${route.tenant}: user Worker threw ${/** @type {Error} */ (err)?.name ?? 'error'}`);
			return json(502, { error: 'tenant_error', tenant: route.tenant });
		}
	},

	/** @param {ScheduledController} controller @param {Record<string, any>} env */
	async scheduled(controller, env) {
		const results = await fanOut({
			kv: env[D.bindings.routes],
			namespace: env[D.bindings.namespace],
			settings: SETTINGS,
			at: new Date(controller.scheduledTime),
		});
		const failed = results.filter((r) => !r.ok);
		for (const r of failed) console.error(`dispatch cron: tenant ${r.tenant}: ${r.problem}${r.status ? ` (HTTP ${r.status})` : ''}`);
		// Throwing marks the run failed in the dashboard, where an operator looks; every tenant was still called.
		if (failed.length)
			throw new Error(`dispatch cron: ${failed.length} of ${results.length} tenant(s) failed: ${failed.map((r) => r.tenant).join(', ')}`);
	},
};
