/**
 * Per-plan custom limits, set per call in the dispatcher (`DISPATCHER.get(name, args, { limits })`), because that is
 * where Workers for Platforms applies them. A tenant's own limits may only lower its plan's, never raise them.
 */

/** @typedef {{ cpu_ms?: number, subrequests?: number }} LimitSpec @typedef {{ cpuMs?: number, subRequests?: number }} CallLimits */

/** @param {unknown} n */
const positive = (n) => Number.isInteger(n) && /** @type {number} */ (n) > 0;

/** @param {number | undefined} plan @param {number | undefined} own */
function lower(plan, own) {
	if (plan === undefined) return own;
	return own === undefined ? plan : Math.min(plan, own);
}

/**
 * The limits for one call, or null when the plan is unknown (the caller answers 503: serving a tenant without
 * its plan's caps would hand it the platform's whole budget).
 * @param {Record<string, LimitSpec>} plans @param {string} plan @param {LimitSpec | null} own
 * @returns {CallLimits | null}
 */
export function callLimits(plans, plan, own) {
	if (!Object.hasOwn(plans, plan)) return null;
	const caps = plans[plan];
	const cpuMs = lower(caps.cpu_ms, own?.cpu_ms);
	const subRequests = lower(caps.subrequests, own?.subrequests);
	return { ...(cpuMs === undefined ? {} : { cpuMs }), ...(subRequests === undefined ? {} : { subRequests }) };
}

/** @param {unknown} value @returns {value is LimitSpec} */
export function isLimitSpec(value) {
	if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
	const v = /** @type {Record<string, unknown>} */ (value);
	return Object.keys(v).every((k) => (k === 'cpu_ms' || k === 'subrequests') && positive(v[k]));
}
