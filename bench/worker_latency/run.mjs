#!/usr/bin/env node
/**
 * Edge Worker latency against a bare Worker (`return new Response("ok")`), all in ONE workerd (Miniflare) process over
 * the same keep-alive HTTP client:
 *   - cached path:  GET / while the config is within its TTL (no KV read);
 *   - refresh path: GET / when the TTL has expired, as for every request of a low-traffic tenant: an edge whose TTL is
 *     0 refreshes its KV config on each request, against the real KV binding (no test wrapper), behind the response
 *     (stale-while-revalidate);
 *   - refresh, waiting: the same with no stale window, so each request waits for the KV read and its checks (what a
 *     fresh isolate, or a view older than the window, pays);
 *   - public health: GET /_edge/health (reuses a recent D1 probe).
 * Requests are interleaved one by one (bare, cached, refresh, wait, health, in an order rotated per request), so drift hits
 * every side alike. Each round gives each side's p50 and its ratio to bare; the report is min and median over rounds.
 *
 *   cd worker_src && npm ci && node ../bench/worker_latency/run.mjs [--rounds 7] [--requests 300] [--json]
 *
 * Numbers include node's HTTP client and Miniflare's entry worker, which every side pays equally; only 127.0.0.1.
 */
import http from "node:http";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import {
  COMPATIBILITY_DATE,
  embeddedFor,
  workerModules,
  MIGRATIONS_DIR,
} from "../../worker_src/tools/bundle.mjs";
import { loadContract } from "../../worker_src/tools/contract.mjs";
import {
  KV_PROBE_INNER,
  kvProbeWorker,
} from "../../worker_src/tools/kv-probe.mjs";
import { Miniflare } from "../../worker_src/tools/miniflare.mjs";
import {
  applyMigrations,
  loadMigrations,
} from "../../worker_src/tools/migrations.mjs";
import {
  sealEnvelope,
  signConfig,
} from "../../worker_src/test/helpers/sign.mjs";

const TARGETS = { refresh_path_ratio: 2.0, cached_path_ratio: 1.3 };

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "7" },
    requests: { type: "string", default: "300" },
    warmup: { type: "string", default: "200" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/worker_latency/run.mjs [options]
Edge Worker p50 latency ÷ a bare Worker's, in one workerd, requests interleaved one by one.
  --rounds N    rounds; each gives one p50 and one ratio per side (default 7)
  --requests N  requests per side per round (default 300)
  --warmup N    untimed requests per side first: JIT, sockets, isolate caches (default 200)
  --json        print one JSON object instead of a table
Keys: cached_path_ratio (target <= ${TARGETS.cached_path_ratio}), refresh_path_ratio (target <= ${TARGETS.refresh_path_ratio}),
refresh_wait_ratio, health_path_ratio; each {min, median} over rounds; p50_ms per side {min, median}.`);
  process.exit(0);
}
const ROUNDS = positiveInt("rounds");
const REQUESTS = positiveInt("requests");
const WARMUP = positiveInt("warmup", true);

/** @param {'rounds' | 'requests' | 'warmup'} name @param {boolean} [zeroOk] */
function positiveInt(name, zeroOk = false) {
  const n = Number(args[name]);
  if (!Number.isSafeInteger(n) || n < (zeroOk ? 0 : 1)) {
    console.error(
      `--${name} must be a ${zeroOk ? "non-negative" : "positive"} integer, got ${JSON.stringify(args[name])}`,
    );
    process.exit(2);
  }
  return n;
}

const TENANT = "bench";
const contract = await loadContract();
const migrations = await loadMigrations(MIGRATIONS_DIR);
const relayKey = randomBytes(32);
const b = contract.bindings;
/** Config reads of the cached edge, counted by its wrapped KV binding. */
const cachedKvGets = new Map();

/** @param {string} name @param {Record<string, number>} contractOverrides @param {boolean} counted */
async function edgeWorker(name, contractOverrides, counted) {
  const embedded = embeddedFor(contract, migrations, {
    tenant: TENANT,
    bundleHash: "sha256:bench",
    greeting: "embedded",
  });
  embedded.contract = { ...contract, ...contractOverrides };
  const { modules, modulesRoot } = await workerModules(embedded);
  return {
    name,
    routes: [`${name}.bench/*`],
    modules,
    modulesRoot,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: {
      [b.relay_key]: relayKey.toString("base64"),
      [b.tenant_id]: TENANT,
    },
    d1Databases: { [b.d1]: `${name}-db` },
    // The counting wrapper calls into node on every read, which a deployed Worker never pays: only the cached
    // edge (whose point is to read nothing) goes through it; the refresh edge reads its KV namespace directly.
    ...(counted
      ? { wrappedBindings: { [b.kv]: { scriptName: `${name}-kv-probe` } } }
      : { kvNamespaces: { [b.kv]: `${name}-kv` } }),
  };
}

const SIDES = [
  { key: "bare", host: "bare.bench", path: "/" },
  { key: "cached", host: "cached.bench", path: "/" },
  { key: "refresh", host: "refresh.bench", path: "/" },
  { key: "wait", host: "wait.bench", path: "/" },
  { key: "health", host: "cached.bench", path: contract.health.path },
];

const mf = new Miniflare({
  workers: [
    {
      name: "bare",
      routes: ["bare.bench/*"],
      modules: true,
      compatibilityDate: COMPATIBILITY_DATE,
      script: 'export default { fetch() { return new Response("ok"); } }',
    },
    await edgeWorker("cached", {}, true),
    await edgeWorker("refresh", { config_cache_ttl_seconds: 0 }, false),
    await edgeWorker(
      "wait",
      { config_cache_ttl_seconds: 0, config_max_stale_seconds: 0 },
      false,
    ),
    /** @type {any} */ (
      kvProbeWorker("cached-kv-probe", "cached-kv", (key) => {
        cachedKvGets.set(key, (cachedKvGets.get(key) ?? 0) + 1);
        return "pass";
      })
    ),
  ],
});

