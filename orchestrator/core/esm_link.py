"""Link the Worker's ES modules into ONE module: what Pulumi uploads and the local edge runs.

Pure Python on purpose: a deploy host has Python and the package, not npm (scripts/setup-vps.sh
installs Node only for the local edge), and the bundle is rendered wherever `pulumi up` runs. So
this links our own modules, in the subset they are written in, and refuses anything else:

- `import { a, b as c } from './x.js';` at the top of a module, before any other statement;
- `export const NAME = …;`, `export function`, `export async function`, `export class`;
- `export default <expression>;` in the main module only;
- no cycles, no bare specifiers (`node:…`, `cloudflare:…`), no dynamic `import()`, no
  `import.meta`, no `export let|var` (a live binding the importer would see as a snapshot).

Each module becomes a function scope (`const $clawdbot$N = (() => { …; return { exports }; })();`)
in the order ECMAScript evaluates modules (post-order of a depth-first walk of the imports, in
source order, from the main module), and an import becomes `const { a, b: c } = $clawdbot$N;`.
So every module keeps its own scope: no renaming, and no name of one module can capture a free
name of another (a module-level `fetch` or `crypto` stays private). The main module's default
export is the bundle's. Same input, same bytes: the output depends on nothing but the modules.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.js_tokens import JsSyntaxError, Token, tokenize

PREFIX = "$clawdbot$"
"""Names the linker adds; refused in sources, so nothing of ours can clash with them."""
_DEFAULT = f"{PREFIX}default"
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class LinkError(ValueError):
    """The modules are outside the subset the linker reads; the message names the module and line."""


@dataclass(frozen=True)
class _Import:
    specifier: str
    names: tuple[tuple[str, str], ...]
    """(exported name, local name)."""
    start: int
    end: int


@dataclass(frozen=True)
class _Module:
    name: str
    source: str
    imports: tuple[_Import, ...]
    exports: tuple[str, ...]
    edits: tuple[tuple[int, int, str], ...]
    """(start, end, replacement) spans of `source`, in order, besides the imports."""


@dataclass(frozen=True)
class LinkedModule:
    """One module's part of the bundle: its text as rewritten, and the lines around it."""

    name: str
    head: str
    body: str
    tail: str


@dataclass(frozen=True)
class Linked:
    """The bundle, module by module in evaluation order, plus its last lines (the exports)."""

    modules: tuple[LinkedModule, ...]
    footer: str

    def text(self, body_of: Callable[[LinkedModule], str] | None = None) -> str:
        """The bundle's text; `body_of` may substitute a module's body (a rendered template)."""
        names = ", ".join(m.name for m in self.modules)
        parts = [f"// One ES module, linked by orchestrator/core/esm_link.py from: {names}\n"]
        for module in self.modules:
            parts += [module.head, body_of(module) if body_of else module.body, module.tail]
        parts.append(self.footer)
        return "".join(parts)


def _line(source: str, at: int) -> int:
    return source.count("\n", 0, at) + 1


def _parse_import(tokens: list[Token], i: int, where: str, source: str) -> tuple[_Import, int]:
    """`import { a, b as c } from './x.js';` starting at tokens[i]; the import and the index after it."""

    def fail(message: str) -> LinkError:
        return LinkError(f"{where}:{_line(source, tokens[i].start)}: {message}")

    j = i + 1
    if j >= len(tokens) or tokens[j].text != "{":
        raise fail("only `import { name, ... } from './module.js';` is supported (no default or namespace import)")
    names: list[tuple[str, str]] = []
    j += 1
    while j < len(tokens) and tokens[j].text != "}":
        if tokens[j].kind != "name":
            raise fail(f"unexpected {tokens[j].text!r} in an import list")
        exported = local = tokens[j].text
        j += 1
        if j < len(tokens) and tokens[j].text == "as":
            if j + 1 >= len(tokens) or tokens[j + 1].kind != "name":
                raise fail("`as` must be followed by a name")
            local = tokens[j + 1].text
            j += 2
        names.append((exported, local))
        if j < len(tokens) and tokens[j].text == ",":
            j += 1
        elif j < len(tokens) and tokens[j].text != "}":
            raise fail(f"unexpected {tokens[j].text!r} in an import list")
    rest = tokens[j + 1 : j + 4]
    if len(rest) < 3 or rest[0].text != "from" or rest[1].kind != "string" or rest[2].text != ";":
        raise fail("an import must read `import { ... } from '<specifier>';`")
    specifier = rest[1].text[1:-1]
    if "\\" in specifier:
        raise fail(f"escapes in a specifier are not supported: {rest[1].text}")
    return _Import(specifier, tuple(names), tokens[i].start, rest[2].end), j + 4


