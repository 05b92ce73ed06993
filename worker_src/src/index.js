/**
 * Clawdbot edge Worker, one per tenant (an account Worker, or the same bundle as a user Worker in a dispatch
 * namespace). This module only routes; the logic lives in the modules it imports.
 * Routes (paths from EMBEDDED.contract): GET / · GET <health.path> · POST <webhook.path> · in dispatch mode only POST
 * <dispatch.cron_path> (the dispatcher fans crons out through it). Cron: heartbeat + pruning.
 */
import { edgeFor } from './context.js';
import { EMBEDDED } from './embedded.js';
import { handleDispatchedCron } from './dispatched_cron.js';
import { handleHealth } from './health.js';
import { json, methodNotAllowed, notFound } from './http.js';
import { handleRoot } from './root.js';
import { runScheduled } from './scheduled.js';
import { handleWebhook } from './webhooks.js';

/** @typedef {(request: Request, env: Record<string, unknown>, ctx: ExecutionContext) => Promise<Response>} Handler */

/** @type {Map<string, Record<string, Handler>>} */
const ROUTES = new Map(
	/** @type {[string, Record<string, Handler>][]} */ ([
		['/', { GET: (req, env, ctx) => withEdge(env, (edge, b) => handleRoot(edge, b, ctx, Date.now())) }],
		[EMBEDDED.contract.health.path, { GET: (req, env, ctx) => withEdge(env, (edge, b) => handleHealth(req, edge, b, ctx, Date.now())) }],
		[EMBEDDED.contract.webhook.path, { POST: (req, env) => withEdge(env, (edge, b) => handleWebhook(req, edge, b, Date.now())) }],
	]),
);

/**
 * @template T
 * @param {Record<string, unknown>} env
 * @param {(edge: import('./context.js').EdgeContext, bindings: import('./context.js').Bindings) => Promise<T>} fn
 */
function withEdge(env, fn) {
	const { edge, bindings } = edgeFor(EMBEDDED, env);
	return fn(edge, bindings);
}

export default {
	/** @param {Request} request @param {Record<string, unknown>} env @param {ExecutionContext} ctx */
	async fetch(request, env, ctx) {
		const path = new URL(request.url).pathname;
		if (path === EMBEDDED.contract.dispatch.cron_path) {
			return handleDispatchedCron(request, env, EMBEDDED.contract, (cron) =>
				withEdge(env, (edge, b) => runScheduled({ cron }, edge, b, Date.now())),
			);
		}
		const route = ROUTES.get(path);
		if (!route) return notFound();
		const handler = route[request.method];
		if (!handler) return methodNotAllowed(Object.keys(route));
		try {
			return await handler(request, env, ctx);
		} catch (err) {
			// Only the error's class is logged: messages from bindings may quote data.
			console.error(`edge: unhandled ${/** @type {Error} */ (err)?.name ?? 'error'} on ${request.method} route`);
			return json(500, { error: 'internal' });
		}
	},

	/** @param {ScheduledController} controller @param {Record<string, unknown>} env @param {ExecutionContext} ctx */
	async scheduled(controller, env, ctx) {
		await withEdge(env, (edge, b) => runScheduled(controller, edge, b, Date.now()));
	},
};
