/**
 * `POST <contract.webhook.path>`: Shopify-style receiver. Checks run in the documented order (docs/contract.md,
 * "Webhooks"): size 413, signature 401, body/id 400; secret unavailable or schema behind 503; replay 200 duplicate.
 */
import { fromBase64, fromUtf8Exact, utf8 } from './encoding.js';
import { json, readBounded } from './http.js';
import { storeWebhookEvent } from './records.js';

/** Ids are stored as a primary key and echoed nowhere; bound them so a sender cannot bloat the table's index. */
const MAX_ID_CHARS = 256;
const HMAC_SHA256_BYTES = 32;
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

	const signature = fromBase64(request.headers.get(w.signature_header));
	if (!signature || signature.length !== HMAC_SHA256_BYTES) return json(401, { error: 'unauthorized' });
	const secret = await edge.secrets.get(bindings.kv, w.secret_name, now);
	// WebCrypto refuses a zero-length HMAC key: an empty secret is as good as none.
	if (!secret.value) return unavailable();
	const key = await crypto.subtle.importKey('raw', utf8(secret.value), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
	// subtle.verify is the constant-time comparison.
	if (!(await crypto.subtle.verify('HMAC', key, signature, raw))) return json(401, { error: 'unauthorized' });

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
			receivedAt: new Date(now).toISOString(),
		});
	} catch {
		console.error('edge: webhook event could not be stored in D1');
		return unavailable();
	}
	return json(200, { stored, duplicate: !stored });
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