def _export(tokens: list[Token], i: int, where: str, source: str, is_main: bool) -> tuple[str | None, str, int]:
    """What `export` at tokens[i] declares (None: `export default`), the text replacing the keyword(s),
    and the index of the first token kept."""

    def fail(message: str) -> LinkError:
        return LinkError(f"{where}:{_line(source, tokens[i].start)}: {message}")

    following = [t.text for t in tokens[i + 1 : i + 4]]
    kind = following[0] if following else ""
    if kind == "default":
        if not is_main:
            raise fail("`export default` is supported in the main module only")
        if following[1:2] in (["function"], ["class"], ["async"]):
            raise fail("`export default` takes an expression here (declare the function or class, then export it)")
        return None, f"const {_DEFAULT} =", i + 2
    if kind in ("let", "var"):
        raise fail(f"`export {kind}` is not supported (importers would not see reassignments); use `export const`")
    if kind in ("function", "class", "const"):
        offset = 2 if following[1:2] != ["*"] else 3
    elif kind == "async" and following[1:2] == ["function"]:
        offset = 3 if following[2:3] != ["*"] else 4
    else:
        raise fail(f"`export {kind}` is not supported; export a const, function or class declaration")
    name = tokens[i + offset] if i + offset < len(tokens) else None
    if name is None or name.kind != "name" or not _IDENT.match(name.text):
        raise fail("an export must declare one plain name (no destructuring)")
    if kind == "const":
        _refuse_several_declarators(tokens, i + offset, fail)
    return name.text, "", i + 1


def _refuse_several_declarators(tokens: list[Token], j: int, fail: Callable[[str], LinkError]) -> None:
    """`export const a = 1, b = 2;` would export `b` unseen: a comma at the statement's own depth."""
    depth = tokens[j].depth
    for token in tokens[j:]:
        if token.depth == depth and token.text == ";":
            return
        if token.depth == depth and token.text == ",":
            raise fail("one name per `export const` (the linker would miss the others)")
    raise fail("an `export const` must end with `;`")


def _read(name: str, source: str, is_main: bool) -> _Module:
    where = name
    if PREFIX in source:
        raise LinkError(f"{where}: contains {PREFIX!r}, which the linker reserves for its own names")
    try:
        tokens = tokenize(source, where)
    except JsSyntaxError as err:
        raise LinkError(str(err)) from None
    imports: list[_Import] = []
    exports: list[str] = []
    edits: list[tuple[int, int, str]] = []
    body_started = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        before = tokens[i - 1].text if i else ""
        after = tokens[i + 1].text if i + 1 < len(tokens) else ""
        keyword = token.kind == "name" and token.text in ("import", "export") and before not in (".", "?.")
        if not keyword or after == ":":  # a property name (`x.import`, `{ export: 1 }`)
            body_started = body_started or token.depth == 0
            i += 1
            continue
        line = _line(source, token.start)
        if token.text == "import":
            if after in ("(", "."):
                raise LinkError(f"{where}:{line}: dynamic import() and import.meta are not supported")
            if token.depth != 0 or before not in ("", ";", "}"):
                raise LinkError(f"{where}:{line}: `import` outside a top-level import declaration")
            if body_started:
                raise LinkError(f"{where}:{line}: imports must come before any other statement")
            parsed, i = _parse_import(tokens, i, where, source)
            imports.append(parsed)
            continue
        if token.depth != 0 or before not in ("", ";", "}"):
            raise LinkError(f"{where}:{line}: `export` outside a top-level declaration")
        exported, replacement, kept = _export(tokens, i, where, source, is_main)
        if exported is None:
            exports.append("default")
        elif exported in exports:
            raise LinkError(f"{where}:{line}: {exported!r} is exported twice")
        else:
            exports.append(exported)
        edits.append((token.start, tokens[kept].start, replacement + (" " if replacement else "")))
        body_started = True
        i = kept
    return _Module(name, source, tuple(imports), tuple(exports), tuple(edits))


