/**
 * Hostname → tenant route, from the platform's routing KV (`<host_key_prefix><hostname>`; written by each tenant's
 * stack). Wildcard hostnames (`*.acme.example.com`) are found by walking up the labels. Answers, misses included,
 * are kept per isolate for a short TTL so a hot hostname costs no KV read and a flood of unknown ones stays cheap.
 *
 * Entry (JSON): {"v":1,"tenant","script","plan","limits":{"cpu_ms","subrequests"}|null,"egress":[host patterns]}
 * Cron entries (`<cron_key_prefix><tenant>`) are the same object plus "crons".
 */
import { isLimitSpec } from './limits.js';
import { isEgressPattern } from './egress.js';

/** @typedef {{ tenant: string, script: string, plan: string, limits: import('./limits.js').LimitSpec | null, egress: string[] }} Route */

const TENANT_RE = /^[a-z](?:[a-z0-9-]*[a-z0-9])?$/;
const SCRIPT_RE = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;
const PLAN_RE = /^[a-z][a-z0-9_-]{0,31}$/;
/** Wildcard look-ups stop here: deeper names are not worth a KV read each on every miss. */
const MAX_WILDCARD_LEVELS = 4;
const MAX_CACHED = 10_000;
const MAX_HOSTNAME = 253;

/**
 * A stored entry, checked field by field; null when anything is off (the dispatcher answers 503, never guesses).
 * The script must be the tenant's own (`<script_prefix><tenant>`), so an entry cannot send one tenant's traffic,
 * limits or egress parameters to another tenant's Worker under a wrong name.
 * @param {unknown} value @param {string} scriptPrefix @returns {Route | null}
 */
export function parseRoute(value, scriptPrefix) {
	if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
	const v = /** @type {Record<string, unknown>} */ (value);
	if (v.v !== 1) return null;
	if (typeof v.tenant !== 'string' || !TENANT_RE.test(v.tenant)) return null;
	if (typeof v.script !== 'string' || !SCRIPT_RE.test(v.script) || v.script !== scriptPrefix + v.tenant) return null;
	if (typeof v.plan !== 'string' || !PLAN_RE.test(v.plan)) return null;
	if (v.limits !== null && !isLimitSpec(v.limits)) return null;
	if (!Array.isArray(v.egress) || !v.egress.every(isEgressPattern)) return null;
	return { tenant: v.tenant, script: v.script, plan: v.plan, limits: v.limits, egress: v.egress };
}

/** @param {string} text */
export function parseJson(text) {
	try {
		return JSON.parse(text);
	} catch {
		return null;
	}
}

/** The request's hostname as routed: lower case (URL does that), no trailing dot. @param {string} url */
export function routedHost(url) {
	return new URL(url).hostname.replace(/\.$/, '');
}

/** Exact name first, then `*.<parent>` for each parent that still has two labels. @param {string} host */
export function candidates(host) {
	const names = [host];
	const labels = host.split('.');
	for (let i = 1; i <= MAX_WILDCARD_LEVELS && labels.length - i >= 2; i++) names.push(`*.${labels.slice(i).join('.')}`);
	return names;
}

/** @typedef {{ route: Route | null, invalid: boolean, until: number }} Cached */

export class RouteTable {
	/** @param {{ prefix: string, scriptPrefix: string, ttlMs: number }} options */
	constructor({ prefix, scriptPrefix, ttlMs }) {
		this.prefix = prefix;
		this.scriptPrefix = scriptPrefix;
		this.ttlMs = ttlMs;
		/** @type {Map<string, Cached>} */
		this.cache = new Map();
	}

	/**
	 * @param {any} kv the routing KV binding @param {string} host @param {number} now
	 * @returns {Promise<{ route: Route | null, invalid: boolean }>} route null + invalid false = unknown host
	 */
	async lookup(kv, host, now) {
		const hit = this.cache.get(host);
		if (hit && hit.until > now) return hit;
		/** @type {Cached} */
		let found = { route: null, invalid: false, until: now + this.ttlMs };
		if (host.length <= MAX_HOSTNAME) {
			for (const name of candidates(host)) {
				const text = await kv.get(this.prefix + name, { cacheTtl: 60 });
				if (text === null) continue;
				const route = parseRoute(parseJson(text), this.scriptPrefix);
				found = { route, invalid: route === null, until: now + this.ttlMs };
				break;
			}
		}
		if (this.cache.size >= MAX_CACHED) this.cache.delete(/** @type {string} */ (this.cache.keys().next().value));
		this.cache.set(host, found);
		return found;
	}
}
