/** JSON answers of the dispatch and outbound Workers; like the tenant Worker's, they never echo request data. */

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** @param {number} status @param {unknown} body */
export function json(status, body) {
	return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}
