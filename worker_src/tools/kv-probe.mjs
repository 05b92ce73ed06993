/**
 * A stand-in for a KV binding (Miniflare wrapped binding) that reports every read to node and can make it throw.
 * Reads still go to a real Miniflare KV namespace underneath. Tests use it for faults, the bench to count KV gets.
 */

export const KV_PROBE_INNER = 'INNER';

// Runs inside workerd; asks node (over a node-backed service binding) what each read should do.
const SCRIPT = `
export default function (env) {
	return {
		async get(key, options) {
			const verdict = await (await env.CONTROL.fetch('http://control/get?key=' + encodeURIComponent(key))).text();
			if (verdict === 'throw') throw new Error('injected KV failure');
			if (verdict === 'hang') await new Promise(() => {}); // never settles: the caller's deadline must fire
			return env.${KV_PROBE_INNER}.get(key, options);
		},
	};
}`;

/**
 * Worker options for Miniflare's `workers` list; bind it with `wrappedBindings: { EDGE_KV: { scriptName: name } }`.
 * @param {string} name worker name
 * @param {string} namespace the real KV namespace id underneath (seed it via mf.getKVNamespace(KV_PROBE_INNER, name))
 * @param {(key: string) => 'pass' | 'throw' | 'hang'} onGet called in node for every read
 */
export function kvProbeWorker(name, namespace, onGet) {
	return {
		name,
		modules: true,
		script: SCRIPT,
		kvNamespaces: { [KV_PROBE_INNER]: namespace },
		serviceBindings: {
			/** @param {Request} req */
			CONTROL: (req) => new Response(onGet(new URL(req.url).searchParams.get('key') ?? '')),
		},
	};
}
