// The node-side migration helper (tests and local edge): applied once, re-apply no-op, prefix rule, atomic failure.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { applyMigrations, loadMigrations, MigrationError, splitStatements } from '../tools/migrations.mjs';
import { contract, migrations } from './helpers/edge.mjs';

const TABLE = contract.migrations_table;
/** @type {Miniflare} */
let mf;
/** @type {any} */
let db;
let n = 0;

before(() => {
	mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response(null); } }', d1Databases: ['DB'] });
});
after(() => mf.dispose());
// A fresh database per test: a new D1 id in the same Miniflare.
afterEach(async () => {
	n++;
	await mf.setOptions({
		modules: true,
		script: 'export default { fetch() { return new Response(null); } }',
		d1Databases: { DB: `db-${n}` },
	});
	db = await mf.getD1Database('DB');
});
before(async () => {
	db = await mf.getD1Database('DB');
});

/** @param {string} sql */
const rows = async (sql) => (await db.prepare(sql).all()).results;
const tables = async () =>
	(
		await rows(
			"SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) != 'sqlite_' AND substr(name, 1, 4) != '_cf_' ORDER BY name",
		)
	).map((r) => r.name);

describe('applying the real migrations', () => {
	test('fresh database: every migration once, in order, with its bookkeeping row', async () => {
		const result = await applyMigrations(db, migrations);
		assert.deepEqual(result, { applied: migrations.map((m) => m.name), skipped: [] });
		assert.deepEqual(
			(await rows(`SELECT name FROM ${TABLE} ORDER BY id`)).map((r) => r.name),
			migrations.map((m) => m.name),
		);
		assert.deepEqual(await tables(), ['applied_config_versions', TABLE, 'health_token_nonces', 'heartbeats', 'webhook_events'].sort());
	});

	test('re-applying is a no-op', async () => {
		await applyMigrations(db, migrations);
		await db.prepare("INSERT INTO webhook_events (webhook_id, body, received_at) VALUES ('keep', '{}', 'now')").run();
		assert.deepEqual(await applyMigrations(db, migrations), { applied: [], skipped: migrations.map((m) => m.name) });
		assert.equal((await rows(`SELECT id FROM ${TABLE}`)).length, migrations.length);
		assert.deepEqual(await rows('SELECT webhook_id FROM webhook_events'), [{ webhook_id: 'keep' }]);
	});

	test('an older database gets only what is pending', async () => {
		await applyMigrations(db, migrations.slice(0, 1));
		assert.deepEqual(await applyMigrations(db, migrations), {
			applied: migrations.slice(1).map((m) => m.name),
			skipped: [migrations[0].name],
		});
	});
});

describe('round trips', () => {
	/** The database as applyMigrations sees it, counting what it sends. @param {any} d1 */
	const counting = (d1) => {
		const calls = { batch: 0, run: 0, all: 0 };
		return {
			calls,
			prepare: (/** @type {string} */ sql) => {
				const statement = d1.prepare(sql);
				return Object.assign(Object.create(statement), {
					bind: (/** @type {unknown[]} */ ...args) => statement.bind(...args),
					run: () => (calls.run++, statement.run()),
					all: () => (calls.all++, statement.all()),
				});
			},
			batch: (/** @type {any[]} */ statements) => (calls.batch++, d1.batch(statements)),
		};
	};

	test('a fresh database gets every migration in one batch after one batch reading the history', async () => {
		const d1 = counting(db);
		assert.deepEqual(await applyMigrations(d1, migrations), { applied: migrations.map((m) => m.name), skipped: [] });
		assert.deepEqual(d1.calls, { batch: 2, run: 0, all: 0 });
		const again = counting(db);
		await applyMigrations(again, migrations);
		assert.deepEqual(again.calls, { batch: 1, run: 0, all: 0 });
	});

	// D1's documentation (Workers API, `batch()`): "Batched statements are SQL transactions. If a statement in the sequence
	// fails, then an error is returned for that specific statement, and it aborts or rolls back the entire sequence."
	// (quoted in cloudflare/miniflare#484). This test holds Miniflare to it: were 0001 left applied by the failed batch,
	// re-applying it alone would fail on `CREATE TABLE a` and the error would name 0001, not 0002.
	test('when the one batch fails, nothing of it stays and the migrations before the bad one are applied alone', async () => {
		const a = { name: '0001_a.sql', sql: 'CREATE TABLE a (x INTEGER);' };
		const bad = { name: '0002_bad.sql', sql: 'INSERT INTO missing_table VALUES (1);' };
		const d1 = counting(db);
		await assert.rejects(
			applyMigrations(d1, [a, bad]),
			(err) => err instanceof MigrationError && /^0002_bad\.sql: failed/.test(err.message),
		);
		// History read, the one batch (rolled back), then one batch per migration up to the bad one.
		assert.deepEqual(d1.calls, { batch: 4, run: 0, all: 0 });
		assert.deepEqual(
			(await rows(`SELECT name FROM ${TABLE}`)).map((r) => r.name),
			['0001_a.sql'],
		);
	});
});