try {
  const stores = {
    cached: await mf.getKVNamespace(KV_PROBE_INNER, "cached-kv-probe"),
    refresh: await mf.getKVNamespace(b.kv, "refresh"),
    wait: await mf.getKVNamespace(b.kv, "wait"),
  };
  /** @param {any} kv @param {number} version */
  const putConfig = (kv, version) =>
    kv.put(
      contract.kv_keys.config,
      signConfig(contract, relayKey, TENANT, {
        tenant: TENANT,
        version,
        config: { greeting: `from kv v${version}` },
      }),
    );
  const secret = contract.webhook.secret_name;
  for (const [name, kv] of Object.entries(stores)) {
    await putConfig(kv, 2);
    await kv.put(
      contract.kv_keys.secret_prefix + secret,
      sealEnvelope(contract, relayKey, TENANT, secret, "bench-webhook-secret"),
    );
    await applyMigrations(await mf.getD1Database(b.d1, name), migrations);
  }

  const url = await mf.ready;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  /** @param {{ host: string, path: string }} s @returns {Promise<{ status: number, body: string }>} */
  const get = (s) =>
    new Promise((resolve, reject) => {
      const req = http.get(
        {
          host: url.hostname,
          port: url.port,
          path: s.path,
          headers: { host: s.host },
          agent,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
    });
  /** @param {(typeof SIDES)[number]} s */
  const getJson = async (s) => {
    const r = await get(s);
    if (r.status !== 200)
      throw new Error(`${s.key}: HTTP ${r.status} ${r.body}`);
    return s.key === "bare" ? null : JSON.parse(r.body);
  };
  const [bare, cached, refresh, wait, health] = SIDES;

  // Sanity before timing anything: both edges serve their KV config and are healthy, and the refresh edge really
  // re-reads KV on every request (a new version shows on the very next one), so each side measures its own path.
  await getJson(bare);
  for (const s of [cached, refresh, wait]) {
    const root = await getJson(s);
    if (root.config_source !== "kv" || root.config_version !== 2)
      throw new Error(`${s.key}: not serving KV v2: ${JSON.stringify(root)}`);
  }
  const h = await getJson(health);
  if (h.status !== "ok")
    throw new Error(`edge is not healthy before the run: ${JSON.stringify(h)}`);
  // Past the TTL the refresh edge answers from what it holds and re-reads KV behind the response (stale-while-
  // revalidate), so a new version shows from the request after; the wait edge (no stale window) shows it at once.
  await putConfig(stores.wait, 3);
  if ((await getJson(wait)).config_version !== 3)
    throw new Error("the wait edge did not re-read KV on its next request");
  await putConfig(stores.refresh, 3);
  await getJson(refresh);
  await new Promise((r) => setTimeout(r, 50));
  if ((await getJson(refresh)).config_version !== 3)
    throw new Error("the refresh edge did not refresh KV behind its response");
  const cachedGetsBefore = cachedKvGets.get(contract.kv_keys.config) ?? 0;

  for (let i = 0; i < WARMUP; i++) for (const s of SIDES) await getJson(s);

  /** @type {Record<string, number[]>} p50 per round, per side */
  const p50s = Object.fromEntries(SIDES.map((s) => [s.key, []]));
  /** @type {Record<string, number[]>} p50 ratio to bare per round, per side */
  const ratios = Object.fromEntries(SIDES.map((s) => [s.key, []]));
  const started = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    /** @type {Record<string, number[]>} */
    const lat = Object.fromEntries(SIDES.map((s) => [s.key, []]));
    for (let n = 0; n < REQUESTS; n++) {
      for (let k = 0; k < SIDES.length; k++) {
        const s = SIDES[(k + n) % SIDES.length]; // rotate who goes first
        const t0 = process.hrtime.bigint();
        const r = await get(s);
        lat[s.key].push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.status !== 200) throw new Error(`${s.key}: HTTP ${r.status}`);
      }
    }
    for (const s of SIDES) p50s[s.key].push(median(lat[s.key]));
    for (const s of SIDES)
      ratios[s.key].push(p50s[s.key][round] / p50s.bare[round]);
  }
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  const cachedGets =
    (cachedKvGets.get(contract.kv_keys.config) ?? 0) - cachedGetsBefore;

  const spread = (/** @type {number[]} */ xs) => ({
    min: Math.min(...xs),
    median: median(xs),
  });
  const report = {
    bench: "worker_latency",
    config: {
      rounds: ROUNDS,
      requests_per_side_per_round: REQUESTS,
      warmup_per_side: WARMUP,
      config_ttl_s: contract.config_cache_ttl_seconds,
      elapsed_s: elapsed,
    },
    cached_path_ratio: spread(ratios.cached),
    refresh_path_ratio: spread(ratios.refresh),
    refresh_wait_ratio: spread(ratios.wait),
    health_path_ratio: spread(ratios.health),
    p50_ms: Object.fromEntries(SIDES.map((s) => [s.key, spread(p50s[s.key])])),
    cached_path_config_reads: cachedGets,
    targets: {
      cached_path_ratio_max: TARGETS.cached_path_ratio,
      refresh_path_ratio_max: TARGETS.refresh_path_ratio,
      met:
        median(ratios.cached) <= TARGETS.cached_path_ratio &&
        median(ratios.refresh) <= TARGETS.refresh_path_ratio,
    },
  };
  if (args.json) {
    console.log(JSON.stringify(report));
  } else {
    const f = (/** @type {number} */ x, d = 3) => x.toFixed(d);
    console.log(
      `worker_latency — one workerd, ${ROUNDS} rounds × ${REQUESTS} interleaved requests per side (${f(elapsed, 1)} s)`,
    );
    console.log(
      `${"side".padEnd(26)} ${"p50 ms min".padStart(10)} ${"median".padStart(8)} ${"× bare min".padStart(10)} ${"median".padStart(8)}`,
    );
    const names = {
      bare: "bare worker",
      cached: "GET / (config cached)",
      refresh: "GET / (TTL expired)",
      wait: "GET / (TTL expired, waits)",
      health: `GET ${contract.health.path}`,
    };
    for (const s of SIDES) {
      const p = report.p50_ms[s.key];
      const r = spread(ratios[s.key]);
      console.log(
        `${names[/** @type {keyof typeof names} */ (s.key)].padEnd(26)} ${f(p.min).padStart(10)} ${f(p.median).padStart(8)} ${f(r.min, 2).padStart(10)} ${f(r.median, 2).padStart(8)}`,
      );
    }
    console.log(
      `KV config reads by the cached edge during the timed run: ${cachedGets} (TTL ${contract.config_cache_ttl_seconds} s)`,
    );
    console.log(
      `targets (median): cached ≤ ${TARGETS.cached_path_ratio}×, refresh ≤ ${TARGETS.refresh_path_ratio}×: ${report.targets.met ? "met" : "NOT met"}`,
    );
  }
} finally {
  await mf.dispose();
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
