/**
 * Config sync with last-known-good: fresh KV document → copy held in the isolate → payload embedded at deploy.
 * One KV read per TTL per isolate (failures are cached too, so a broken KV is not hammered), and concurrent
 * requests that find the TTL expired share a single read.
 */
import { sameJson, verifyConfigDocument } from './configdoc.js';
import { kvGet } from './kv.js';

/**
 * @typedef {import('./configdoc.js').ConfigPayload} ConfigPayload
 * @typedef {'kv' | 'cache' | 'embedded'} ConfigSource
 * @typedef {{ payload: ConfigPayload, source: ConfigSource, problem: string | null, checkedAt: number }} ConfigView
 * @typedef {{ get(key: string): Promise<string | null> }} KvReader
 */

export class ConfigSync {
	/**
	 * @param {{ embedded: ConfigPayload, tenant: string, macKey: Promise<CryptoKey | null>, kvKey: string, ttlMs: number, formatVersion: number, floor?: () => Promise<number | null> }} opts
	 *   `floor`: the highest version any isolate accepted (D1), so a fresh isolate never goes back either.
	 */
	constructor({ embedded, tenant, macKey, kvKey, ttlMs, formatVersion, floor = async () => 0 }) {
		this.floor = floor;
		this.tenant = tenant;
		this.macKey = macKey;
		this.kvKey = kvKey;
		this.ttlMs = ttlMs;
		this.formatVersion = formatVersion;
		/** @type {{ payload: ConfigPayload, fromKv: boolean }} */
		this.held = { payload: embedded, fromKv: false };
		/** @type {ConfigView | null} */
		this.view = null;
		/** @type {Promise<ConfigView> | null} */
		this.inflight = null;
	}

	/**
	 * The config to serve now. Never throws: every KV or document fault becomes `problem` on the view.
	 * @param {KvReader} kv @param {number} now ms since epoch
	 * @returns {Promise<ConfigView>}
	 */
	current(kv, now) {
		// A TTL of 0 means "always re-read" (used by tests that change KV between requests).
		if (this.view && now - this.view.checkedAt < this.ttlMs) return Promise.resolve(this.view);
		if (!this.inflight) {
			this.inflight = this.refresh(kv, now).finally(() => {
				this.inflight = null;
			});
		}
		return this.inflight;
	}

	/** @param {KvReader} kv @param {number} now @returns {Promise<ConfigView>} */
	async refresh(kv, now) {
		const problem = await this.check(kv);
		const source = problem === null ? 'kv' : this.held.fromKv ? 'cache' : 'embedded';
		this.view = { payload: this.held.payload, source, problem, checkedAt: now };
		return this.view;
	}

	/** Reads and verifies the KV document; on success it becomes the held copy. @param {KvReader} kv @returns {Promise<string | null>} */
	async check(kv) {
		const macKey = await this.macKey;
		if (!macKey) return 'relay_key_invalid';
		let text;
		try {
			text = await kvGet(kv, this.kvKey);
		} catch {
			return 'kv_error';
		}
		if (text === null) return 'missing';
		const verified = await verifyConfigDocument(text, { macKey, tenant: this.tenant, formatVersion: this.formatVersion });
		if (!verified.ok) return verified.reason;
		const held = this.held.payload;
		if (verified.payload.version < held.version) return 'stale_version';
		// Only a version newer than the one held needs the fleet-wide floor: an older signed document
		// replayed into KV must not win in an isolate that has not seen the newer one yet.
		if (verified.payload.version > held.version) {
			const floor = await this.floor();
			if (floor === null) return 'floor_unavailable';
			if (verified.payload.version < floor) return 'stale_version';
		}
		if (verified.payload.version === held.version && !sameJson(verified.payload, held)) return 'version_conflict';
		this.held = { payload: verified.payload, fromKv: true };
		return null;
	}
}
