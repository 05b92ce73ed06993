/**
 * Opens a secret envelope (KV `secret:<NAME>`) written by the Python side: AES-256-GCM, AAD bound to tenant and name.
 * Every failure is a short state code; the cause (which could hint at key material) is never surfaced.
 */
import { fromBase64, fromUtf8, utf8 } from './encoding.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * @typedef {{ ok: true, value: string } | { ok: false, state: 'malformed' | 'wrong_tenant' | 'wrong_name' | 'decrypt_failed' }} Opened
 */

/**
 * @param {string} text the KV value
 * @param {{ key: CryptoKey, tenant: string, name: string, contract: { v: number, envelope: { alg: string, aad_prefix: string } } }} opts
 * @returns {Promise<Opened>}
 */
export async function openEnvelope(text, { key, tenant, name, contract }) {
	let doc;
	try {
		doc = JSON.parse(text);
	} catch {
		return { ok: false, state: 'malformed' };
	}
	if (!doc || typeof doc !== 'object' || doc.v !== contract.v || doc.alg !== contract.envelope.alg)
		return { ok: false, state: 'malformed' };
	// Tenant and name are checked before decrypting so a copied envelope is named as such, not as a generic failure.
	if (doc.tenant !== tenant) return { ok: false, state: 'wrong_tenant' };
	if (doc.name !== name) return { ok: false, state: 'wrong_name' };
	const iv = fromBase64(doc.iv);
	const ct = fromBase64(doc.ct);
	if (!iv || iv.length !== IV_BYTES || !ct || ct.length < TAG_BYTES) return { ok: false, state: 'malformed' };
	let plain;
	try {
		const aad = utf8(`${contract.envelope.aad_prefix}${tenant}/${name}`);
		plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: TAG_BYTES * 8 }, key, ct);
	} catch {
		return { ok: false, state: 'decrypt_failed' };
	}
	const value = fromUtf8(plain);
	return value === null ? { ok: false, state: 'malformed' } : { ok: true, value };
}
