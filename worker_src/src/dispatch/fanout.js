/**
 * Cron fan-out: every minute the dispatcher lists the tenants' cron entries (`<cron_key_prefix><tenant>`, with the
 * schedules in the key's metadata so one list call covers up to 1,000 tenants) and calls each due user Worker's
 * internal cron path through the namespace, with the same limits and egress parameters as its requests.
 */
import { cronMatches } from './cron.js';
import { callLimits } from './limits.js';
import { parseJson, parseRoute } from './routing.js';

/** Workers allow 6 simultaneous open connections per invocation; more would only queue. */
const PARALLEL = 6;

/** @typedef {{ tenant: string, ok: boolean, status: number | null, problem: string | null }} FanoutResult */

/** @param {unknown} crons @param {Date} at */
function due(crons, at) {
	if (!Array.isArray(crons)) return [];
	return crons.filter((c) => {
		try {
			return typeof c === 'string' && cronMatches(c, at);
		} catch {
			return false;
		}
	});
}

/** @param {any} kv @param {string} prefix */
async function* listed(kv, prefix) {
	/** @type {string | undefined} */
	let cursor;
	do {
		/** @type {{ keys: { name: string, metadata?: any }[], list_complete: boolean, cursor?: string }} */
		const page = await kv.list({ prefix, ...(cursor ? { cursor } : {}) });
		yield* page.keys;
		cursor = page.list_complete ? undefined : page.cursor;
	} while (cursor);
}

/**
 * @param {{ kv: any, namespace: any, settings: any, at: Date }} deps
 * @returns {Promise<FanoutResult[]>}
 */
export async function fanOut({ kv, namespace, settings, at }) {
	const d = settings.contract.dispatch;
	/** @type {{ name: string, crons: string[] }[]} */
	const work = [];
	for await (const key of listed(kv, d.cron_key_prefix)) {
		const crons = key.metadata && typeof key.metadata === 'object' ? due(key.metadata.crons, at) : null;
		// Without metadata the value decides (read below); with it, only due tenants cost a read.
		if (crons === null || crons.length) work.push({ name: key.name, crons: crons ?? [] });
	}
	/** @type {FanoutResult[]} */
	const results = [];
	const queue = [...work];
	const run = async () => {
		for (let item = queue.shift(); item; item = queue.shift()) {
			const result = await callOne(item, { kv, namespace, settings, at });
			if (result) results.push(result);
		}
	};
	await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, run));
	return results.sort((a, b) => a.tenant.localeCompare(b.tenant));
}

/**
 * @param {{ name: string, crons: string[] }} item
 * @param {{ kv: any, namespace: any, settings: any, at: Date }} deps
 * @returns {Promise<FanoutResult | null>}
 */
async function callOne(item, { kv, namespace, settings, at }) {
	const d = settings.contract.dispatch;
	const tenantOfKey = item.name.slice(d.cron_key_prefix.length);
	const value = parseJson((await kv.get(item.name)) ?? 'null');
	const route = parseRoute(value, settings.script_prefix);
	if (!route || route.tenant !== tenantOfKey) return { tenant: tenantOfKey, ok: false, status: null, problem: 'cron_entry_invalid' };
	const crons = due(/** @type {any} */ (value).crons, at);
	if (!crons.length) return null;
	const limits = callLimits(settings.plans, route.plan, route.limits);
	if (!limits) return { tenant: route.tenant, ok: false, status: null, problem: 'plan_unknown' };
	const worker = namespace.get(route.script, {}, { limits, outbound: { tenant: route.tenant, egress: route.egress } });
	let status = null;
	for (const cron of crons) {
		try {
			const res = await worker.fetch(`https://dispatch.internal${d.cron_path}`, { method: 'POST', headers: { [d.cron_header]: cron } });
			await res.body?.cancel();
			status = res.status;
			if (!res.ok) return { tenant: route.tenant, ok: false, status, problem: 'cron_failed' };
		} catch (err) {
			const missing = String(/** @type {Error} */ (err)?.message ?? '').startsWith('Worker not found');
			return { tenant: route.tenant, ok: false, status: null, problem: missing ? 'worker_missing' : 'cron_threw' };
		}
	}
	return { tenant: route.tenant, ok: true, status, problem: null };
}
