/**
 * One assessment of the edge, shared by the health route and the cron heartbeat: which config is served,
 * the state of every relayed secret, the D1 schema, and the reasons the edge is degraded.
 */
import { configProblems } from './config.js';
import { recordConfigVersion } from './records.js';

/**
 * @typedef {import('./context.js').EdgeContext} EdgeContext
 * @typedef {import('./context.js').Bindings} Bindings
 * @typedef {{ view: import('./config.js').ConfigView, secrets: Record<string, import('./secrets.js').SecretState>,
 *   schema: import('./schema.js').SchemaView, reasons: string[], status: 'ok' | 'degraded' }} Assessment
 */

/**
 * @param {EdgeContext} edge @param {Bindings} bindings @param {number} now
 * @param {number} d1MaxAgeMs how old a D1 probe may be (0 = query D1 now)
 * @returns {Promise<Assessment>}
 */
export async function assess(edge, bindings, now, d1MaxAgeMs) {
	const [view, secrets, schema] = await Promise.all([
		edge.config.current(bindings.kv, now),
		edge.secrets.states(bindings.kv, now),
		edge.schema.probe(bindings.db, now, d1MaxAgeMs),
	]);
	const reasons = [...edge.bundleProblems];
	for (const problem of configProblems(view)) reasons.push(`config:${problem}`);
	for (const [name, state] of Object.entries(secrets)) if (state !== 'ok') reasons.push(`secret:${name}:${state}`);
	if (schema.problem) reasons.push(schema.problem);
	return { view, secrets, schema, reasons, status: reasons.length === 0 ? 'ok' : 'degraded' };
}

/**
 * Records a newly accepted KV config version in D1, once per version per isolate, off the response path.
 * A failure is logged and forgotten: the cron heartbeat records the version again.
 * @param {EdgeContext} edge @param {Bindings} bindings @param {import('./config.js').ConfigView} view
 * @param {{ waitUntil(p: Promise<unknown>): void }} ctx
 */
export function noteConfigVersion(edge, bindings, view, ctx) {
	const version = view.payload.version;
	if (view.source !== 'kv' || version <= edge.recordedVersion || !bindings.db) return;
	edge.recordedVersion = version;
	const stmt = recordConfigVersion(bindings.db, { version, at: new Date().toISOString(), bundleHash: edge.embedded.bundle_hash });
	ctx.waitUntil(stmt.run().catch(() => console.warn('edge: could not record config version in D1')));
}
