/**
 * `GET <contract.health.path>`: always 200 while the Worker serves. The public body carries no secrets; the
 * `detail` block (reasons, per-secret state, migrations) needs a valid, unreplayed health token.
 */
import { json } from './http.js';
import { verifyHealthToken } from './healthtoken.js';
import { claimNonce } from './records.js';
import { assess, noteConfigVersion } from './status.js';

/**
 * The public answer may reuse a D1 probe this old: it is unauthenticated, and a D1 query per request would let anyone
 * spend the tenant's D1 reads. A token-holder (the orchestrator) always gets a fresh probe.
 */
export const PUBLIC_D1_PROBE_MAX_AGE_MS = 5000;

/**
 * @typedef {import('./context.js').EdgeContext} EdgeContext
 * @typedef {import('./context.js').Bindings} Bindings
 */

/**
 * @param {Request} request @param {EdgeContext} edge @param {Bindings} bindings
 * @param {{ waitUntil(p: Promise<unknown>): void }} ctx @param {number} now
 */
export async function handleHealth(request, edge, bindings, ctx, now) {
	const token = request.headers.get(edge.contract.health.token_header);
	const authorised = token !== null && (await authorise(token, edge, bindings, now));
	const a = await assess(edge, bindings, now, authorised ? 0 : PUBLIC_D1_PROBE_MAX_AGE_MS);
	noteConfigVersion(edge, bindings, a.view, ctx);
	/** @type {Record<string, unknown>} */
	const body = {
		tenant: edge.tenant,
		status: a.status,
		config: { version: a.view.payload.version, source: a.view.source, floor: a.view.floor, problem: a.view.problem },
		script: { version: edge.embedded.bundle_hash },
		d1: { reachable: a.schema.reachable, schema: a.schema.schema },
		time: new Date(now).toISOString(),
	};
	if (authorised) {
		body.detail = {
			reasons: a.reasons,
			secrets: a.secrets,
			migrations: { required: edge.embedded.migrations, applied: a.schema.applied },
		};
	}
	return json(200, body);
}

/**
 * MAC and window first, then the replay checks, so an unauthenticated caller cannot burn nonces.
 * @param {string} token @param {EdgeContext} edge @param {Bindings} bindings @param {number} now
 * @returns {Promise<boolean>}
 */
async function authorise(token, edge, bindings, now) {
	const keys = await edge.keys;
	if (!keys) return false;
	const nowSeconds = Math.floor(now / 1000);
	const windowSeconds = edge.contract.health.token_window_seconds;
	const check = await verifyHealthToken(token, { key: keys.healthToken, tenant: edge.tenant, nowSeconds, windowSeconds });
	if (!check.ok || !edge.nonces.claim(check.nonce, check.ts, nowSeconds)) return false;
	const schema = await edge.schema.gate(bindings.db);
	if (schema.schema !== 'current') return true; // isolate memory is all we have; the detail then says why
	try {
		return await claimNonce(bindings.db, check.nonce, check.ts + windowSeconds + 1);
	} catch {
		// D1 down: fall back to this isolate's memory rather than hide the detail the orchestrator needs most now.
		return true;
	}
}
