/**
 * The Python side's writes, re-implemented with node:crypto (not WebCrypto) from docs/contract.md, so the tests
 * cross-check two independent implementations. Parity with the real Python output is checked in vectors.test.mjs.
 */
import { createCipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/** @param {any} contract @param {Buffer} relayKey @param {string} tenant @param {string} purpose */
export function deriveKey(contract, relayKey, tenant, purpose) {
	const h = contract.hkdf;
	return Buffer.from(hkdfSync('sha256', relayKey, Buffer.from(h.salt), Buffer.from(`${h.info_prefix}${purpose}/${tenant}`), 32));
}

/**
 * @param {any} contract @param {Buffer} relayKey @param {string} tenant
 * @param {string | { tenant: string, version: number, config: object }} payload object, or exact payload text
 * @param {{ mac?: string }} [tamper]
 */
export function signConfig(contract, relayKey, tenant, payload, tamper = {}) {
	const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
	const key = deriveKey(contract, relayKey, tenant, contract.hkdf.purposes.config_mac);
	const mac = tamper.mac ?? createHmac('sha256', key).update(text, 'utf8').digest('base64');
	return JSON.stringify({ v: contract.v, payload: text, mac });
}

/** @param {any} contract @param {Buffer} relayKey @param {string} tenant @param {string} name @param {string} plaintext */
export function sealEnvelope(contract, relayKey, tenant, name, plaintext) {
	const aad = Buffer.from(`${contract.envelope.aad_prefix}${tenant}/${name}`);
	const pt = Buffer.from(plaintext, 'utf8');
	const nonceKey = deriveKey(contract, relayKey, tenant, contract.hkdf.purposes.envelope_nonce);
	const iv = createHmac('sha256', nonceKey)
		.update(Buffer.concat([aad, Buffer.from([0]), pt]))
		.digest()
		.subarray(0, 12);
	const cipher = createCipheriv('aes-256-gcm', deriveKey(contract, relayKey, tenant, contract.hkdf.purposes.secret_envelope), iv);
	cipher.setAAD(aad);
	const ct = Buffer.concat([cipher.update(pt), cipher.final(), cipher.getAuthTag()]);
	return JSON.stringify({ v: contract.v, alg: contract.envelope.alg, tenant, name, iv: iv.toString('base64'), ct: ct.toString('base64') });
}

/** @param {any} contract @param {Buffer} relayKey @param {string} tenant @param {{ ts?: number, nonce?: string }} [opts] */
export function healthToken(contract, relayKey, tenant, opts = {}) {
	const ts = opts.ts ?? Math.floor(Date.now() / 1000);
	const nonce = opts.nonce ?? randomBytes(8).toString('hex');
	const key = deriveKey(contract, relayKey, tenant, contract.hkdf.purposes.health_token);
	const mac = createHmac('sha256', key).update(`health:${tenant}:${ts}:${nonce}`, 'utf8').digest('base64url');
	return `${ts}.${nonce}.${mac}`;
}

/** @param {string} secret @param {string | Buffer} body */
export function webhookSignature(secret, body) {
	return createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('base64');
}
