"""The runner's fix for Miniflare's quadratic config serialisation (workers-sdk#15271), against the pinned Miniflare.

Upstream facts relied on (worker_src/node_modules/miniflare, 4.20260426.0, dist/src/index.js): `serializeConfig`
builds the config with `new Message()`, whose capnp-es `SingleSegmentArena.allocate` grows the arena by
`srcBuffer.byteLength + minSize` and copies it whole (the ANCHOR line); `toArrayBuffer` copies each segment's
used `byteLength` only, so where the arena's spare room lies does not change the message. Node 20 compiles a
CommonJS file reached through import() with `Module.prototype._compile`.
"""

from __future__ import annotations

import json
import subprocess

from orchestrator.core.contract import REPO_ROOT, WORKER_SRC

GROWTH = REPO_ROOT / "orchestrator" / "local_edge" / "capnp_growth.mjs"
MINIFLARE = WORKER_SRC / "node_modules" / "miniflare" / "dist" / "src" / "index.js"


def _node(script: str) -> dict[str, object]:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True, cwd=WORKER_SRC
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_pinned_miniflare_gets_the_fix_and_still_starts() -> None:
    script = f"""
import {{ growthPatch }} from {json.dumps(GROWTH.as_uri())};
import {{ createRequire }} from 'node:module';
import {{ pathToFileURL }} from 'node:url';
const require = createRequire({json.dumps(str(WORKER_SRC / "package.json"))});
const {{ Miniflare }} = await import(pathToFileURL(require.resolve('miniflare')).href);
const workers = Array.from({{ length: 30 }}, (_, i) => ({{
  name: `w${{i}}`, modules: true, routes: [`w${{i}}.test/*`],
  script: `export default {{ fetch() {{ return new Response('w${{i}}' + '${{"x".repeat(20000)}}'.length); }} }}`,
}}));
const mf = new Miniflare({{ workers, cf: false, host: '127.0.0.1', port: 0 }});
await mf.ready;
const body = await (await mf.dispatchFetch('http://w29.test/')).text();
await mf.dispose();
process.stdout.write(JSON.stringify({{ state: growthPatch.state, body }}));
"""
    result = _node(script)
    assert result == {"state": "applied", "body": "w2920000"}


def test_the_anchor_is_in_the_pinned_miniflare_exactly_once() -> None:
    from_js = _node(
        f"import {{ ANCHOR }} from {json.dumps(GROWTH.as_uri())}; process.stdout.write(JSON.stringify({{ ANCHOR }}));"
    )
    assert MINIFLARE.read_text(encoding="utf-8").count(str(from_js["ANCHOR"])) == 1


def test_an_unknown_or_ambiguous_source_is_left_alone() -> None:
    script = f"""
import {{ ANCHOR, REPLACEMENT, patchSource }} from {json.dumps(GROWTH.as_uri())};
process.stdout.write(JSON.stringify({{
  none: patchSource('var x = 1;'),
  twice: patchSource(ANCHOR + ANCHOR),
  once: patchSource('a;' + ANCHOR + 'b;') === 'a;' + REPLACEMENT + 'b;',
}}));
"""
    assert _node(script) == {"none": None, "twice": None, "once": True}