def _resolve(importer: str, specifier: str, modules: Mapping[str, str]) -> str:
    if not specifier.startswith(("./", "../")):
        raise LinkError(f"{importer}: imports {specifier!r}; only relative imports of our own modules are linked")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))
    if target not in modules:
        raise LinkError(f"{importer}: imports {specifier!r}, which is not one of the modules ({target})")
    return target


def _order(main: str, modules: Mapping[str, str]) -> list[_Module]:
    """Every module reachable from `main`, in ECMAScript's evaluation order; refuses cycles."""
    read: dict[str, _Module] = {}
    done: list[_Module] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise LinkError(f"import cycle: {cycle}")
        if name in read:
            return
        module = _read(name, modules[name], name == main)
        visiting.append(name)
        for imported in module.imports:
            visit(_resolve(name, imported.specifier, modules))
        visiting.pop()
        read[name] = module
        done.append(module)

    visit(main)
    return done


def link(modules: Mapping[str, str], main: str) -> Linked:
    """Link `modules` (name -> source; names are paths like `index.js`) from `main`."""
    if main not in modules:
        raise LinkError(f"the main module {main!r} is not one of the modules")
    ordered = _order(main, modules)
    variable = {m.name: f"{PREFIX}{index}" for index, m in enumerate(ordered)}
    by_name = {m.name: m for m in ordered}
    linked: list[LinkedModule] = []
    for module in ordered:
        spans: list[tuple[int, int, str]] = list(module.edits)
        for imported in module.imports:
            target = by_name[_resolve(module.name, imported.specifier, modules)]
            for exported, _local in imported.names:
                if exported not in target.exports or exported == "default":
                    raise LinkError(f"{module.name}: imports {exported!r}, which {target.name} does not export")
            names = ", ".join(e if e == local else f"{e}: {local}" for e, local in imported.names)
            spans.append((imported.start, imported.end, f"const {{ {names} }} = {variable[target.name]};"))
        body = _apply(module.source, sorted(spans))
        returned = ", ".join(f"default: {_DEFAULT}" if e == "default" else e for e in module.exports)
        head = f"// {module.name}\nconst {variable[module.name]} = (() => {{\n"
        tail = f"{'' if body.endswith(chr(10)) else chr(10)}return {{ {returned} }};\n}})();\n"
        linked.append(LinkedModule(module.name, head, body, tail))
    main_exports = by_name[main].exports
    footer = "".join(
        f"export default {variable[main]}.default;\n"
        if e == "default"
        else f"export const {e} = {variable[main]}.{e};\n"
        for e in main_exports
    )
    return Linked(tuple(linked), footer)


def _apply(source: str, spans: list[tuple[int, int, str]]) -> str:
    out, at = [], 0
    for start, end, replacement in spans:
        out += [source[at:start], replacement]
        at = end
    out.append(source[at:])
    return "".join(out)


def _main(argv: list[str]) -> int:
    """`python -m orchestrator.core.esm_link SRC_DIR < {"main": NAME, "modules": {NAME: TEXT}}`: the node tools' entry.

    Links every `*.js` of SRC_DIR plus the modules given on stdin (the embedded module node renders
    for a test, a test's own main module), from `main`, and prints the bundle.
    """
    if len(argv) != 1:
        print(_main.__doc__, file=sys.stderr)
        return 2
    request = json.loads(sys.stdin.read())
    modules = {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(argv[0]).glob("*.js"))}
    modules.update(request.get("modules", {}))
    try:
        sys.stdout.write(link(modules, str(request["main"])).text())
    except LinkError as err:
        print(f"esm_link: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
