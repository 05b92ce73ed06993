/**
 * Works around cloudflare/workers-sdk#15271 (open): Miniflare's `serializeConfig` builds workerd's config in a
 * capnp-es `SingleSegmentArena` that grows by `max(needed, 4096)` bytes and copies the whole arena each time, so
 * serialising the config costs time quadratic in its size. The local edge's config holds every tenant's modules
 * (~52 KB of source each), so 200 tenants spent ~10 s of node CPU there and 500 would spend minutes.
 *
 * The fix grows the arena geometrically (at least doubling), which is what the issue proposes. It changes where
 * the bytes live while building, not the message: `toArrayBuffer` copies only the segment's used bytes.
 *
 * Applied by patching that one line of the pinned Miniflare's bundle as node compiles it (a CommonJS file, loaded
 * by the runner's import()), never on disk. If the line is not found (another Miniflare version), nothing is
 * changed and `growthPatch.state` says so; the runner logs it.
 *   import { growthPatch } from './capnp_growth.mjs';  // before importing Miniflare
 */
import Module from 'node:module';
import { sep } from 'node:path';

export const ANCHOR = 's.buffer = new ArrayBuffer(srcBuffer.byteLength + minSize);';
export const REPLACEMENT = 's.buffer = new ArrayBuffer(Math.max(srcBuffer.byteLength * 2, srcBuffer.byteLength + minSize));';
const TARGET = `${sep}miniflare${sep}dist${sep}src${sep}index.js`;

/** @type {{ state: 'pending' | 'applied' | 'anchor-not-found' }} */
export const growthPatch = { state: 'pending' };

/** @param {string} source */
export function patchSource(source) {
	const first = source.indexOf(ANCHOR);
	if (first === -1 || source.indexOf(ANCHOR, first + ANCHOR.length) !== -1) return null;
	return source.replace(ANCHOR, REPLACEMENT);
}

const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
	if (growthPatch.state === 'pending' && filename.endsWith(TARGET)) {
		const patched = patchSource(content);
		growthPatch.state = patched === null ? 'anchor-not-found' : 'applied';
		Module.prototype._compile = compile;
		return compile.call(this, patched ?? content, filename);
	}
	return compile.call(this, content, filename);
};
