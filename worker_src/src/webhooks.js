/**
 * `POST <contract.webhook.path>`: Shopify-style receiver. Checks run in the documented order (docs/contract.md,
 * "Webhooks"): size 413, signature 401, body/id 400; secret unavailable or schema behind 503; replay 200 duplicate.
 * A replay is the same signed body (or the same id) again, whatever the unsigned id and topic headers now say.
 */
import { fromBase64, fromUtf8Exact, HMAC_SHA256_BYTES, toHex, utf8 } from './encoding.js';
import { json, readBounded } from './http.js';
import { storeWebhookEvent } from './records.js';

/** Ids are stored as a primary key and echoed nowhere; bound them so a sender cannot bloat the table's index. */
const MAX_ID_CHARS = 256;
const ID_PATTERN = /^[\x21-\x7e]+$/;

/**
 * @param {Request} request @param {import('./context.js').EdgeContext} edge
 * @param {import('./context.js').Bindings} bindings @param {number} now
 */
export async function handleWebhook(request, edge, bindings, now) {
	const w = edge.contract.webhook;
	const declared = Number(request.headers.get('content-length') ?? '0');
	if (declared > w.max_body_bytes) return json(413, { error: 'payload_too_large' });
	const raw = await readBounded(request.body, w.max_body_bytes);
	if (raw === null) return json(413, { error: 'payload_too_large' });

	const signatureHeader = request.headers.get(w.signature_header);
	// A malformed signature is refused before the secret is read.
	if (!signatureBytes(signatureHeader)) return json(401, { error: 'unauthorized' });
	const secret = await edge.secrets.get(bindings.kv, w.secret_name, now);
	const verdict = await verifyWebhookSignature(secret.value, signatureHeader, raw);
	if (verdict === 'unavailable') return unavailable();
	if (verdict !== 'ok') return json(401, { error: 'unauthorized' });

	const id = request.headers.get(w.id_header);
	const text = fromUtf8Exact(raw);
	if (!id || id.length > MAX_ID_CHARS || !ID_PATTERN.test(id) || text === null || !isJson(text)) {
		return json(400, { error: 'bad_request' });
	}

	// Schema is checked after authentication so unauthenticated traffic never reaches D1.
	const schema = await edge.schema.gate(bindings.db);
	if (schema.schema !== 'current') return unavailable();
	let stored;
	try {
		stored = await storeWebhookEvent(bindings.db, {
			id,
			topic: request.headers.get(w.topic_header),
			body: text,
			// The idempotency key is what the signature covers, not the unsigned id or topic headers.
			bodySha256: toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', raw))),
			receivedAt: new Date(now).toISOString(),
		});
	} catch {
		console.error('edge: webhook event could not be stored in D1');
		return unavailable();
	}
	return json(200, { stored, duplicate: !stored });
}

/**
 * The webhook signature check (the handler's and the parity harness's): `signatureHeader` must be standard base64 of
 * exactly one HMAC-SHA256 tag of `rawBytes` under `secretValue`. 'unavailable' when there is no secret to check with.
 * @param {string | null} secretValue @param {string | null} signatureHeader @param {Uint8Array} rawBytes
 * @returns {Promise<'ok' | 'unauthorized' | 'unavailable'>}
 */
export async function verifyWebhookSignature(secretValue, signatureHeader, rawBytes) {
	const signature = signatureBytes(signatureHeader);
	if (!signature) return 'unauthorized';
	// WebCrypto refuses a zero-length HMAC key: an empty secret is as good as none.
	if (!secretValue) return 'unavailable';
	// subtle.verify is the constant-time comparison.
	return (await crypto.subtle.verify('HMAC', await hmacKey(secretValue), signature, rawBytes)) ? 'ok' : 'unauthorized';
}

/** @param {string | null} header @returns {Uint8Array | null} */
function signatureBytes(header) {
	const signature = fromBase64(header);
	return signature && signature.length === HMAC_SHA256_BYTES ? signature : null;
}

/**
 * One slot: an isolate holds one webhook secret at a time, so its key is imported once rather than per request.
 * @type {{ secret: string, key: Promise<CryptoKey> } | null}
 */
let lastKey = null;

/** @param {string} secret */
function hmacKey(secret) {
	if (lastKey?.secret !== secret) {
		lastKey = { secret, key: crypto.subtle.importKey('raw', utf8(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']) };
	}
	return lastKey.key;
}

/** @param {string} text */
function isJson(text) {
	try {
		JSON.parse(text);
		return true;
	} catch {
		return false;
	}
}

function unavailable() {
	return json(503, { error: 'unavailable' });
}
