/**
 * Cron: one heartbeat row (what this edge serves and whether it is degraded), the config version in use, and
 * pruning of old events, heartbeats and expired health-token nonces, all in one D1 batch (one transaction).
 */
import { heartbeat, pruneStatements, recordConfigVersion } from './records.js';
import { assess } from './status.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Webhook events are kept for a month: long enough to replay a tenant's processing after an incident. */
export const EVENT_RETENTION_DAYS = 30;
/** Heartbeats only show recent liveness; a week covers any orchestrator outage worth investigating. */
export const HEARTBEAT_RETENTION_DAYS = 7;

/**
 * @param {{ cron: string }} controller @param {import('./context.js').EdgeContext} edge
 * @param {import('./context.js').Bindings} bindings @param {number} now
 */
export async function runScheduled(controller, edge, bindings, now) {
	const a = await assess(edge, bindings, now, 0);
	if (a.schema.schema !== 'current') {
		// Throwing marks the cron run as failed in Cloudflare's dashboard, which is where an operator will look.
		throw new Error(`edge cron: D1 schema is ${a.schema.schema} (${a.schema.problem ?? 'no detail'}); heartbeat not written`);
	}
	const db = bindings.db;
	const at = new Date(now).toISOString();
	const statements = [
		heartbeat(db, {
			at,
			cron: controller.cron,
			configVersion: a.view.payload.version,
			configSource: a.view.source,
			status: a.status,
			bundleHash: edge.embedded.bundle_hash,
		}),
		...pruneStatements(db, {
			eventsBefore: new Date(now - EVENT_RETENTION_DAYS * DAY_MS).toISOString(),
			heartbeatsBefore: new Date(now - HEARTBEAT_RETENTION_DAYS * DAY_MS).toISOString(),
			nowSeconds: Math.floor(now / 1000),
		}),
	];
	if (a.view.source === 'kv') {
		statements.push(recordConfigVersion(db, { version: a.view.payload.version, at, bundleHash: edge.embedded.bundle_hash }));
	}
	await db.batch(statements);
}
