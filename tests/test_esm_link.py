"""The linker (orchestrator/core/esm_link.py): one module that behaves as the modules did, or an error.

The proof of "behaves as the modules did" is node itself: each fixture runs once as separate ES
modules and once linked, and both must print the same thing (values, evaluation order, globals
seen). Node implements the semantics being preserved: module evaluation order is the post-order
of a depth-first walk of the imports in source order (ECMA-262 §16.2.1.5.3, InnerModuleEvaluation),
and each module has its own scope. The Worker's own tests then run the linked Worker in workerd
(worker_src/tools/bundle.mjs).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.core import render
from orchestrator.core.esm_link import PREFIX, LinkError, link
from orchestrator.core.js_tokens import JsSyntaxError, tokenize

# Text that only a real tokenizer keeps apart from code: `import`/`export` in strings, templates,
# comments and regular expressions; `}` and `/` inside literals; templates nested in templates.
TRICKY = {
    "strings.js": r"""// import { nothing } from './nowhere.js';
/* export const COMMENTED = 1; */
export const S = 'export const X = 1; import { y } from "./b.js";';
export const T = `import { z } from './c.js'; ${'}'} ${`in ${'ner'}`} ${{ a: '{' }.a}`;
export const R = /[/}]+\/export/g.source;
const half = 10;
export const D = half / 2 / 1;
export function keyword() {
	return typeof /x/ === 'object' ? { import: 1, export: 2 }.export : 0;
}
""",
    "order.js": """import { S } from './strings.js';
globalThis.seen = [...(globalThis.seen ?? []), 'order'];
export const O = S.length;
""",
    "shadow.js": """globalThis.seen = [...(globalThis.seen ?? []), 'shadow'];
// A module's own `crypto` must not capture another module's global `crypto`.
const crypto = 'shadowed';
export const mine = crypto;
""",
    "main.js": """import { D, R, S, T, keyword as kw } from './strings.js';
