/**
 * Is a SQL text one read-only statement? Used by the control worker (control.mjs) before it hands a query to a
 * tenant's D1 database: `local` commands and tests may read through the control plane, never write through it.
 * Pure and dependency-free, so it runs both inside workerd and under plain node (tests).
 */

/**
 * Everything in SQLite that writes, or changes what a connection does, as a whole word outside string literals,
 * quoted identifiers and comments. `WITH x AS (...) DELETE ... RETURNING *` starts like a query but writes;
 * `REPLACE` is only a statement as `REPLACE INTO` (`replace()` is a string function).
 */
const WRITE_WORDS =
	/\b(INSERT|UPDATE|DELETE|UPSERT|CREATE|DROP|ALTER|ATTACH|DETACH|PRAGMA|VACUUM|REINDEX|ANALYZE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|RETURNING|REPLACE\s+INTO)\b/i;

/** The statement with string literals, quoted identifiers and comments blanked out (unterminated → null). */
export function bareSql(sql) {
	let out = '';
	let i = 0;
	while (i < sql.length) {
		const ch = sql[i];
		const two = sql.slice(i, i + 2);
		if (two === '--') {
			const end = sql.indexOf('\n', i);
			i = end === -1 ? sql.length : end + 1;
			out += ' ';
		} else if (two === '/*') {
			const end = sql.indexOf('*/', i + 2);
			if (end === -1) return null;
			i = end + 2;
			out += ' ';
		} else if (ch === "'" || ch === '"' || ch === '`' || ch === '[') {
			const close = ch === '[' ? ']' : ch;
			let j = i + 1;
			for (;;) {
				j = sql.indexOf(close, j);
				if (j === -1) return null;
				if (close !== ']' && sql[j + 1] === close) j += 2; // doubled quote inside the literal
				else break;
			}
			i = j + 1;
			out += ch === "'" ? " '' " : ' _q_ ';
		} else {
			out += ch;
			i += 1;
		}
	}
	return out;
}

/**
 * One read-only statement: a SELECT (or a WITH … SELECT) that names no writing keyword and holds no second
 * statement. Anything else is refused before it reaches D1; the control plane only ever reads through here.
 * @param {string} sql
 */
export function readOnly(sql) {
	if (typeof sql !== 'string') return false;
	const bare = bareSql(sql);
	if (bare === null) return false;
	const body = bare.trim().replace(/;\s*$/, '');
	return /^(SELECT|WITH)\b/i.test(body) && !body.includes(';') && !WRITE_WORDS.test(body);
}
