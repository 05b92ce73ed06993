/**
 * Relayed business secrets: KV envelopes decrypted on demand and held in the isolate for the config TTL.
 * A failed re-read keeps the last value that did decrypt (availability), while its state reports the fault.
 */
import { openEnvelope } from './envelope.js';
import { kvGet } from './kv.js';

/**
 * @typedef {'ok' | 'missing' | 'kv_error' | 'no_relay_key' | 'not_expected' | 'malformed' | 'wrong_tenant' | 'wrong_name' | 'decrypt_failed'} SecretState
 * @typedef {{ state: SecretState, value: string | null, checkedAt: number }} SecretEntry
 * @typedef {{ get(key: string): Promise<string | null> }} KvReader
 */

export class SecretStore {
	/**
	 * @param {{ key: Promise<CryptoKey | null>, tenant: string, names: string[], kvPrefix: string, ttlMs: number,
	 *   contract: { v: number, envelope: { alg: string, aad_prefix: string } } }} opts
	 */
	constructor({ key, tenant, names, kvPrefix, ttlMs, contract }) {
		this.key = key;
		this.tenant = tenant;
		this.names = names;
		this.kvPrefix = kvPrefix;
		this.ttlMs = ttlMs;
		this.contract = contract;
		/** @type {Map<string, SecretEntry>} */
		this.entries = new Map();
		/** @type {Map<string, Promise<SecretEntry>>} */
		this.inflight = new Map();
	}

	/**
	 * @param {KvReader} kv @param {string} name @param {number} now
	 * @returns {Promise<SecretEntry>} value is non-null whenever some envelope for this name ever decrypted in this isolate
	 */
	get(kv, name, now) {
		// Only names the bundle was rendered with are read: an unexpected name is a bug or a probe, not a KV lookup.
		if (!this.names.includes(name)) return Promise.resolve({ state: 'not_expected', value: null, checkedAt: now });
		const entry = this.entries.get(name);
		if (entry && now - entry.checkedAt < this.ttlMs) return Promise.resolve(entry);
		let pending = this.inflight.get(name);
		if (!pending) {
			pending = this.load(kv, name, now).finally(() => this.inflight.delete(name));
			this.inflight.set(name, pending);
		}
		return pending;
	}

	/** @param {KvReader} kv @param {number} now @returns {Promise<Record<string, SecretState>>} */
	async states(kv, now) {
		const entries = await Promise.all(this.names.map((n) => this.get(kv, n, now)));
		return Object.fromEntries(this.names.map((n, i) => [n, entries[i].state]));
	}

	/** @param {KvReader} kv @param {string} name @param {number} now @returns {Promise<SecretEntry>} */
	async load(kv, name, now) {
		const state = await this.read(kv, name);
		// A read or decrypt fault keeps the last good value (webhooks keep working while health says
		// degraded); a deleted key is the operator switching the secret off, so it is dropped.
		const previous = state === 'missing' ? null : (this.entries.get(name)?.value ?? null);
		const entry =
			typeof state === 'string'
				? { state, value: previous, checkedAt: now }
				: { state: /** @type {const} */ ('ok'), value: state.value, checkedAt: now };
		this.entries.set(name, entry);
		return entry;
	}

	/** @param {KvReader} kv @param {string} name @returns {Promise<SecretState | { value: string }>} */
	async read(kv, name) {
		const key = await this.key;
		if (!key) return 'no_relay_key';
		let text;
		try {
			text = await kvGet(kv, this.kvPrefix + name);
		} catch {
			return 'kv_error';
		}
		if (text === null) return 'missing';
		const opened = await openEnvelope(text, { key, tenant: this.tenant, name, contract: this.contract });
		return opened.ok ? { value: opened.value } : opened.state;
	}
}
