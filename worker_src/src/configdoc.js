/**
 * Verifies one signed config document (KV `config`): `{"v":1,"payload":"<JSON text>","mac":"<b64>"}`.
 * Pure: no KV, no clock, no state. Ordering against what the isolate already holds lives in config.js.
 */
import { fromBase64, HMAC_SHA256_BYTES, utf8 } from './encoding.js';

// With the u flag a surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * @typedef {{ tenant: string, version: number, config: Record<string, unknown> }} ConfigPayload
 * @typedef {{ ok: true, payload: ConfigPayload, payloadText: string }
 *   | { ok: false, reason: 'malformed' | 'bad_mac' | 'malformed_payload' | 'wrong_tenant' | 'bad_version' }} Verified
 */

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isPlainObject(value) {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {string} text
 * @param {{ macKey: CryptoKey, tenant: string, formatVersion: number }} opts
 * @returns {Promise<Verified>}
 */
export async function verifyConfigDocument(text, { macKey, tenant, formatVersion }) {
	let doc;
	try {
		doc = JSON.parse(text);
	} catch {
		return { ok: false, reason: 'malformed' };
	}
	if (!isPlainObject(doc) || doc.v !== formatVersion || typeof doc.payload !== 'string') return { ok: false, reason: 'malformed' };
	// TextEncoder turns lone surrogates into U+FFFD, so two payload strings could share one MAC.
	if (LONE_SURROGATE.test(doc.payload)) return { ok: false, reason: 'malformed' };
	const mac = fromBase64(doc.mac);
	if (!mac) return { ok: false, reason: 'malformed' };
	// A truncated tag is refused outright rather than trusting every runtime to compare full lengths.
	if (mac.length !== HMAC_SHA256_BYTES) return { ok: false, reason: 'bad_mac' };
	// subtle.verify compares in constant time; the MAC covers the payload's exact bytes, so nothing is canonicalised.
	if (!(await crypto.subtle.verify('HMAC', macKey, mac, utf8(doc.payload)))) return { ok: false, reason: 'bad_mac' };
	let payload;
	try {
		payload = JSON.parse(doc.payload);
	} catch {
		return { ok: false, reason: 'malformed_payload' };
	}
	if (!isPlainObject(payload) || !isPlainObject(payload.config)) return { ok: false, reason: 'malformed_payload' };
	if (payload.tenant !== tenant) return { ok: false, reason: 'wrong_tenant' };
	if (!Number.isSafeInteger(payload.version) || /** @type {number} */ (payload.version) < 1) return { ok: false, reason: 'bad_version' };
	return { ok: true, payload: /** @type {ConfigPayload} */ (payload), payloadText: doc.payload };
}

/**
 * Structural equality, blind to object key order: the embedded copy is re-serialised by jinja (sorted keys), the KV copy is not.
 * @param {unknown} a @param {unknown} b @returns {boolean}
 */
export function sameJson(a, b) {
	if (a === b) return true;
	if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
	if (!isPlainObject(a) || !isPlainObject(b) || Array.isArray(b)) return false;
	const ka = Object.keys(a);
	return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}
