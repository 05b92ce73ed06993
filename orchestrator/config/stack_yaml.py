"""Read an untrusted stack file's YAML into plain data, within fixed bounds, as the Pulumi CLI reads it.

A stack file is input from whoever can write to the project directory. Nothing is built before its
size is known, and the document is built from the parser's event stream by one loop that stops at
the first event past a bound: nesting depth, values and characters *after* alias expansion (an
alias bomb is refused while it is read, not when something later expands it), one document, core
tags only, no merge keys, text keys only, no duplicate keys. The events come from libyaml
(ruamel.yaml.clib): the pure-Python scanners are quadratic in flow nesting (20,000 `[` took 98 s
in ruamel's and 30 s in PyYAML's, measured), libyaml's is linear.

Scalars resolve as YAML 1.2 core. The CLI's parser is go-yaml v3, which reads some plain scalars
as other values (`012` is octal 10 there, `1_000` and `0b1` are numbers, `+0x1F` too): such a
scalar is refused as ambiguous rather than guessed, so plan and `pulumi up` never disagree on it.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from ruamel.yaml import events
from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]  # re-exported from ruamel.yaml.clib
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""A tenant's business config is capped at 1 MiB of JSON; 4 MiB of YAML leaves room for layout."""
MAX_DEPTH = 64
"""Nesting of collections, aliases expanded."""
MAX_VALUES = 100_000
"""Scalars and collections, aliases expanded."""
MAX_CHARS = 8 * 1024 * 1024
"""Characters of all scalars, aliases expanded (one long string aliased many times is a bomb too)."""

Segment = str | int
Plain = dict[str, Any] | list[Any] | str | int | float | bool | None

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# go-yaml v3 resolve.go: underscores dropped, then strconv.ParseInt(s, 0, 64) (Go's base prefixes,
# and a bare leading 0 is octal), then ParseUint, then yamlStyleFloat; `.5`-style via ParseFloat.
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|0|[1-9][0-9]*)")
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_GO_TIMESTAMP_START = re.compile(r"[0-9]{4}-")
_INT_RANGE = (-(2**63), 2**64 - 1)
"""int64 and uint64 together: what go-yaml keeps as an integer."""
_MAX_NUMBER_TEXT = 40
"""Longer digit strings are out of every range above (and Python caps int() at 4,300 digits)."""


