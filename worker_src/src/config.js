/**
 * Config sync with last-known-good: fresh KV document → copy held in the isolate → payload embedded at deploy.
 * One KV read per TTL per isolate (failures are cached too, so a broken KV is not hammered), concurrent
 * requests that find the TTL expired share a single read, and traffic does not wait for it (see `current`).
 *
 * Never backwards (docs/contract.md, "Never backwards"): a KV document is adopted only when its version is at
 * least the one held here and at least the floor, the highest version any isolate recorded in D1. The floor
 * is read before the first adoption and before every newer version, and whenever it is still unknown while
 * the embedded config is served; served below it, the edge says so.
 */
import { sameJson, verifyConfigDocument } from './configdoc.js';
import { kvGet } from './kv.js';

/**
 * @typedef {import('./configdoc.js').ConfigPayload} ConfigPayload
 * @typedef {'kv' | 'cache' | 'embedded'} ConfigSource
 * @typedef {{ payload: ConfigPayload, source: ConfigSource, problem: string | null, floor: number | null, checkedAt: number }} ConfigView
 *   `problem`: why the KV document is not in service (null when it is); `floor`: highest version recorded in D1 as
 *   far as this isolate knows (null until D1 answered once).
 * @typedef {{ get(key: string): Promise<string | null> }} KvReader
 */

/** The served config is older than a version some isolate already served: a rollback the edge could not avoid. */
export const BELOW_FLOOR = 'below_floor';

/** @param {ConfigView} view @returns {string[]} the view's degraded reasons, without the `config:` prefix */
export function configProblems(view) {
	const problems = view.problem ? [view.problem] : [];
	if (view.floor !== null && view.payload.version < view.floor) problems.push(BELOW_FLOOR);
	return problems;
}

export class ConfigSync {
	/**
	 * @param {{ embedded: ConfigPayload, tenant: string, macKey: Promise<CryptoKey | null>, kvKey: string, ttlMs: number, maxStaleMs?: number,
	 *   formatVersion: number, floor?: () => Promise<number | null> }} opts
	 *   `maxStaleMs`: how long past its TTL a view may still be served while it is refreshed in the background;
	 *   `floor`: the highest version any isolate accepted (D1), null when D1 cannot say.
	 */
	constructor({ embedded, tenant, macKey, kvKey, ttlMs, maxStaleMs = 0, formatVersion, floor = async () => 0 }) {
		this.maxStaleMs = maxStaleMs;
		this.readFloor = floor;
		this.tenant = tenant;
		this.macKey = macKey;
		this.kvKey = kvKey;
		this.ttlMs = ttlMs;
		this.formatVersion = formatVersion;
		/** `text`: the exact KV document the held payload came from. @type {{ payload: ConfigPayload, fromKv: boolean, text: string | null }} */
		this.held = { payload: embedded, fromKv: false, text: null };
		/** Highest version D1 reported or this isolate adopted; it only grows (the D1 table is insert-only). @type {number | null} */
		this.floor = null;
		/** @type {ConfigView | null} */
		this.view = null;
		/** @type {Promise<ConfigView> | null} */
		this.inflight = null;
	}

	/**
	 * The config to serve now. Never throws: every KV, D1 or document fault becomes `problem` on the view.
	 * With `background` (traffic routes), a view past its TTL but within the stale window is served at once and
	 * refreshed behind the response (stale-while-revalidate), so the request does not wait on KV or D1. Without it
	 * (health, cron: they report what is true now), and for a view older than the window or none yet, the call waits.
	 * Either way the refresh applies every rule of "Never backwards"; serving the held view again is not going back.
	 * @param {KvReader} kv @param {number} now ms since epoch @param {{ waitUntil(p: Promise<unknown>): void }} [background]
	 * @returns {Promise<ConfigView>}
	 */
	current(kv, now, background) {
		// A TTL of 0 means "always re-read" (with a stale window of 0, what tests that change KV between requests use).
		const view = this.view;
		if (view && now - view.checkedAt < this.ttlMs) return Promise.resolve(view);
		if (!this.inflight) {
			this.inflight = this.refresh(kv, now).finally(() => {
				this.inflight = null;
			});
		}
		if (background && view && now - view.checkedAt < this.ttlMs + this.maxStaleMs) {
			background.waitUntil(this.inflight.catch(() => console.warn('edge: background config refresh failed')));
			return Promise.resolve(view);
		}
		return this.inflight;
	}

	/** @param {KvReader} kv @param {number} now @returns {Promise<ConfigView>} */
	async refresh(kv, now) {
		const problem = await this.check(kv);
		// Serving the embedded config without ever having heard from D1: ask, so a rollback by deploy is reported.
		if (!this.held.fromKv && this.floor === null) await this.learnFloor();
		const source = problem === null ? 'kv' : this.held.fromKv ? 'cache' : 'embedded';
		this.view = { payload: this.held.payload, source, problem, floor: this.floor, checkedAt: now };
		return this.view;
	}

	/** @returns {Promise<number | null>} the floor now, or null when D1 cannot say */
	async learnFloor() {
		const recorded = await this.readFloor();
		if (recorded === null) return null;
		this.floor = Math.max(this.floor ?? 0, recorded);
		return this.floor;
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
		// The very document already adopted (the common case after a TTL): it passed the MAC, the order and the floor
		// then, and the same bytes under the same key verify the same way, so only a floor raised since needs a look.
		const held = this.held;
		if (held.fromKv && text === held.text && held.payload.version >= (this.floor ?? 0)) return null;
		const verified = await verifyConfigDocument(text, { macKey, tenant: this.tenant, formatVersion: this.formatVersion });
		if (!verified.ok) return verified.reason;
		const version = verified.payload.version;
		if (version < held.payload.version) return 'stale_version';
		if (version === held.payload.version && !sameJson(verified.payload, held.payload)) return 'version_conflict';
		// A known floor never shrinks, so a document below it is refused without asking D1 again.
		if (this.floor !== null && version < this.floor) return 'rollback_refused';
		// The version held from KV was checked against the floor when it was adopted; anything else (the first
		// adoption in a fresh isolate, even of the embedded version, or a newer version) is checked now.
		if (!held.fromKv || version > held.payload.version) {
			const floor = await this.learnFloor();
			if (floor === null) return 'floor_unavailable';
			if (version < floor) return 'rollback_refused';
		}
		this.held = { payload: verified.payload, fromKv: true, text };
		this.floor = Math.max(this.floor ?? 0, version);
		return null;
	}
}
