/**
 * Is the D1 schema at least what this bundle needs? Reads wrangler's migrations table; never writes it
 * (migrations are applied by the deploy step, not by the Worker).
 */

/**
 * @typedef {'current' | 'behind' | 'unknown'} SchemaState
 * @typedef {{ reachable: boolean, schema: SchemaState, applied: string[], problem: string | null }} SchemaView
 * @typedef {{ prepare(sql: string): { all(): Promise<{ results: Record<string, unknown>[] }> } }} D1Like
 */

/**
 * Pure comparison. Newer migrations than the bundle knows are fine (expand/contract: the schema moves first);
 * a history that diverges from the bundle's list is reported, never guessed at.
 * @param {string[]} applied @param {string[]} required @returns {{ schema: SchemaState, problem: string | null }}
 */
export function compareMigrations(applied, required) {
	const common = Math.min(applied.length, required.length);
	for (let i = 0; i < common; i++) {
		if (applied[i] !== required[i]) return { schema: 'unknown', problem: 'schema_diverged' };
	}
	return applied.length >= required.length ? { schema: 'current', problem: null } : { schema: 'behind', problem: 'schema_behind' };
}

/**
 * @param {D1Like | undefined} db
 * @param {string} table contract.migrations_table
 * @param {string[]} required names from EMBEDDED.migrations, in order
 * @returns {Promise<SchemaView>}
 */
export async function readSchema(db, table, required) {
	if (!db) return { reachable: false, schema: 'unknown', applied: [], problem: 'd1_unbound' };
	let rows;
	try {
		// The table name comes from the contract, not from a request; identifiers cannot be bound parameters.
		rows = (await db.prepare(`SELECT name FROM "${table}" ORDER BY id`).all()).results;
	} catch (err) {
		// A fresh database has no bookkeeping table yet: reachable, nothing applied.
		if (String(/** @type {Error} */ (err)?.message).includes('no such table')) {
			return { reachable: true, ...compareMigrations([], required), applied: [] };
		}
		return { reachable: false, schema: 'unknown', applied: [], problem: 'd1_unreachable' };
	}
	const applied = rows.map((r) => String(r.name));
	return { reachable: true, ...compareMigrations(applied, required), applied };
}

/**
 * Two views of the schema. `gate` is for features: it caches a `current` answer for good (the schema never moves
 * backwards), while `behind` is re-checked every time so a deploy that migrates is seen at once. `probe` is for health:
 * it re-reads D1 once its answer is older than `maxAgeMs` (0 = always), because "reachable now" cannot come from a cache.
 */
export class SchemaGate {
	/** @param {string} table @param {string[]} required */
	constructor(table, required) {
		this.table = table;
		this.required = required;
		/** @type {SchemaView | null} */
		this.current = null;
		/** @type {{ view: SchemaView, at: number } | null} */
		this.lastProbe = null;
	}

	/** @param {D1Like | undefined} db @returns {Promise<SchemaView>} */
	async gate(db) {
		return this.current ?? this.read(db, Date.now());
	}

	/** @param {D1Like | undefined} db @param {number} now @param {number} maxAgeMs @returns {Promise<SchemaView>} */
	async probe(db, now, maxAgeMs) {
		if (this.lastProbe && now - this.lastProbe.at < maxAgeMs) return this.lastProbe.view;
		return this.read(db, now);
	}

	/** @param {D1Like | undefined} db @param {number} now */
	async read(db, now) {
		const view = await readSchema(db, this.table, this.required);
		if (view.schema === 'current') this.current = view;
		this.lastProbe = { view, at: now };
		return view;
	}
}