class YamlRefused(ValueError):
    """The document is refused. `line` is 1-based; `where` is the path to the value at fault.

    The reason never quotes a scalar of the document: it may be a secret typed in the wrong place.
    """

    def __init__(self, reason: str, line: int | None = None, where: tuple[Segment, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.where = where


def _core_scalar(text: str) -> Plain:
    """YAML 1.2 core schema resolution of a plain scalar."""
    if text in _NULL:
        return None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    if len(text) > _MAX_NUMBER_TEXT:
        return text
    if CORE_INT.fullmatch(text):
        return int(text[2:], 16) if text.startswith("0x") else int(text[2:], 8) if text.startswith("0o") else int(text)
    if CORE_FLOAT.fullmatch(text):
        return float(text)
    return text


def _go_scalar(text: str) -> Plain:
    """What go-yaml v3 decodes a plain scalar into, for an interface{} target (resolve.go)."""
    if not text or text[0] not in "+-0123456789." or _INF.fullmatch(text) or _NAN.fullmatch(text):
        return _core_scalar(text)  # the same table of words in both
    if len(text) > _MAX_NUMBER_TEXT:
        return text
    if text[0] == ".":
        return float(text) if _GO_DOT_FLOAT.fullmatch(text) else text
    if _GO_TIMESTAMP_START.match(text):
        return text  # a timestamp is decoded as its text into interface{}; otherwise no number
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain):
        digits = plain.lstrip("+-")
        sign = -1 if plain.startswith("-") else 1
        if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567":
            value = sign * int(digits[1:], 8)
        else:
            value = int(plain, 0)
        if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            return value
    if CORE_FLOAT.fullmatch(plain):
        number = float(plain)
        return number if math.isfinite(number) else text
    return text


def _same(a: Plain, b: Plain) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


_NOT_TEXT_START = frozenset("+-.0123456789")
"""First characters of a plain scalar that YAML 1.2 core or go-yaml may read as a number."""
_WORDS = _NULL | _TRUE | _FALSE


def resolve_plain(text: str) -> Plain:
    """A plain (unquoted, untagged) scalar's value; YamlRefused when the CLI would read another."""
    if text and text[0] not in _NOT_TEXT_START and text not in _WORDS:
        # Most scalars: both resolvers return the text itself (every number, infinity and NaN form
        # starts with a sign, a digit or a dot; the words are null and the booleans).
        return text
    ours = _core_scalar(text)
    if not _same(ours, _go_scalar(text)):
        raise YamlRefused("ambiguous number-like value: quote it if it is text, or write the number plainly")
    if isinstance(ours, int) and not isinstance(ours, bool) and not _INT_RANGE[0] <= ours <= _INT_RANGE[1]:
        raise YamlRefused("integer out of range (64 bits)")
    return ours


def _tagged(tag: str, text: str, plain: bool) -> Plain:
    kind = tag.removeprefix(_CORE)
    if kind == "str":
        return text
    value = resolve_plain(text) if plain else _core_scalar(text)
    wanted = {"int": (int,), "float": (int, float), "bool": (bool,), "null": (type(None),)}[kind]
    if not isinstance(value, wanted) or (kind != "bool" and isinstance(value, bool)):
        raise YamlRefused(f"value is not a valid !!{kind}")
    if kind == "float" and isinstance(value, int | float):
        return float(value)
    return value


def kind_of(value: object) -> str:
    """How a value of the document is called in an error: its YAML kind, never its content."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else f"a {type(value).__name__}"


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class _Open:
    """A collection being built. Its own counts are the builder's totals since it opened (every node
    inside was counted there once, aliases expanded), so nothing is added up per node."""

    __slots__ = ("anchor", "chars_before", "container", "height", "is_list", "key", "values_before")

    def __init__(self, container: dict[str, Any] | list[Any], anchor: str | None, values: int, chars: int) -> None:
        self.container = container
        self.is_list = isinstance(container, list)
        self.anchor = anchor
        self.key: str | None = None
        """Mappings: the key waiting for its value (None: the next node is a key)."""
        self.values_before = values
        self.chars_before = chars
        self.height = 1
        """From the collections and aliases inside; a scalar inside makes it 2 (counted at the end)."""


class _Anchored(NamedTuple):
    """An anchored node with what it counts for once expanded (what an alias of it adds)."""

    value: Any
    values: int
    chars: int
    height: int


class _Builder:
    """Builds the document from events; every bound is checked as each node arrives."""

    def __init__(self) -> None:
        self.open: list[_Open] = []
        self.anchors: dict[str, _Anchored] = {}
        self.unfinished: set[str] = set()
        self.values = 0
        self.chars = 0
        self.root: Plain = None
        self.line = 0

    def refuse(self, reason: str) -> YamlRefused:
        path: list[Segment] = []
        for frame in self.open:
            if frame.is_list:
                path.append(len(frame.container))
            elif frame.key is not None:
                path.append(frame.key)
        return YamlRefused(reason, self.line + 1, tuple(path))

    def _count(self, values: int, chars: int, height: int) -> None:
        self.values += values
        self.chars += chars
        if self.values > MAX_VALUES:
            raise self.refuse(f"more than {MAX_VALUES} values once aliases are expanded")
        if self.chars > MAX_CHARS:
            raise self.refuse(f"more than {MAX_CHARS} characters of text once aliases are expanded")
        if len(self.open) + height > MAX_DEPTH:
            raise self.refuse(f"nested deeper than {MAX_DEPTH} levels")

    def _attach(self, value: Any) -> None:
        if not self.open:
            self.root = value
            return
        frame = self.open[-1]
        if frame.is_list:
            frame.container.append(value)  # type: ignore[union-attr]
        elif frame.key is None:
            self._key(frame, value)
        else:
            frame.container[frame.key] = value  # type: ignore[call-overload]
            frame.key = None

    def _key(self, frame: _Open, key: Any) -> None:
        if isinstance(key, dict | list):
            raise self.refuse("a mapping key must be text, not a collection")
        if not isinstance(key, str):
            raise self.refuse(f"mapping key {clip(repr(key))} must be text (quote it)")
        if key == "<<":
            raise self.refuse("merge keys (<<) are not supported in stack files: write the keys out")
        frame.key = key
        # Every earlier key of this mapping already holds its value: the container is the key set.
        if key in frame.container:
            raise self.refuse("duplicate key")

    def scalar(self, event: events.ScalarEvent) -> None:
        text: str = event.value
        self._count(1, len(text), 1)
        tag = event.tag
        try:
            if tag is None and event.style in (None, ""):
                if text and text[0] not in _NOT_TEXT_START and text not in _WORDS:
                    value: Plain = text  # `resolve_plain`'s first line, inlined: most scalars are text
                else:
                    value = resolve_plain(text)
            elif tag is None or tag == "!":
                value = text
            elif tag in _SCALAR_TAGS:
                value = _tagged(tag, text, event.style in (None, ""))
            else:
                raise YamlRefused(f"tag {clip(tag)!r} is not allowed in a stack file")
        except YamlRefused as exc:
            raise self.refuse(exc.reason) from None
        if type(value) is float and not math.isfinite(value):
            raise self.refuse(f"{text} is not a JSON number (JSON has no NaN or infinity)")
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchored(value, 1, len(text), 1)
        self._attach(value)

    def start(self, event: events.CollectionStartEvent, container: dict[str, Any] | list[Any]) -> None:
        kind = "map" if isinstance(container, dict) else "seq"
        if event.tag is not None and event.tag not in ("!", f"{_CORE}{kind}"):
            raise self.refuse(f"tag {clip(event.tag)!r} is not allowed in a stack file")
        parent = self.open[-1] if self.open else None
        if parent is not None and not parent.is_list and parent.key is None:
            raise self.refuse("a mapping key must be text, not a collection")
        values, chars = self.values, self.chars
        self._count(1, 0, 1)
        if event.anchor is not None:
            self.unfinished.add(event.anchor)
        self.open.append(_Open(container, event.anchor, values, chars))

    def end(self) -> None:
        frame = self.open.pop()
        height = max(frame.height, 2) if frame.container else frame.height
        if self.open:
            parent = self.open[-1]
            parent.height = max(parent.height, height + 1)
        if frame.anchor is not None:
            self.unfinished.discard(frame.anchor)
            values, chars = self.values - frame.values_before, self.chars - frame.chars_before
            self.anchors[frame.anchor] = _Anchored(frame.container, values, chars, height)
        self._attach(frame.container)

    def alias(self, event: events.AliasEvent) -> None:
        if event.anchor in self.unfinished:
            raise self.refuse("an alias refers to a collection that contains it")
        node = self.anchors.get(event.anchor)
        if node is None:
            raise self.refuse(f"alias *{clip(event.anchor)} has no anchor before it")
        self._count(node.values, node.chars, node.height)
        if self.open:
            parent = self.open[-1]
            parent.height = max(parent.height, node.height + 1)
        self._attach(node.value)


def load_plain(data: bytes) -> Plain:
    """The single document of `data` as plain data, or YamlRefused (never another exception)."""
    if len(data) > MAX_FILE_BYTES:
        raise YamlRefused(f"is {len(data)} bytes; a stack file may hold at most {MAX_FILE_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlRefused(f"is not UTF-8 text (byte {exc.start})") from None
    builder = _Builder()
    documents = 0
    parser = CParser(text)
    # By exact class: libyaml's parser makes instances of these very classes (none subclasses another
    # of them), and one lookup per event is cheaper than a chain of isinstance checks.
    scalar, start, end, alias = builder.scalar, builder.start, builder.end, builder.alias
    try:
        while parser.check_event():
            event = parser.get_event()
            mark = event.start_mark
            if mark is not None:
                builder.line = mark.line
            kind = type(event)
            if kind is events.ScalarEvent:
                scalar(event)
            elif kind is events.MappingStartEvent:
                start(event, {})
            elif kind is events.SequenceStartEvent:
                start(event, [])
            elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
                end()
            elif kind is events.AliasEvent:
                alias(event)
            elif kind is events.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlRefused("holds more than one YAML document", builder.line + 1)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        # The problem names the construct at fault, never the offending text.
        raise YamlRefused(
            f"not valid YAML: {exc.problem or type(exc).__name__}", mark.line + 1 if mark else None
        ) from None
    except ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlRefused(f"not valid YAML: {exc.reason}", line) from None
    except YAMLError as exc:
        raise YamlRefused(f"not valid YAML ({type(exc).__name__})") from None
    finally:
        parser.dispose()
    return builder.root
