"""Edit a stack file in place, keeping what a person wrote: comments, key order, flow style, quotes.

ruamel.yaml's round-trip mode holds the document as a tree of CommentedMap/CommentedSeq that
remembers comments and styles; an edit changes values in that tree and the tree is emitted again.
Two guards make that safe on a file nobody vetted: the text is first read by
`stack_yaml.load_plain` (its bounds and dialect), and the round-trip tree must equal that plain
reading before the edit and after writing, so a file the two readers see differently is refused
rather than rewritten. The round-trip reader resolves plain scalars by the same YAML 1.2 core rules
(no timestamps, no `=`, no merge keys), so an untouched `2024-09-23` or `on` is emitted as it was.

Known losses (ruamel's, on values we do not touch): `True`/`TRUE` are written `true`, `~` and an
empty value are written `null`, a signed `+12` is written `12`; mixed indentation becomes the
file's first one.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver

from orchestrator.config.stack_yaml import CORE_FLOAT, CORE_INT, YamlRefused, load_plain, resolve_plain

_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    ("bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    ("int", re.compile(rf"^(?:{CORE_INT.pattern})$"), "-+0123456789"),
    ("float", re.compile(rf"^(?:{CORE_FLOAT.pattern}|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), "-+0123456789."),
    ("null", _NULL, "~nN"),
]


class _CoreResolver(VersionedResolver):
    """Plain scalars resolve as YAML 1.2 core, exactly as `stack_yaml` resolves them."""

    _table: dict[str, list[tuple[str, re.Pattern[str]]]] | None = None

    @property
    def versioned_resolver(self) -> Any:
        if self._table is None:
            table: dict[str, list[tuple[str, re.Pattern[str]]]] = {"": [(_CORE + "null", _NULL)]}
            for kind, regexp, first in _RESOLVERS:
                for char in first:
                    table.setdefault(char, []).append((_CORE + kind, regexp))
            self._table = table
        return self._table


class _Representer(RoundTripRepresenter):
    """New text is quoted whenever, plain, it would read back as something else (or be refused)."""

    def represent_plain_text(self, data: str) -> Any:
        try:
            reads_back = resolve_plain(data) == data
        except YamlRefused:
            reads_back = False
        return self.represent_scalar(_CORE + "str", data, style=None if reads_back else "'")

    def represent_null(self, _data: None) -> Any:
        return self.represent_scalar(_CORE + "null", "null")


_Representer.add_representer(str, _Representer.represent_plain_text)
_Representer.add_representer(type(None), _Representer.represent_null)


def _guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, offset of `-` in a block sequence), from the first of each in the file."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    mapping: int | None = None
    offset: int | None = None
    for above, below in itertools.pairwise(lines):
        if not above.rstrip().endswith(":"):
            continue
        outer, inner = len(above) - len(above.lstrip()), len(below) - len(below.lstrip())
        if below.lstrip().startswith("- ") and offset is None:
            offset = inner - outer
        elif inner > outer and mapping is None:
            mapping = inner - outer
    return mapping or 2, max(offset or 0, 0)


def _round_trip_yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.Resolver = _CoreResolver
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never fold a long ciphertext
    mapping, offset = _guess_indent(text)
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yaml


def to_plain(node: Any) -> Any:
    """The round-trip tree as plain data, to compare with what `load_plain` returns."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if node is None or isinstance(node, bool):
        return node
    for kind in (str, int, float):  # ruamel's ScalarInt, ScalarFloat, quoted strings subclass these
        if isinstance(node, kind):
            return kind(node)
    raise YamlRefused(f"a {type(node).__name__} value cannot be rewritten safely")


def edit(data: bytes, change: Callable[[CommentedMap], None]) -> str:
    """The text of `data` after `change` edited its round-trip tree; YamlRefused when unsafe.

    `change` may raise to abort; nothing is written by this module.
    """
    plain = load_plain(data)
    text = data.decode("utf-8")
    yaml = _round_trip_yaml(text)
    try:
        tree = yaml.load(text)
    except YAMLError as exc:
        raise YamlRefused(f"cannot be edited in place ({type(exc).__name__})") from None
    if tree is None and plain is None:
        tree, plain = CommentedMap(), {}
    if not isinstance(tree, CommentedMap) or to_plain(tree) != plain:
        raise YamlRefused("reads differently to the round-trip editor; refusing to rewrite it (edit it by hand)")
    change(tree)
    out = io.StringIO()
    yaml.dump(tree, out)
    result = out.getvalue()
    if load_plain(result.encode("utf-8")) != to_plain(tree):
        raise YamlRefused("refusing to write: the YAML would not read back identically")
    return result
