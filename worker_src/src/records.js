/**
 * The Worker's D1 writes. Every statement binds its values; table names are the ones in migrations/.
 */

/**
 * @typedef {{ prepare(sql: string): any, batch(statements: any[]): Promise<any[]> }} D1Like
 */

/** @param {D1Like} db @param {{ version: number, at: string, bundleHash: string }} row */
export function recordConfigVersion(db, { version, at, bundleHash }) {
	return db
		.prepare(
			'INSERT INTO applied_config_versions (version, first_seen_at, bundle_hash) VALUES (?1, ?2, ?3) ON CONFLICT (version) DO NOTHING',
		)
		.bind(version, at, bundleHash);
}

/**
 * Highest config version any isolate of this tenant has accepted: the floor a fresh isolate must not
 * go below. 0 when nothing is recorded; null when D1 cannot say (the caller must not adopt a KV
 * document it has not vetted before, or a replayed old one could win).
 * @param {D1Like | null} db @returns {Promise<number | null>}
 */
export async function highestConfigVersion(db) {
	if (!db) return null;
	try {
		const row = await db.prepare('SELECT MAX(version) AS v FROM applied_config_versions').first();
		return Number(row?.v ?? 0);
	} catch {
		return null;
	}
}

/**
 * Idempotent by what is signed: a delivery whose exact body (its SHA-256) or whose id was stored before changes
 * nothing, so of any number of concurrent or replayed deliveries exactly one insert changes a row. Rows from before
 * the body hash existed (migration 0003) are matched by their body.
 * @param {D1Like} db @param {{ id: string, topic: string | null, body: string, bodySha256: string, receivedAt: string }} event
 * @returns {Promise<boolean>} true when this call stored the event
 */
export async function storeWebhookEvent(db, { id, topic, body, bodySha256, receivedAt }) {
	// The WHERE clause also keeps SQLite from reading ON CONFLICT as part of the SELECT (see its upsert docs).
	const result = await db
		.prepare(
			`INSERT INTO webhook_events (webhook_id, topic, body, received_at, body_sha256)
			SELECT ?1, ?2, ?3, ?4, ?5
			WHERE NOT EXISTS (SELECT 1 FROM webhook_events WHERE body_sha256 IS NULL AND body = ?3)
			ON CONFLICT DO NOTHING`,
		)
		.bind(id, topic, body, receivedAt, bodySha256)
		.run();
	return result.meta.changes === 1;
}

/**
 * Cross-isolate replay guard for health tokens.
 * @param {D1Like} db @param {string} nonce @param {number} expiresAt unix seconds
 * @returns {Promise<boolean>} true the first time this nonce is seen
 */
export async function claimNonce(db, nonce, expiresAt) {
	const result = await db
		.prepare('INSERT INTO health_token_nonces (nonce, expires_at) VALUES (?1, ?2) ON CONFLICT (nonce) DO NOTHING')
		.bind(nonce, expiresAt)
		.run();
	return result.meta.changes === 1;
}

/**
 * @param {D1Like} db
 * @param {{ at: string, cron: string, configVersion: number, configSource: string, status: string, bundleHash: string }} beat
 */
export function heartbeat(db, beat) {
	return db
		.prepare('INSERT INTO heartbeats (at, cron, config_version, config_source, status, bundle_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)')
		.bind(beat.at, beat.cron, beat.configVersion, beat.configSource, beat.status, beat.bundleHash);
}

/** @param {D1Like} db @param {{ eventsBefore: string, heartbeatsBefore: string, nowSeconds: number }} cutoffs */
export function pruneStatements(db, { eventsBefore, heartbeatsBefore, nowSeconds }) {
	return [
		db.prepare('DELETE FROM webhook_events WHERE received_at < ?1').bind(eventsBefore),
		db.prepare('DELETE FROM heartbeats WHERE at < ?1').bind(heartbeatsBefore),
		db.prepare('DELETE FROM health_token_nonces WHERE expires_at < ?1').bind(nowSeconds),
	];
}
