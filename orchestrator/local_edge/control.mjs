/**
 * The local edge's control worker: runs inside the same workerd as the tenants, bound to every tenant's KV
 * namespace and D1 database, so the control plane can seed, push and inspect them without going through the
 * tenant Workers (which expose no such thing). Never routed by hostname: reached only with the
 * `MF-Route-Override` header, and every call needs the bearer token from the 0600 file in the state directory.
 *
 * Why inside workerd and not through Miniflare's node-side proxies: a proxy round trip costs tens of ms, and a
 * 50-tenant bring-up makes hundreds of KV writes and D1 statements.
 */
import { applyMigrations } from './migrations.mjs';
import { readOnly } from './readonly_sql.mjs';

const ENC = new TextEncoder();

/** @param {number} status @param {unknown} body */
function json(status, body) {
	return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}

/** @param {Request} request @param {Record<string, any>} env */
function authorised(request, env) {
	const given = ENC.encode(request.headers.get('authorization') ?? '');
	const wanted = ENC.encode(`Bearer ${env.CONTROL_TOKEN}`);
	return given.byteLength === wanted.byteLength && crypto.subtle.timingSafeEqual(given, wanted);
}

/** @param {Record<string, any>} env @param {string | null} tenant */
function stores(env, tenant) {
	const index = tenant === null ? undefined : env.TENANTS[tenant];
	if (index === undefined) return null;
	return { kv: env[`KV_${index}`], db: env[`DB_${index}`] };
}

/** Seeds one tenant the way a deploy does: KV values written, then pending migrations applied. */
async function seedTenant(env, plan, migrationsTable) {
	const s = stores(env, plan.tenant);
	if (!s) return { tenant: plan.tenant, error: 'unknown tenant' };
	try {
		// Like a Pulumi update, an unchanged value is not rewritten: a KV read is much cheaper than a write, which
		// makes a restart with persisted data faster (and a value damaged meanwhile is still repaired).
		// KV and D1 are separate stores (each created on first touch): seeded side by side.
		const [, result] = await Promise.all([
			Promise.all(
				Object.entries(plan.kv).map(async ([key, value]) => {
					if ((await s.kv.get(key)) !== value) await s.kv.put(key, value);
				}),
			),
			applyMigrations(s.db, plan.migrations, { table: migrationsTable }),
		]);
		return { tenant: plan.tenant, applied: result.applied, skipped: result.skipped };
	} catch (err) {
		// The message of a MigrationError names migrations, never data; KV errors carry no values.
		return { tenant: plan.tenant, error: String(err?.message ?? err) };
	}
}

/**
 * Dispatch mode: rewrites the routing KV to exactly `entries` (what the tenant stacks would write), so entries of
 * tenants no longer run route nowhere. Inside workerd, alongside the tenants' seeding: from node each write was a
 * proxy round trip.
 */
async function seedRouting(kv, entries) {
	const wanted = new Set(entries.map((e) => e.key));
	for (let cursor; ; ) {
		const page = await kv.list(cursor ? { cursor } : {});
		await Promise.all(page.keys.filter((k) => !wanted.has(k.name)).map((k) => kv.delete(k.name)));
		if (page.list_complete) break;
		cursor = page.cursor;
	}
	await Promise.all(entries.map((e) => kv.put(e.key, e.value, e.metadata ? { metadata: JSON.parse(e.metadata) } : {})));
	return { written: entries.length };
}

export default {
	/** @param {Request} request @param {Record<string, any>} env */
	async fetch(request, env) {
		if (!authorised(request, env)) return json(401, { error: 'unauthorized' });
		const url = new URL(request.url);
		const tenant = url.searchParams.get('tenant');
		const route = `${request.method} ${url.pathname}`;
		if (route === 'GET /ping') return json(200, { ok: true, tenants: Object.keys(env.TENANTS) });
		if (route === 'POST /seed') {
			const body = await request.json();
			const [results, routing] = await Promise.all([
				Promise.all(body.tenants.map((t) => seedTenant(env, t, body.migrations_table))),
				body.routing ? seedRouting(env.ROUTES, body.routing) : null,
			]);
			return json(200, { results, routing });
		}
		const s = stores(env, tenant);
		if (!s) return json(404, { error: 'unknown tenant' });
		const key = url.searchParams.get('key');
		switch (route) {
			case 'GET /kv': {
				const value = await s.kv.get(key);
				return value === null ? json(404, { error: 'no such key' }) : new Response(value);
			}
			case 'PUT /kv':
				await s.kv.put(key, await request.text());
				return json(200, { ok: true });
			case 'DELETE /kv':
				await s.kv.delete(key);
				return json(200, { ok: true });
			case 'GET /kv/keys': {
				const listed = await s.kv.list();
				return json(200, { keys: listed.keys.map((k) => k.name) });
			}
			case 'POST /d1/query': {
				const { sql, params = [] } = await request.json();
				if (!readOnly(sql)) return json(400, { error: 'only one read-only SELECT statement is allowed' });
				try {
					const { results } = await s.db.prepare(sql).bind(...params).all();
					return json(200, { rows: results });
				} catch (err) {
					return json(400, { error: String(err?.message ?? err) });
				}
			}
			default:
				return json(404, { error: 'no such control route' });
		}
	},
};
