/**
 * Byte/text encodings shared by the crypto paths. Decoders are strict and return null instead of throwing,
 * so a malformed KV value becomes a reported state rather than an exception.
 */

/** Length of an HMAC-SHA256 tag: config MACs and webhook signatures must decode to exactly this many bytes. */
export const HMAC_SHA256_BYTES = 32;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
// Keeps a leading BOM: stored webhook bodies must be the exact bytes the signature covers.
const exactDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** @param {string} text */
export function utf8(text) {
	return encoder.encode(text);
}

/** @param {ArrayBuffer | Uint8Array} bytes @returns {string | null} */
export function fromUtf8(bytes) {
	try {
		return decoder.decode(bytes);
	} catch {
		return null;
	}
}

/** Like fromUtf8, but a leading BOM stays part of the text. @param {ArrayBuffer | Uint8Array} bytes @returns {string | null} */
export function fromUtf8Exact(bytes) {
	try {
		return exactDecoder.decode(bytes);
	} catch {
		return null;
	}
}

/** @param {Uint8Array[]} parts */
export function concatBytes(...parts) {
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
	let offset = 0;
	for (const p of parts) {
		out.set(p, offset);
		offset += p.length;
	}
	return out;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64URL_NOPAD = /^[A-Za-z0-9_-]*$/;

/** Standard base64 with padding, as Python's base64.b64encode writes it. @param {unknown} text @returns {Uint8Array | null} */
export function fromBase64(text) {
	if (typeof text !== 'string' || !B64.test(text)) return null;
	const bin = atob(text);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

/** base64url without padding (health token MACs). @param {unknown} text @returns {Uint8Array | null} */
export function fromBase64UrlNoPad(text) {
	if (typeof text !== 'string' || !B64URL_NOPAD.test(text) || text.length % 4 === 1) return null;
	const std = text.replaceAll('-', '+').replaceAll('_', '/');
	return fromBase64(std + '='.repeat((4 - (std.length % 4)) % 4));
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
