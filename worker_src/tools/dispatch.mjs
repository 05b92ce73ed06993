/**
 * Dispatch mode in workerd (Miniflare), for the tests and the local edge: the real dispatch and outbound Workers
 * (src/dispatch/) and a dispatch-namespace binding built from what the local runtime has. Cloudflare's tooling has no
 * local namespace (workers-sdk#5497, #10553); Miniflare's own `dispatchNamespaces` only proxies to a remote account.
 *
 * The shim is a wrapped binding with the dispatcher API's shape, `get(name, args, options)` returning a Fetcher,
 * like Miniflare's remote one (miniflare 4.20260426.0 dist/src/workers/dispatch-namespace/dispatch-namespace.worker.js):
 * behind it, one service binding per user Worker. Like workerd, `get()` never throws for a missing script; the
 * returned Fetcher's `fetch()` throws "Worker not found." (workerd#5263, PR #6765). Options are checked the way the
 * binding declares them: `limits` only `cpuMs`/`subRequests`, `outbound` only the declared parameters.
 *
 * What the shim cannot do: enforce CPU and subrequest limits (workerd has no per-call limits), and hand per-call
 * outbound parameters to the outbound Worker. Each user Worker's `fetch()` goes to the outbound Worker with its
 * tenant's parameters fixed at start (`props`), taken from the same routing entry the dispatcher reads; the
 * observer (tests) sees what the dispatcher passed per call.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const DISPATCH_DIR = fileURLToPath(new URL('../src/dispatch/', import.meta.url));
export const DISPATCHER_MAIN = 'dispatcher.js';
export const OUTBOUND_MAIN = 'outbound.js';
export const SETTINGS_MODULE = 'settings.js';
export const DISPATCH_WORKER = 'clawdbot-dispatch';
export const OUTBOUND_WORKER = 'clawdbot-outbound';
const NAMESPACE_SHIM = 'clawdbot-local-namespace';
const LOCAL_OUTBOUND = '_local_outbound.js';

const SHIM_SCRIPT = `
const LIMIT_KEYS = ['cpuMs', 'subRequests'];
export default function (env) {
	const scripts = env.SCRIPTS;
	const params = env.OUTBOUND_PARAMS;
	return {
		get(name, args = {}, options = {}) {
			if (typeof name !== 'string') throw new TypeError('get(): name must be a string');
			for (const [k, v] of Object.entries(options.limits ?? {})) {
				if (!LIMIT_KEYS.includes(k) || !Number.isInteger(v) || v <= 0) throw new TypeError('get(): bad limit ' + k);
			}
			for (const k of Object.keys(options.outbound ?? {})) {
				if (!params.includes(k)) throw new TypeError('get(): outbound parameter ' + k + ' is not declared by the binding');
			}
			const target = Object.hasOwn(scripts, name) ? env[scripts[name]] : null;
			return {
				async fetch(input, init) {
					if (env.OBSERVER) await env.OBSERVER.fetch('http://observer/get', { method: 'POST', body: JSON.stringify({ name, args, options }) });
					if (!target) throw new Error('Worker not found.');
					return target.fetch(input, init);
				},
			};
		},
	};
}`;

// The deployed outbound Worker reads the dispatcher's parameters from env; locally they arrive as props.
const LOCAL_OUTBOUND_SCRIPT = `import outbound from './${OUTBOUND_MAIN}';
export default { fetch: (request, env, ctx) => outbound.fetch(request, { ...env, ...(ctx.props ?? {}) }, ctx) };
`;

/** @param {unknown} settings {contract, plans} */
export function renderSettings(settings) {
	return `export const SETTINGS = ${JSON.stringify(settings)};\n`;
}

/**
 * Every module of src/dispatch/ plus the rendered settings module, with `main` first (Miniflare runs the first).
 * @param {unknown} settings @param {string} main
 * @param {{ name: string, contents: string }[]} [extra]
 */
export async function dispatchModules(settings, main, extra = []) {
	const names = (await readdir(DISPATCH_DIR)).filter((n) => n.endsWith('.js')).sort();
	const own = await Promise.all(names.map(async (name) => ({ name, contents: await readFile(join(DISPATCH_DIR, name), 'utf8') })));
	const files = [...own, ...extra, { name: SETTINGS_MODULE, contents: renderSettings(settings) }];
	const first = files.find((f) => f.name === main);
	if (!first) throw new Error(`${DISPATCH_DIR}: no ${main}`);
	return {
		modulesRoot: DISPATCH_DIR,
		modules: [first, ...files.filter((f) => f !== first)].map((f) => ({
			type: /** @type {const} */ ('ESModule'),
			path: join(DISPATCH_DIR, f.name),
			contents: f.contents,
		})),
	};
}

/**
 * @typedef {object} UserWorker
 * @property {string} script the user Worker's name in the namespace
 * @property {string} tenant
 * @property {string[]} egress the tenant's allow-list (the outbound Worker's parameters for this Worker)
 * @property {Record<string, any>} options Miniflare worker options of the user Worker (name is set here)
 */

/**
 * Miniflare worker options for dispatch mode; the dispatcher comes first so that it receives every request.
 * @param {{ settings: any, compatibilityDate: string, routesKv: string, users: UserWorker[],
 *   observer?: (call: { name: string, args: any, options: any }) => void,
 *   egressFetch?: (request: Request) => Response | Promise<Response> }} opts
 *   egressFetch: where the outbound Worker's allowed fetches go (default: the network)
 */
export async function dispatchWorkers(opts) {
	const d = opts.settings.contract.dispatch;
	const scripts = Object.fromEntries(opts.users.map((u, i) => [u.script, `USER_${i}`]));
	const dispatcher = {
		name: DISPATCH_WORKER,
		...(await dispatchModules(opts.settings, DISPATCHER_MAIN)),
		compatibilityDate: opts.compatibilityDate,
		kvNamespaces: { [d.bindings.routes]: opts.routesKv },
		wrappedBindings: {
			[d.bindings.namespace]: { scriptName: NAMESPACE_SHIM, bindings: { SCRIPTS: scripts, OUTBOUND_PARAMS: d.outbound_params } },
		},
	};
	const shim = {
		name: NAMESPACE_SHIM,
		modules: true,
		script: SHIM_SCRIPT,
		serviceBindings: {
			...Object.fromEntries(opts.users.map((u, i) => [`USER_${i}`, u.script])),
			...(opts.observer
				? {
						/** @param {Request} req */
						OBSERVER: async (req) => {
							opts.observer?.(await req.json());
							return new Response(null, { status: 204 });
						},
					}
				: {}),
		},
	};
	const outbound = {
		name: OUTBOUND_WORKER,
		...(await dispatchModules(opts.settings, LOCAL_OUTBOUND, [{ name: LOCAL_OUTBOUND, contents: LOCAL_OUTBOUND_SCRIPT }])),
		compatibilityDate: opts.compatibilityDate,
		...(opts.egressFetch ? { outboundService: opts.egressFetch } : {}),
	};
	const [tenantParam, egressParam] = d.outbound_params;
	const users = opts.users.map((u) => ({
		...u.options,
		name: u.script,
		outboundService: { name: OUTBOUND_WORKER, props: { [tenantParam]: u.tenant, [egressParam]: u.egress } },
	}));
	return [dispatcher, shim, outbound, ...users];
}
