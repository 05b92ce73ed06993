/**
 * Per-purpose keys derived from the relay key, exactly as docs/contract.md ("Relay key and derived keys"):
 * K_p = HKDF-SHA256(ikm=relay_key, salt=utf8(salt), info=utf8(info_prefix + p + "/" + tenant), L=32).
 */
import { fromBase64, utf8 } from './encoding.js';

const RELAY_KEY_BYTES = 32;

/**
 * @typedef {object} DerivedKeys
 * @property {CryptoKey} configMac HMAC-SHA256 key for the signed config document
 * @property {CryptoKey} healthToken HMAC-SHA256 key for health tokens
 * @property {CryptoKey} secretEnvelope AES-256-GCM key for secret envelopes
 */

/** @param {unknown} relayKeyB64 @returns {Uint8Array | null} the 32 raw bytes, or null when the binding is absent or malformed */
export function parseRelayKey(relayKeyB64) {
	// Python's relay_key_from_b64 tolerates surrounding whitespace (a key pasted with a newline); so does this.
	const raw = fromBase64(typeof relayKeyB64 === 'string' ? relayKeyB64.trim() : relayKeyB64);
	return raw && raw.length === RELAY_KEY_BYTES ? raw : null;
}

/**
 * @param {Uint8Array} relayKey
 * @param {string} tenant
 * @param {string} purpose one of contract.hkdf.purposes
 * @param {{ hash: string, salt: string, info_prefix: string }} hkdf contract.hkdf
 * @returns {Promise<Uint8Array>}
 */
export async function deriveKeyBytes(relayKey, tenant, purpose, hkdf) {
	const ikm = await crypto.subtle.importKey('raw', relayKey, 'HKDF', false, ['deriveBits']);
	const params = { name: 'HKDF', hash: hkdf.hash, salt: utf8(hkdf.salt), info: utf8(`${hkdf.info_prefix}${purpose}/${tenant}`) };
	return new Uint8Array(await crypto.subtle.deriveBits(params, ikm, 256));
}

/** @param {Uint8Array} raw @param {string} hash */
function importHmac(raw, hash) {
	return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['sign', 'verify']);
}

/**
 * @param {Uint8Array} relayKey
 * @param {string} tenant
 * @param {{ hash: string, salt: string, info_prefix: string, purposes: Record<string, string> }} hkdf contract.hkdf
 * @returns {Promise<DerivedKeys>}
 */
export async function deriveKeys(relayKey, tenant, hkdf) {
	const [mac, health, envelope] = await Promise.all(
		[hkdf.purposes.config_mac, hkdf.purposes.health_token, hkdf.purposes.secret_envelope].map((p) =>
			deriveKeyBytes(relayKey, tenant, p, hkdf),
		),
	);
	return {
		configMac: await importHmac(mac, hkdf.hash),
		healthToken: await importHmac(health, hkdf.hash),
		secretEnvelope: await crypto.subtle.importKey('raw', envelope, 'AES-GCM', false, ['decrypt']),
	};
}
