/** KV reads with a deadline: a KV that hangs must degrade the edge like a KV that throws, not stall every request. */

/** A healthy KV read takes milliseconds; two seconds is far past that yet well inside a client's patience. */
export const KV_READ_TIMEOUT_MS = 2000;

/**
 * @param {{ get(key: string): Promise<string | null> }} kv @param {string} key
 * @returns {Promise<string | null>} rejects on a KV error or after KV_READ_TIMEOUT_MS
 */
export async function kvGet(kv, key) {
	/** @type {ReturnType<typeof setTimeout> | null} */
	let timer = null;
	const deadline = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error('KV read timed out')), KV_READ_TIMEOUT_MS);
	});
	try {
		return /** @type {string | null} */ (await Promise.race([kv.get(key), deadline]));
	} finally {
		clearTimeout(timer);
	}
}
