/**
 * Health tokens `<unix_ts>.<nonce>.<mac>` (docs/contract.md, "Health"). Time-limited by the contract window and
 * replay-safe: a nonce is accepted once per isolate, and once across isolates when D1 can record it.
 */
import { fromBase64UrlNoPad, utf8 } from './encoding.js';

const TOKEN = /^(\d{1,12})\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/**
 * @typedef {{ ok: true, ts: number, nonce: string } | { ok: false, reason: 'malformed' | 'expired' | 'bad_mac' | 'replayed' }} TokenCheck
 */

/**
 * Signature and time window only; no replay memory (that is NonceMemory's job, after the MAC has passed).
 * @param {string} token @param {{ key: CryptoKey, tenant: string, nowSeconds: number, windowSeconds: number }} opts
 * @returns {Promise<TokenCheck>}
 */
export async function verifyHealthToken(token, { key, tenant, nowSeconds, windowSeconds }) {
	const m = TOKEN.exec(token);
	if (!m) return { ok: false, reason: 'malformed' };
	const [, tsText, nonce, macText] = m;
	const ts = Number(tsText);
	if (Math.abs(nowSeconds - ts) > windowSeconds) return { ok: false, reason: 'expired' };
	const mac = fromBase64UrlNoPad(macText);
	if (!mac) return { ok: false, reason: 'malformed' };
	const ok = await crypto.subtle.verify('HMAC', key, mac, utf8(`health:${tenant}:${tsText}:${nonce}`));
	return ok ? { ok: true, ts, nonce } : { ok: false, reason: 'bad_mac' };
}

/** Nonces seen in this isolate, forgotten once they could no longer pass the time window anyway. */
export class NonceMemory {
	/** @param {number} windowSeconds */
	constructor(windowSeconds) {
		this.windowSeconds = windowSeconds;
		/** @type {Map<string, number>} nonce → expiry (unix seconds) */
		this.seen = new Map();
	}

	/** @param {string} nonce @param {number} ts @param {number} nowSeconds @returns {boolean} true the first time */
	claim(nonce, ts, nowSeconds) {
		for (const [n, expiry] of this.seen) if (expiry < nowSeconds) this.seen.delete(n);
		if (this.seen.has(nonce)) return false;
		// A token stays valid until ts + window, so its nonce must be remembered at least that long.
		this.seen.set(nonce, ts + this.windowSeconds + 1);
		return true;
	}
}
