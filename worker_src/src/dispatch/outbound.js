/**
 * The outbound Worker: every `fetch()` a user Worker makes lands here (the dispatch binding's `outbound`), with the
 * dispatcher's parameters in `env` (`tenant`, `egress`). Hosts on the tenant's allow-list pass unchanged; anything
 * else is refused with 403, and so is everything when the parameters are missing (fail closed).
 */
import { egressAllowed, isEgressPattern } from './egress.js';
import { json } from './respond.js';
import { SETTINGS } from './settings.js';

const [TENANT_PARAM, EGRESS_PARAM] = SETTINGS.contract.dispatch.outbound_params;

export default {
	/** @param {Request} request @param {Record<string, unknown>} env */
	async fetch(request, env) {
		const tenant = env[TENANT_PARAM];
		const egress = env[EGRESS_PARAM];
		if (typeof tenant !== 'string' || !Array.isArray(egress) || !egress.every(isEgressPattern)) {
			console.error('outbound: no tenant parameters; refusing');
			return json(403, { error: 'egress_unconfigured' });
		}
		const url = new URL(request.url);
		if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !egressAllowed(egress, url.hostname)) {
			console.error(`outbound: tenant ${tenant}: egress to ${url.hostname} denied`);
			return json(403, { error: 'egress_denied' });
		}
		return fetch(request);
	},
};
