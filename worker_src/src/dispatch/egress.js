/**
 * A tenant's egress allow-list: exact hostnames (`api.stripe.com`) or `*.suffix` (any name below the suffix, not the
 * suffix itself). Anything not listed is denied; an empty list denies every outbound fetch.
 */

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const PATTERN_RE = new RegExp(`^(?:\\*\\.)?(?:${LABEL}\\.)+[a-z][a-z0-9-]{1,62}$`);

/** @param {unknown} value @returns {value is string} */
export function isEgressPattern(value) {
	return typeof value === 'string' && value.length <= 253 && PATTERN_RE.test(value);
}

/** @param {string[]} patterns @param {string} host already lower case (URL), trailing dot allowed */
export function egressAllowed(patterns, host) {
	const name = host.replace(/\.$/, '');
	return patterns.some((p) => (p.startsWith('*.') ? name.endsWith(p.slice(1)) && name.length > p.length - 1 : name === p));
}
