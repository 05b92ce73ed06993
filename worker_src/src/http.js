/** JSON responses with explicit status codes; nothing here ever echoes request data back. */
import { concatBytes } from './encoding.js';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** @param {number} status @param {unknown} body @param {Record<string, string>} [headers] */
export function json(status, body, headers = {}) {
	return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

export function notFound() {
	return json(404, { error: 'not_found' });
}

/** @param {string[]} allowed */
export function methodNotAllowed(allowed) {
	return json(405, { error: 'method_not_allowed' }, { allow: allowed.join(', ') });
}

/** Reads at most `max` bytes; null when the body is larger, without buffering the excess. @param {ReadableStream<Uint8Array> | null} body @param {number} max */
export async function readBounded(body, max) {
	if (!body) return new Uint8Array(0);
	const reader = body.getReader();
	/** @type {Uint8Array[]} */
	const chunks = [];
	let total = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		total += value.byteLength;
		if (total > max) {
			await reader.cancel();
			return null;
		}
		chunks.push(value);
	}
	return concatBytes(...chunks);
}
