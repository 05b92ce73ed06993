/**
 * Test-only main module (never shipped: it lives outside src/). Runs the Worker's own crypto modules inside workerd
 * so the parity tests exercise the runtime's WebCrypto, not node's. POST JSON to /<operation>.
 */
import { verifyConfigDocument } from './configdoc.js';
import { EMBEDDED } from './embedded.js';
import { fromUtf8Exact, toHex, utf8 } from './encoding.js';
import { openEnvelope } from './envelope.js';
import { verifyHealthToken } from './healthtoken.js';
import { deriveKeyBytes, deriveKeys, parseRelayKey } from './keys.js';
import { verifyWebhookSignature } from './webhooks.js';

const C = EMBEDDED.contract;

/** @param {any} input */
async function keysFor(input) {
	const relayKey = parseRelayKey(input.relay_key_b64);
	if (!relayKey) throw new Error('relay key is not base64 of 32 bytes');
	return { relayKey, keys: await deriveKeys(relayKey, input.tenant, C.hkdf) };
}

const OPS = {
	/** @param {any} input */
	async derive(input) {
		const { relayKey } = await keysFor(input);
		const out = {};
		for (const purpose of Object.values(C.hkdf.purposes))
			out[purpose] = toHex(await deriveKeyBytes(relayKey, input.tenant, purpose, C.hkdf));
		return out;
	},
	/** @param {any} input */
	async open(input) {
		const { keys } = await keysFor(input);
		return openEnvelope(input.kv_value, { key: keys.secretEnvelope, tenant: input.tenant, name: input.name, contract: C });
	},
	/** @param {any} input */
	async config(input) {
		const { keys } = await keysFor(input);
		return verifyConfigDocument(input.kv_value, { macKey: keys.configMac, tenant: input.tenant, formatVersion: C.v });
	},
	/** @param {any} input */
	async token(input) {
		const { keys } = await keysFor(input);
		const windowSeconds = C.health.token_window_seconds;
		return verifyHealthToken(input.token, { key: keys.healthToken, tenant: input.tenant, nowSeconds: input.now, windowSeconds });
	},
	/** webhooks.js's own check and body decoding, on the vector's raw body. @param {any} input */
	async webhook(input) {
		const raw = utf8(input.body);
		return {
			ok: (await verifyWebhookSignature(input.secret, input.signature, raw)) === 'ok',
			roundTrip: fromUtf8Exact(raw) === input.body,
		};
	},
};

export default {
	/** @param {Request} request */
	async fetch(request) {
		const op = OPS[/** @type {keyof typeof OPS} */ (new URL(request.url).pathname.slice(1))];
		if (!op) return new Response('unknown operation', { status: 404 });
		try {
			return Response.json(await op(await request.json()));
		} catch (err) {
			return Response.json({ error: String(/** @type {Error} */ (err).message) }, { status: 500 });
		}
	},
};
