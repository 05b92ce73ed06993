/**
 * Per-isolate state: derived keys, config sync, secret cache, schema gate and nonce memory, built once per
 * (relay key, tenant) and reused across requests. Every name comes from EMBEDDED.contract.
 */
import { ConfigSync } from './config.js';
import { NonceMemory } from './healthtoken.js';
import { deriveKeys, parseRelayKey } from './keys.js';
import { highestConfigVersion } from './records.js';
import { SchemaGate } from './schema.js';
import { SecretStore } from './secrets.js';

/**
 * @typedef {import('./configdoc.js').ConfigPayload} ConfigPayload
 * @typedef {{ contract: any, tenant: string, bundle_hash: string, config: ConfigPayload, migrations: string[], secret_names: string[] }} Embedded
 * @typedef {{ kv: any, db: any, relayKeyB64: unknown, tenant: string }} Bindings
 */

export class EdgeContext {
	/** @param {Embedded} embedded @param {Bindings} bindings */
	constructor(embedded, bindings) {
		const c = embedded.contract;
		this.embedded = embedded;
		this.contract = c;
		this.relayKeyB64 = bindings.relayKeyB64;
		this.tenant = bindings.tenant;
		const relayKey = parseRelayKey(bindings.relayKeyB64);
		/** @type {Promise<import('./keys.js').DerivedKeys | null>} */
		this.keys = relayKey ? deriveKeys(relayKey, this.tenant, c.hkdf).catch(() => null) : Promise.resolve(null);
		/** Problems that no KV update can fix: they come from the deployment itself. */
		this.bundleProblems = [];
		if (!relayKey) this.bundleProblems.push('relay_key_invalid');
		if (this.tenant !== embedded.tenant || embedded.config.tenant !== embedded.tenant) this.bundleProblems.push('tenant_mismatch');
		const ttlMs = c.config_cache_ttl_seconds * 1000;
		this.config = new ConfigSync({
			embedded: embedded.config,
			tenant: this.tenant,
			macKey: this.keys.then((k) => k?.configMac ?? null),
			kvKey: c.kv_keys.config,
			ttlMs,
			maxStaleMs: c.config_max_stale_seconds * 1000,
			formatVersion: c.v,
			floor: () => highestConfigVersion(bindings.db),
		});
		this.secrets = new SecretStore({
			key: this.keys.then((k) => k?.secretEnvelope ?? null),
			tenant: this.tenant,
			names: embedded.secret_names,
			kvPrefix: c.kv_keys.secret_prefix,
			ttlMs,
			contract: c,
		});
		this.schema = new SchemaGate(c.migrations_table, embedded.migrations);
		this.nonces = new NonceMemory(c.health.token_window_seconds);
		/** Highest config version this isolate has recorded in D1 (applied_config_versions). */
		this.recordedVersion = 0;
	}

	/** @param {Bindings} bindings */
	matches(bindings) {
		return this.relayKeyB64 === bindings.relayKeyB64 && this.tenant === bindings.tenant;
	}
}

/** @param {any} contract @param {Record<string, unknown>} env @returns {Bindings} */
export function bindingsOf(contract, env) {
	const b = contract.bindings;
	return { kv: env[b.kv], db: env[b.d1], relayKeyB64: env[b.relay_key], tenant: String(env[b.tenant_id] ?? '') };
}

/** @type {EdgeContext | null} */
let shared = null;

/**
 * The isolate's context; rebuilt only if the bindings changed (they do not within one deployment).
 * @param {Embedded} embedded @param {Record<string, unknown>} env
 */
export function edgeFor(embedded, env) {
	const bindings = bindingsOf(embedded.contract, env);
	if (!shared || shared.embedded !== embedded || !shared.matches(bindings)) shared = new EdgeContext(embedded, bindings);
	return { edge: shared, bindings };
}