describe('refusals', () => {
	const a = { name: '0001_a.sql', sql: 'CREATE TABLE a (x INTEGER);' };
	const b = { name: '0002_b.sql', sql: 'CREATE TABLE b (x INTEGER);' };

	test('a history that is not a prefix of the files is an error, and nothing is applied', async () => {
		await applyMigrations(db, [a]);
		const renamed = { ...a, name: '0001_renamed.sql' };
		await assert.rejects(
			applyMigrations(db, [renamed, b]),
			(err) => err instanceof MigrationError && /0001_a\.sql.*0001_renamed\.sql/.test(err.message),
		);
		await assert.rejects(applyMigrations(db, []), /position 1/);
		assert.ok(!(await tables()).includes('b'));
	});

	test('a failing migration rolls back with its bookkeeping row; later ones are not attempted', async () => {
		const bad = { name: '0002_bad.sql', sql: 'CREATE TABLE half (x INTEGER);\nINSERT INTO missing_table VALUES (1);' };
		const c = { name: '0003_c.sql', sql: 'CREATE TABLE c (x INTEGER);' };
		await assert.rejects(
			applyMigrations(db, [a, bad, c]),
			(err) => err instanceof MigrationError && err.message.startsWith('0002_bad.sql: failed'),
		);
		assert.deepEqual(
			(await rows(`SELECT name FROM ${TABLE}`)).map((r) => r.name),
			['0001_a.sql'],
		);
		const t = await tables();
		assert.ok(t.includes('a') && !t.includes('half') && !t.includes('c'), JSON.stringify(t));
	});

	test('names out of order, duplicated numbers or badly named are refused before touching the database', async () => {
		await assert.rejects(applyMigrations(db, [b, a]), /in name order/);
		await assert.rejects(applyMigrations(db, [a, { ...b, name: '0001_b.sql' }]), /used twice/);
		await assert.rejects(applyMigrations(db, [{ ...a, name: '1_a.sql' }]), /NNNN_lowercase_name\.sql/);
		assert.deepEqual(await tables(), []);
	});
});

describe('loading and splitting', () => {
	test('loadMigrations sorts by name and refuses misnamed .sql files', async () => {
		const dir = await mkdtemp(join(tmpdir(), 'edge-mig-'));
		try {
			await writeFile(join(dir, '0002_b.sql'), 'SELECT 2;');
			await writeFile(join(dir, '0001_a.sql'), 'SELECT 1;');
			await writeFile(join(dir, 'README.md'), 'ignored');
			assert.deepEqual(
				(await loadMigrations(dir)).map((m) => m.name),
				['0001_a.sql', '0002_b.sql'],
			);
			await writeFile(join(dir, 'Init.sql'), 'SELECT 3;');
			await assert.rejects(loadMigrations(dir), (err) => err instanceof MigrationError && err.message.includes('Init.sql'));
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});

	test('splitStatements keeps semicolons inside quotes and comments out', () => {
		const sql = `-- a comment; with a semicolon
CREATE TABLE "we;ird" (x TEXT DEFAULT 'a;b''c'); /* block; comment */
INSERT INTO [br;acket] VALUES ('it''s;');
`;
		assert.deepEqual(splitStatements('t.sql', sql), [
			`CREATE TABLE "we;ird" (x TEXT DEFAULT 'a;b''c')`,
			`INSERT INTO [br;acket] VALUES ('it''s;')`,
		]);
	});

	test('splitStatements refuses triggers, empty files and unterminated quotes or comments', () => {
		assert.throws(() => splitStatements('t.sql', 'CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;'), /TRIGGER/);
		assert.throws(() => splitStatements('t.sql', '-- nothing\n ; ;'), /no SQL statements/);
		assert.throws(() => splitStatements('t.sql', "SELECT 'open"), /unterminated ' quote/);
		assert.throws(() => splitStatements('t.sql', 'SELECT 1 /* open'), /unterminated \/\* comment/);
	});
});