import { mine } from './shadow.js';
import { O } from './order.js';
globalThis.seen = [...(globalThis.seen ?? []), 'main'];
export default { D, R, S, T, k: kw(), O, mine, globalCrypto: typeof crypto, seen: globalThis.seen };
""",
}


def _run_node(directory: Path, main: str) -> object:
    (directory / "package.json").write_text('{"type": "module"}')
    script = f"import m from './{main}'; console.log(JSON.stringify(m.default ?? m));"
    (directory / "run.js").write_text(script.replace("m.default ?? m", "m"))
    out = subprocess.run(["node", "run.js"], cwd=directory, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _as_modules_and_linked(tmp_path: Path, modules: dict[str, str], main: str) -> tuple[object, object, str]:
    separate, linked = tmp_path / "separate", tmp_path / "linked"
    separate.mkdir()
    linked.mkdir()
    for name, text in modules.items():
        (separate / name).write_text(text)
    bundle = link(modules, main).text()
    (linked / "bundle.js").write_text(bundle)
    return _run_node(separate, main), _run_node(linked, "bundle.js"), bundle


def test_linked_module_behaves_as_the_modules(tmp_path: Path) -> None:
    separate, linked, bundle = _as_modules_and_linked(tmp_path, TRICKY, "main.js")
    assert linked == separate
    assert isinstance(linked, dict)
    assert linked["seen"] == ["shadow", "order", "main"]  # strings.js has no side effect; order follows imports
    assert linked["mine"] == "shadowed" and linked["globalCrypto"] == "object"
    assert linked["S"].startswith("export const X") and "import { z }" in linked["T"]
    # Only the linker's own import/export remain: the module's one default export.
    assert re.findall(r"^(?:import|export)\b.*$", bundle, re.M) == [f"export default {PREFIX}3.default;"]


def test_same_input_same_bytes_and_order_independent_of_the_mapping() -> None:
    first = link(TRICKY, "main.js").text()
    assert link(TRICKY, "main.js").text() == first
    assert link(dict(reversed(list(TRICKY.items()))), "main.js").text() == first


def test_the_worker_links_and_node_evaluates_it(tmp_path: Path) -> None:
    """The real Worker, as render_bundle links it: it parses, evaluates and exports its handlers."""
    from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
    from orchestrator.core.contract import REPO_ROOT

    bundle = render.render_bundle(load_tenant_spec(REPO_ROOT, "prod.acme"), load_platform_spec(REPO_ROOT))
    assert [m.name for m in bundle.modules] == ["index.js"]
    (tmp_path / "index.js").write_text(bundle.modules[0].content)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    check = "import w from './index.js'; console.log(Object.keys(w).sort().join(','), typeof w.fetch);"
    (tmp_path / "run.js").write_text(check)
    out = subprocess.run(["node", "run.js"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "fetch,scheduled function"
    every_source = {m.name for m in render._static_modules()} | {render.EMBEDDED_MODULE}
    linked = {m.name for m in render._linked().modules}
    assert linked == every_source  # every hand-written module is reachable from index.js, none dropped


REFUSED = {
    "default import": ({"m.js": "import x from './a.js';\nexport default x;", "a.js": ""}, "m.js:1: only `import {"),
    "namespace import": ({"m.js": "import * as a from './a.js';", "a.js": ""}, "m.js:1: only `import {"),
    "side-effect import": ({"m.js": "import './a.js';", "a.js": ""}, "m.js:1: only `import {"),
    "dynamic import": ({"m.js": "export default { f() { return import('./a.js'); } };"}, "m.js:1: dynamic import()"),
    "import.meta": ({"m.js": "export default import.meta.url;"}, "m.js:1: dynamic import() and import.meta"),
    "import after code": ({"m.js": "const a = 1;\nimport { b } from './b.js';", "b.js": ""}, "m.js:2: imports must"),
    "export let": ({"m.js": "export let a = 1;"}, "m.js:1: `export let` is not supported"),
    "export var": ({"m.js": "export var a = 1;"}, "`export var` is not supported"),
    "export list": ({"m.js": "const a = 1;\nexport { a };"}, "m.js:2: `export {` is not supported"),
    "re-export": ({"m.js": "export * from './a.js';", "a.js": ""}, "`export *` is not supported"),
    "two declarators": ({"m.js": "export const a = 1, b = 2;"}, "one name per `export const`"),
    "destructuring export": ({"m.js": "export const { a } = {};"}, "one plain name"),
    "default elsewhere": ({"m.js": "import { a } from './a.js';", "a.js": "export default 1;"}, "a.js:1: `export d"),
    "default function": ({"m.js": "export default function f() {}"}, "takes an expression here"),
    "bare specifier": ({"m.js": "import { env } from 'cloudflare:workers';"}, "only relative imports"),
    "missing module": ({"m.js": "import { a } from './gone.js';"}, "which is not one of the modules"),
    "missing export": ({"m.js": "import { nope } from './a.js';", "a.js": "export const a = 1;"}, "does not export"),
    "cycle": (
        {"m.js": "import { a } from './a.js';", "a.js": "import { m } from './m.js';\nexport const a = 1;"},
        "import cycle: m.js -> a.js -> m.js",
    ),
    "reserved name": ({"m.js": f"const {PREFIX}0 = 1;"}, "which the linker reserves"),
    "twice exported": ({"m.js": "export const a = 1;\nexport function a() {}"}, "m.js:2: 'a' is exported twice"),
    "nested export": ({"m.js": "{\nexport const a = 1;\n}"}, "m.js:2: `export` outside a top-level"),
    "unterminated string": ({"m.js": "const a = 'open;\n"}, "m.js:1: unterminated string literal"),
    "unterminated template": ({"m.js": "const a = `open ${1}"}, "unterminated template literal"),
    "unterminated regex": ({"m.js": "const a = /open\n/;"}, "m.js:1: unterminated regular expression"),
    "unterminated comment": ({"m.js": "/* open"}, "m.js:1: unterminated comment"),
    "unbalanced": ({"m.js": "function f() { return (1; }"}, "unbalanced '}'"),
    "unclosed": ({"m.js": "function f() {"}, "unclosed '{'"),
    "main missing": ({"a.js": ""}, "the main module 'm.js' is not one of the modules"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_outside_the_subset_is_an_error_naming_module_and_line(case: str) -> None:
    modules, words = REFUSED[case]
    with pytest.raises(LinkError) as caught:
        link(modules, "m.js")
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("source", "kinds"),
    [
        ("a / b / c", ["name", "punct", "name", "punct", "name"]),
        ("x = /b/ / 2", ["name", "punct", "regex", "punct", "number"]),
        ("f(a) / 2", ["name", "punct", "name", "punct", "punct", "number"]),
        ("return /re/g", ["name", "regex"]),
        ("i++ / 2", ["name", "punct", "punct", "number"]),
        ("`a${/re/}b`", ["template", "regex", "template"]),
        ("a /= 2", ["name", "punct", "number"]),
    ],
)
def test_slash_is_read_as_division_or_a_regular_expression_by_what_precedes_it(source: str, kinds: list[str]) -> None:
    assert [t.kind for t in tokenize(source)] == kinds


def test_depth_counts_template_substitutions() -> None:
    tokens = tokenize("x = `${ { a: `${b}` } }`; export")
    assert tokens[-1].text == "export" and tokens[-1].depth == 0
    inner = next(t for t in tokens if t.text == "a")
    assert inner.depth == 2  # `${` and `{`
    with pytest.raises(JsSyntaxError):
        tokenize("`${ { }`")
