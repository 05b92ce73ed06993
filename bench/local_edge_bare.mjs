/**
 * Baseline for bench/local_edge_bench.py: bare Miniflare with N trivial workers, each with its own KV namespace
 * and D1 database, routed by hostname, persisted under the given directory. Prints {"ready_ms"} once ready, then
 * waits for stdin to close (so the caller can measure workerd's memory) and disposes.
 *   node bench/local_edge_bare.mjs <N> <persist-dir>
 */
import { Miniflare } from '../worker_src/tools/miniflare.mjs';

const n = Number(process.argv[2]);
const dir = process.argv[3];
const started = performance.now();
const workers = [{ name: 'fallback', modules: true, script: 'export default { fetch() { return new Response(null, { status: 404 }); } }' }];
for (let i = 0; i < n; i++) {
	workers.push({
		name: `w${i}`,
		modules: true,
		compatibilityDate: '2025-09-01',
		script: `export default { async fetch(req, env) { return new Response(String(await env.KV.get('k'))); } }`,
		kvNamespaces: { KV: `bare-kv-${i}` },
		d1Databases: { DB: `bare-d1-${i}` },
		routes: [`w${i}.bare.test/*`],
	});
}
const mf = new Miniflare({ workers, host: '127.0.0.1', port: 0, cf: false, kvPersist: `${dir}/kv`, d1Persist: `${dir}/d1` });
const url = await mf.ready;
process.stdout.write(JSON.stringify({ ready_ms: performance.now() - started, port: Number(url.port) }) + '\n');
for await (const _ of process.stdin);
await mf.dispose();
