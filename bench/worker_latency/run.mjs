#!/usr/bin/env node
/**
 * Edge Worker latency, in ONE workerd (Miniflare) process: the config-cached request path (GET /) and the public health
 * path, against a bare Worker (`return new Response("ok")`) in the same runtime, over the same keep-alive HTTP client.
 * Scenarios are interleaved round by round so drift (CPU contention, GC) hits all of them alike; ratios come from
 * this one run. KV reads of the edge are counted through a wrapped binding, to show cached requests do not read KV.
 *
 *   cd worker_src && npm ci && node ../bench/worker_latency/run.mjs [--rounds 5] [--requests 400] [--seconds 2] [--concurrency 16] [--json]
 *
 * Numbers include node's HTTP client and Miniflare's entry worker, which every scenario pays equally; only 127.0.0.1.
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

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    requests: { type: "string", default: "400" },
    seconds: { type: "string", default: "2" },
    concurrency: { type: "string", default: "16" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (args.help) {
  console.log(`usage: node bench/worker_latency/run.mjs [options]
  --rounds N        interleaved rounds per scenario (default 5)
  --requests N      sequential requests per round for p50/p99 latency (default 400)
  --seconds S       seconds per round of concurrent load for requests/s (default 2)
  --concurrency N   in-flight requests during the requests/s phase (default 16)
  --json            print the result as JSON instead of a table`);
  process.exit(0);
}
const ROUNDS = positive("rounds");
const SEQUENTIAL = positive("requests");
const SECONDS = positive("seconds");
const CONCURRENCY = positive("concurrency");

/** @param {'rounds' | 'requests' | 'seconds' | 'concurrency'} name */
function positive(name) {
  const n = Number(args[name]);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(
      `--${name} must be a positive number, got ${JSON.stringify(args[name])}`,
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
const kvGets = new Map();

const embedded = embeddedFor(contract, migrations, {
  tenant: TENANT,
  bundleHash: "sha256:bench",
  greeting: "embedded",
});
const { modules, modulesRoot } = await workerModules(embedded);
const mf = new Miniflare({
  workers: [
    {
      name: "edge",
      routes: ["edge.bench/*"],
      modules,
      modulesRoot,
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: {
        [b.relay_key]: relayKey.toString("base64"),
        [b.tenant_id]: TENANT,
      },
      d1Databases: { [b.d1]: "bench-db" },
      wrappedBindings: { [b.kv]: { scriptName: "kv-probe" } },
    },
    {
      name: "bare",
      routes: ["bare.bench/*"],
      modules: true,
      compatibilityDate: COMPATIBILITY_DATE,
      script: 'export default { fetch() { return new Response("ok"); } }',
    },
    /** @type {any} */ (
      kvProbeWorker("kv-probe", "bench-kv", (key) => {
        kvGets.set(key, (kvGets.get(key) ?? 0) + 1);
        return "pass";
      })
    ),
  ],
});

const SCENARIOS = [
  { name: "bare worker", host: "bare.bench", path: "/" },
  { name: "edge GET / (config cached)", host: "edge.bench", path: "/" },
  {
    name: `edge GET ${contract.health.path}`,
    host: "edge.bench",
    path: contract.health.path,
  },
];

try {
  const kv = await mf.getKVNamespace(KV_PROBE_INNER, "kv-probe");
  await kv.put(
    contract.kv_keys.config,
    signConfig(contract, relayKey, TENANT, {
      tenant: TENANT,
      version: 2,
      config: { greeting: "from kv" },
    }),
  );
  const secret = contract.webhook.secret_name;
  await kv.put(
    contract.kv_keys.secret_prefix + secret,
    sealEnvelope(contract, relayKey, TENANT, secret, "bench-webhook-secret"),
  );
  await applyMigrations(await mf.getD1Database(b.d1, "edge"), migrations);

  const url = await mf.ready;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
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

  // Sanity before timing anything: the edge serves the KV config and is healthy, so the cached path is what is measured.
  for (const s of SCENARIOS) {
    const r = await get(s);
    if (r.status !== 200)
      throw new Error(`${s.name}: HTTP ${r.status} ${r.body}`);
  }
  const health = JSON.parse((await get(SCENARIOS[2])).body);
  if (health.status !== "ok" || health.config.source !== "kv")
    throw new Error(
      `edge is not healthy before the run: ${JSON.stringify(health)}`,
    );
  for (const s of SCENARIOS) for (let i = 0; i < 300; i++) await get(s); // warm-up: JIT, sockets, isolate caches

  const results = SCENARIOS.map(() => ({
    latencies: /** @type {number[]} */ ([]),
    requests: 0,
    seconds: 0,
  }));
  let cachedRootRequests = 0;
  let cachedRootConfigGets = 0;
  const started = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < SCENARIOS.length; k++) {
      const i = (k + round) % SCENARIOS.length; // rotate the order each round
      const s = SCENARIOS[i];
      const getsBefore = kvGets.get(contract.kv_keys.config) ?? 0;
      for (let n = 0; n < SEQUENTIAL; n++) {
        const t0 = process.hrtime.bigint();
        const r = await get(s);
        results[i].latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.status !== 200) throw new Error(`${s.name}: HTTP ${r.status}`);
      }
      const { requests, seconds } = await load(s);
      results[i].requests += requests;
      results[i].seconds += seconds;
      if (i === 1) {
        cachedRootRequests += SEQUENTIAL + requests;
        cachedRootConfigGets +=
          (kvGets.get(contract.kv_keys.config) ?? 0) - getsBefore;
      }
    }
  }
  const elapsed = (Date.now() - started) / 1000;
  agent.destroy();

  /** Closed-loop load for SECONDS with CONCURRENCY requests in flight. @param {{ host: string, path: string }} s */
  async function load(s) {
    const end = performance.now() + SECONDS * 1000;
    let requests = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          const r = await get(s);
          if (r.status !== 200) throw new Error(`${s.name}: HTTP ${r.status}`);
          requests++;
        }
      }),
    );
    return { requests, seconds: (performance.now() - t0) / 1000 };
  }

  const rows = SCENARIOS.map((s, i) => {
    const sorted = results[i].latencies.sort((x, y) => x - y);
    const q = (/** @type {number} */ p) =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    return {
      scenario: s.name,
      p50_ms: q(0.5),
      p99_ms: q(0.99),
      rps: results[i].requests / results[i].seconds,
      samples: sorted.length,
    };
  });
  const base = rows[0];
  const report = {
    config: {
      rounds: ROUNDS,
      sequential_per_round: SEQUENTIAL,
      seconds_per_round: SECONDS,
      concurrency: CONCURRENCY,
      elapsed_s: elapsed,
    },
    scenarios: rows.map((r) => ({
      ...r,
      p50_ratio: r.p50_ms / base.p50_ms,
      p99_ratio: r.p99_ms / base.p99_ms,
      rps_ratio: r.rps / base.rps,
    })),
    kv: {
      cached_root_requests: cachedRootRequests,
      config_reads_during_them: cachedRootConfigGets,
      config_ttl_s: contract.config_cache_ttl_seconds,
      reads_by_key: Object.fromEntries(kvGets),
    },
    target: { p50_ratio_max: 1.3, met: rows[1].p50_ms / base.p50_ms <= 1.3 },
  };
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const f = (/** @type {number} */ x, d = 3) => x.toFixed(d);
    console.log(
      `worker_latency — one workerd, ${ROUNDS} interleaved rounds, ${SEQUENTIAL} sequential + ${SECONDS}s x${CONCURRENCY} per scenario per round (${f(elapsed, 1)}s)`,
    );
    console.log(
      `${"scenario".padEnd(34)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"req/s".padStart(8)} ${"p50 ×".padStart(7)} ${"p99 ×".padStart(7)} ${"rps ×".padStart(7)}`,
    );
    for (const r of report.scenarios) {
      console.log(
        `${r.scenario.padEnd(34)} ${f(r.p50_ms).padStart(8)} ${f(r.p99_ms).padStart(8)} ${f(r.rps, 0).padStart(8)} ${f(r.p50_ratio, 2).padStart(7)} ${f(r.p99_ratio, 2).padStart(7)} ${f(r.rps_ratio, 2).padStart(7)}`,
      );
    }
    console.log(
      `KV config reads during ${cachedRootRequests} cached GET / requests: ${cachedRootConfigGets} (TTL ${contract.config_cache_ttl_seconds}s; at most one per TTL expiry). All KV reads by key: ${JSON.stringify(report.kv.reads_by_key)}`,
    );
    console.log(
      `target p50(GET /) ≤ 1.3 × bare: ${report.target.met ? "met" : "NOT met"} (${f(report.scenarios[1].p50_ratio, 2)}×)`,
    );
  }
} finally {
  await mf.dispose();
}
