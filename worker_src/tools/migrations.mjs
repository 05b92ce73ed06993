/**
 * D1 migrations, node side: the one helper the tests and the local edge use (the deploy step does the same in Python).
 * Algorithm (docs/contract.md, "D1 migrations"): files in name order; the names already recorded in the bookkeeping
 * table must be a prefix of the file list; every pending migration with its bookkeeping row runs in one batch, which D1
 * executes as one transaction (one round trip and one commit per database, however many are pending); when that batch
 * fails, nothing of it stays and each pending migration is applied in a batch of its own, so the error names the one
 * at fault and those before it stay applied; re-applying is a no-op.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadContract } from './contract.mjs';

export const MIGRATION_NAME = /^\d{4}_[a-z0-9_]+\.sql$/;

export class MigrationError extends Error {
	name = 'MigrationError';
}

/**
 * @typedef {{ name: string, sql: string }} Migration
 * @typedef {{ prepare(sql: string): any, batch(statements: any[]): Promise<unknown[]> }} D1Like
 */

/**
 * Every `*.sql` file in `dir`, sorted by name. A `.sql` file with a name outside NNNN_name.sql is an error, not skipped.
 * @param {string} dir @returns {Promise<Migration[]>}
 */
export async function loadMigrations(dir) {
	const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
	const bad = names.find((n) => !MIGRATION_NAME.test(n));
	if (bad) throw new MigrationError(`${join(dir, bad)}: migration files must be named NNNN_lowercase_name.sql`);
	return Promise.all(names.map(async (name) => ({ name, sql: await readFile(join(dir, name), 'utf8') })));
}

/**
 * Splits a migration into single statements (D1's batch takes one statement per prepared statement). Knows quotes,
 * bracketed identifiers and both comment styles; refuses triggers, whose bodies contain semicolons.
 * @param {string} name file name, for errors @param {string} sql @returns {string[]}
 */
export function splitStatements(name, sql) {
	/** @type {string[]} */
	const out = [];
	let current = '';
	let i = 0;
	const closers = /** @type {Record<string, string>} */ ({ "'": "'", '"': '"', '`': '`', '[': ']' });
	while (i < sql.length) {
		const ch = sql[i];
		if (ch === '-' && sql[i + 1] === '-') {
			const end = sql.indexOf('\n', i);
			i = end === -1 ? sql.length : end + 1;
			current += ' ';
		} else if (ch === '/' && sql[i + 1] === '*') {
			const end = sql.indexOf('*/', i + 2);
			if (end === -1) throw new MigrationError(`${name}: unterminated /* comment`);
			i = end + 2;
			current += ' ';
		} else if (ch in closers) {
			const close = closers[ch];
			let j = i + 1;
			for (;;) {
				j = sql.indexOf(close, j);
				if (j === -1) throw new MigrationError(`${name}: unterminated ${ch} quote`);
				// SQL escapes a quote by doubling it.
				if (close !== ']' && sql[j + 1] === close) j += 2;
				else break;
			}
			current += sql.slice(i, j + 1);
			i = j + 1;
		} else if (ch === ';') {
			if (current.trim()) out.push(current.trim());
			current = '';
			i++;
		} else {
			current += ch;
			i++;
		}
	}
	if (current.trim()) out.push(current.trim());
	if (out.length === 0) throw new MigrationError(`${name}: no SQL statements`);
	const trigger = out.find((s) => /^CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(s));
	if (trigger) throw new MigrationError(`${name}: CREATE TRIGGER is not supported (its body would be split at ';')`);
	return out;
}

/** @param {Migration[]} migrations */
function checkOrder(migrations) {
	for (let i = 0; i < migrations.length; i++) {
		const { name } = migrations[i];
		if (!MIGRATION_NAME.test(name)) throw new MigrationError(`${name}: migration names must look like NNNN_lowercase_name.sql`);
		if (i > 0 && migrations[i - 1].name >= name) throw new MigrationError(`${name}: migrations must be unique and in name order`);
		// Two files with one number would apply in an order that depends on their names alone; the Python side refuses it too.
		if (i > 0 && migrations[i - 1].name.slice(0, 4) === name.slice(0, 4))
			throw new MigrationError(`${name}: migration number ${name.slice(0, 4)} is used twice`);
	}
}

/**
 * @param {D1Like} d1 @param {string} table
 * @returns {Promise<string[]>} names already applied, in application order
 */
export async function appliedMigrations(d1, table) {
	// One batch, one round trip: the table is made if missing and read in the same transaction.
	const [, read] = /** @type {[unknown, { results: { name: string }[] }]} */ (
		await d1.batch([
			d1.prepare(
				`CREATE TABLE IF NOT EXISTS "${table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
			),
			d1.prepare(`SELECT name FROM "${table}" ORDER BY id`),
		])
	);
	return read.results.map((r) => r.name);
}

/**
 * Applies what is pending. Throws MigrationError (nothing applied) when the database's history is not a prefix of
 * `migrations`; a failing migration rolls back with its bookkeeping row, and later ones are not attempted.
 * @param {D1Like} d1
 * @param {Migration[]} migrations
 * @param {{ table?: string }} [options] bookkeeping table, default the contract's migrations_table
 * @returns {Promise<{ applied: string[], skipped: string[] }>} newly applied, and already present
 */
export async function applyMigrations(d1, migrations, options = {}) {
	const table = options.table ?? (await loadContract()).migrations_table;
	checkOrder(migrations);
	const statements = migrations.map((m) => splitStatements(m.name, m.sql));
	const done = await appliedMigrations(d1, table);
	const wanted = migrations.map((m) => m.name);
	const divergence = done.findIndex((name, i) => wanted[i] !== name);
	if (divergence !== -1 || done.length > wanted.length) {
		const at = divergence === -1 ? wanted.length : divergence;
		throw new MigrationError(
			`database has migration ${JSON.stringify(done[at])} at position ${at + 1} where the migration files have ` +
				`${JSON.stringify(wanted[at] ?? null)}; the applied history must be a prefix of the files, refusing to guess`,
		);
	}
	/** @param {number} i */
	const withRow = (i) => [
		...statements[i].map((s) => d1.prepare(s)),
		d1.prepare(`INSERT INTO "${table}" (name) VALUES (?1)`).bind(wanted[i]),
	];
	const pending = wanted.slice(done.length);
	if (pending.length === 0) return { applied: [], skipped: done };
	try {
		await d1.batch(pending.flatMap((_name, k) => withRow(done.length + k)));
		return { applied: pending, skipped: done };
	} catch {
		// Rolled back whole (D1 runs a batch as one transaction): one at a time now, to name the migration at fault.
	}
	const applied = [];
	for (let i = done.length; i < migrations.length; i++) {
		const { name } = migrations[i];
		try {
			await d1.batch(withRow(i));
		} catch (err) {
			throw new MigrationError(
				`${name}: failed and was rolled back (${/** @type {Error} */ (err).message}); applied before it: ${JSON.stringify(applied)}`,
			);
		}
		applied.push(name);
	}
	return { applied, skipped: done };
}
