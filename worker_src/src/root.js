/** `GET /`: the tenant's greeting from the config in use, so a pushed config version is visible from outside. */
import { json } from './http.js';
import { noteConfigVersion } from './status.js';

/**
 * @param {import('./context.js').EdgeContext} edge @param {import('./context.js').Bindings} bindings
 * @param {{ waitUntil(p: Promise<unknown>): void }} ctx @param {number} now
 */
export async function handleRoot(edge, bindings, ctx, now) {
	// Traffic is served from the held config while a TTL-expired one is refreshed behind the response.
	const view = await edge.config.current(bindings.kv, now, ctx);
	noteConfigVersion(edge, bindings, view, ctx);
	const greeting = view.payload.config.greeting;
	return json(200, {
		tenant: edge.tenant,
		config_version: view.payload.version,
		config_source: view.source,
		greeting: typeof greeting === 'string' ? greeting : null,
	});
}
