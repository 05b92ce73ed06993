"""The stack-file reader on untrusted input: bounded before anything is built, the CLI's dialect."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from orchestrator.config import stack_yaml as sy
from orchestrator.config.stack_yaml import YamlRefused, load_plain


def _refused(text: str | bytes) -> YamlRefused:
    with pytest.raises(YamlRefused) as caught:
        load_plain(text.encode() if isinstance(text, str) else text)
    return caught.value


def _value_of_k(text: str) -> object:
    document = load_plain(f"k: {text}\n".encode())
    assert isinstance(document, dict)
    return document["k"]


def _bomb(levels: int, width: int = 10, leaf: str = "lol") -> str:
    lines = [f"a0: &a0 [{', '.join([leaf] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


# (case id, document, what the one-line reason says). Each is a way to spend time or memory.
HOSTILE: list[tuple[str, str | bytes, str]] = [
    ("billion-laughs", _bomb(9), "values once aliases are expanded"),
    ("wide-bomb", _bomb(3, width=100), "values once aliases are expanded"),
    (
        "bomb-of-maps",
        "a0: &a0 {k: v}\n"
        + "".join(f"a{i}: &a{i} {{{', '.join(f'k{j}: *a{i - 1}' for j in range(10))}}}\n" for i in range(1, 10)),
        "values once aliases are expanded",
    ),
    ("bomb-in-keys", _bomb(3) + "? *a3\n: x\n", "mapping key must be text"),
    ("anchored-complex-key", "k: &k [a]\nm: {*k : 1}\n", "mapping key must be text"),
    ("complex-key", "? {a: 1}\n: b\n", "mapping key must be text"),
    ("long-text-bomb", "a: &a '" + "x" * 100_000 + "'\nb: [" + ", ".join(["*a"] * 100) + "]\n", "characters of text"),
    ("merge-key", "b: &b {x: 1}\nc:\n  <<: *b\n", "merge keys (<<)"),
    ("merge-key-list", "b: &b {x: 1}\nc: {<<: [*b, *b]}\n", "merge keys (<<)"),
    ("recursive-seq", "a: &a [1, *a]\n", "contains it"),
    ("recursive-map", "a: &a {b: {c: *a}}\n", "contains it"),
    ("undefined-alias", "a: *nowhere\n", "has no anchor before it"),
    ("deep-flow-seq", "a: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested deeper than 64"),
    ("deep-flow-seq-unclosed", "a: " + "[" * 20_000 + "\n", "nested deeper than 64"),
    ("deep-flow-map", "a: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n", "nested deeper than 64"),
    ("deep-block-seq", "".join("  " * i + "-\n" for i in range(300)), "nested deeper than 64"),
    ("deep-block-map", "".join("  " * i + f"k{i}:\n" for i in range(300)), "nested deeper than 64"),
    (
        "deep-via-aliases",
        "".join(f"a{i}: &a{i} {'[' * 30}{f'*a{i - 1}' if i else 'x'}{']' * 30}\n" for i in range(5)),
        "nested deeper than 64",
    ),
    ("many-values", "a: [" + ", ".join("1" for _ in range(sy.MAX_VALUES + 1)) + "]\n", "values once aliases"),
    ("huge-document", "a: '" + "x" * sy.MAX_FILE_BYTES + "'\n", "a stack file may hold at most"),
    ("many-documents", "a: 1\n---\n" * 100_000, "more than one YAML document"),
    ("python-object", "a: !!python/object/apply:os.system ['true']\n", "is not allowed"),
    ("python-name", "a: !!python/name:os.system ''\n", "is not allowed"),
    ("python-module", "a: !!python/module:os {}\n", "is not allowed"),
    ("local-tag", "a: !Ref x\n", "is not allowed"),
    ("verbatim-tag", "a: !<tag:example.com,2000:x> y\n", "is not allowed"),
    ("binary", "a: !!binary aGk=\n", "is not allowed"),
    ("timestamp-tag", "a: !!timestamp 2024-01-01\n", "is not allowed"),
    ("set", "a: !!set {x, y}\n", "is not allowed"),
    ("omap", "a: !!omap [x: 1]\n", "is not allowed"),
    ("tagged-seq-as-map", "a: !!map [1]\n", "is not allowed"),
    ("duplicate-key", "a: 1\nb: 2\na: 3\n", "duplicate key"),
    ("duplicate-via-quotes", "a: 1\n'a': 2\n", "duplicate key"),
    ("integer-key", "1: a\n", "must be text"),
    ("null-key", "~: a\n", "must be text"),
    ("bool-key", "true: a\n", "must be text"),
    ("not-utf8", b"a: \xff\xfe\n", "is not UTF-8"),
    ("control-character", "a: \x07\n", "control characters"),
    ("unclosed-flow", "a: [1, 2\n", "not valid YAML"),
    ("tab-indentation", "a:\n\tb: 1\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "reason"), [(t, r) for _, t, r in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_hostile_documents_are_refused_fast_in_bounded_memory(text: str | bytes, reason: str) -> None:
    tracemalloc.start()
    started = time.process_time()
    try:
        refused = _refused(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason in refused.reason, refused.reason
    assert "\n" not in refused.reason
    # Bounds by construction, checked loosely: nothing near the gigabytes an expansion would take.
    assert peak < 64 * 1024 * 1024 + 3 * len(text), peak
    assert time.process_time() - started < 30


def test_errors_say_where_line_and_key_path() -> None:
    refused = _refused("config:\n  ns:key:\n    list: [1, 2, .nan]\n")
    assert (refused.line, refused.where) == (3, ("config", "ns:key", "list", 2))
    assert refused.reason == ".nan is not a JSON number (JSON has no NaN or infinity)"
    duplicate = _refused("config:\n  a:b: 1\n  a:b: 2\n")
    assert (duplicate.line, duplicate.where, duplicate.reason) == (3, ("config", "a:b"), "duplicate key")


@pytest.mark.parametrize("text", [".inf", "-.inf", "+.INF", ".NaN", "!!float .nan", "1e999"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    assert _refused(f"a: {text}\n").where == ("a",)


def test_reasons_never_quote_the_documents_values() -> None:
    canary = "0123_canary_secret"
    for text in (f"a: {canary}_1\n", f"a: !!int {canary}\n", f"a: [{canary}\n"):
        try:
            load_plain(text.encode())
        except YamlRefused as exc:
            assert canary not in exc.reason
    assert load_plain(f"a: {canary}_1\n".encode()) == {"a": f"{canary}_1"}  # not number-like: text


# go-yaml v3 (the Pulumi CLI's parser) resolve.go, for an interface{} target: the words table
# (true/True/TRUE, null/~/"", .inf/.nan forms), `strings.Replace(in, "_", "", -1)` then
# strconv.ParseInt(plain, 0, 64) (Go base prefixes; a bare leading 0 is octal: "Octals from the 1.1
# spec, spelled as 0777, are still decoded by default in v3"), ParseUint, yamlStyleFloat, 0b/0o;
# timestamps decode into interface{} as their text (decode.go). github.com/go-yaml/yaml, branch v3.
DIALECT: list[tuple[str, object]] = [
    ("on", "on"), ("yes", "yes"), ("No", "No"), ("y", "y"),  # YAML 1.1 booleans: text in 1.2 and go-yaml
    ("true", True), ("True", True), ("FALSE", False), ("tRUE", "tRUE"),
    ("~", None), ("null", None), ("Null", None), ("", None),
    ("2024-09-23", "2024-09-23"), ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("1:20", "1:20"), ("1.2.3", "1.2.3"), ("v1:abc", "v1:abc"), ("=", "="), ("0x", "0x"),
    ("0", 0), ("-0", 0), ("+12", 12), ("2024", 2024), ("0x1f", 31), ("0o17", 15), ("00", 0),
    ("9223372036854775807", 2**63 - 1), ("18446744073709551615", 2**64 - 1),
    ("1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("-.5", -0.5), ("1e3", 1000.0), ("012.5", 12.5),
]  # fmt: skip
AMBIGUOUS = ["012", "-012", "08", "0777", "1_000", "0b101", "-0b1", "+0x1F", "0X1F", "0O17", "18446744073709551616"]


@pytest.mark.parametrize(("text", "value"), DIALECT, ids=[t or "empty" for t, _ in DIALECT])
def test_plain_scalars_read_as_the_cli_reads_them(text: str, value: object) -> None:
    got = _value_of_k(text)
    assert type(got) is type(value) and got == value


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_scalars_yaml_12_and_go_yaml_read_differently_are_refused(text: str) -> None:
    refused = _refused(f"k: {text}\n")
    assert "ambiguous number-like value: quote it if it is text" in refused.reason
    assert load_plain(f"k: '{text}'\n".encode()) == {"k": text}  # quoted, it is text everywhere


@pytest.mark.parametrize(
    ("text", "value"),
    [("!!str 012", "012"), ("!!int '7'", 7), ("!!float 3", 3.0), ("!!bool true", True), ("!!null ''", None),
     ("! 12", "12"), ("'12'", "12"), ('"true"', "true"), ("|\n  a\n", "a\n")],
)  # fmt: skip
def test_core_tags_and_quotes(text: str, value: object) -> None:
    got = _value_of_k(text)
    assert type(got) is type(value) and got == value


@pytest.mark.parametrize("text", ["!!int 1.5", "!!bool yes", "!!int x", "!!float x", "!!null 0"])
def test_a_core_tag_must_fit_its_value(text: str) -> None:
    assert "is not a valid !!" in _refused(f"k: {text}\n").reason


def test_aliases_within_bounds_share_one_value() -> None:
    document = load_plain(b"base: &b {x: [1, 2]}\ncopy: *b\nname: &n acme\nkeyed: {*n : 1}\n")
    assert document == {"base": {"x": [1, 2]}, "copy": {"x": [1, 2]}, "name": "acme", "keyed": {"acme": 1}}


def test_bounds_hold_just_below_them() -> None:
    deep = "a: " + "[" * (sy.MAX_DEPTH - 1) + "]" * (sy.MAX_DEPTH - 1) + "\n"
    document = load_plain(deep.encode())
    assert isinstance(document, dict)
    node: object = document["a"]
    for _ in range(sy.MAX_DEPTH - 2):
        assert isinstance(node, list)
        node = node[0]
    assert node == []
    wide = "a: [" + ", ".join("1" for _ in range(sy.MAX_VALUES - 3)) + "]\n"
    assert load_plain(wide.encode()) == {"a": [1] * (sy.MAX_VALUES - 3)}


def test_empty_and_scalar_documents() -> None:
    assert load_plain(b"") is None
    assert load_plain(b"# only a comment\n") is None
    assert load_plain(b"just text\n") == "just text"
    assert load_plain(b"1.5\n") == 1.5


def test_the_linear_libyaml_scanner_is_in_use() -> None:
    # The pure-Python scanners are quadratic in flow nesting; without ruamel.yaml.clib the import
    # of CParser fails, loudly, rather than falling back to them.
    assert vars(sy)["CParser"].__module__ == "ruamel.yaml.clib._ruamel_yaml"


def _values_at(padding: int) -> bytes:
    """A document of 7 + 999 + 98 * 1000 + `padding` values once its aliases are expanded."""
    anchored = "[" + ", ".join(["1"] * 999) + "]"
    return f"a: &x {anchored}\nb: [{', '.join(['*x'] * 98)}]\nc: [{', '.join(['1'] * padding)}]\n".encode()


def test_aliases_count_what_they_expand_to_exactly_at_each_bound() -> None:
    # Each collection's counts are the builder's totals since it opened: held here to the value.
    assert isinstance(load_plain(_values_at(sy.MAX_VALUES - 99_006)), dict)
    assert "more than 100000 values" in _refused(_values_at(sy.MAX_VALUES - 99_006 + 1)).reason
    # An aliased collection 31 levels high (30 lists and a scalar) under the top mapping and d lists.
    nested = "[" * 30 + "1" + "]" * 30

    def at_depth(d: int) -> bytes:
        return f"a: &x {nested}\nb: {'[' * d}*x{']' * d}\n".encode()

    assert isinstance(load_plain(at_depth(sy.MAX_DEPTH - 32)), dict)
    assert _refused(at_depth(sy.MAX_DEPTH - 31)).reason == f"nested deeper than {sy.MAX_DEPTH} levels"
    # Characters: one anchored text of 1 Mi characters aliased up to the bound, and one past it.
    text = "x" * (1024 * 1024)

    def aliased(times: int, padding: int) -> bytes:
        return f"a: &t '{text}'\nb: [{', '.join(['*t'] * times)}]\nc: '{'k' * padding}'\n".encode()

    chars_so_far = len("abc") + len(text) * 7  # the keys, the anchored text and six aliases of it
    assert isinstance(load_plain(aliased(6, sy.MAX_CHARS - chars_so_far)), dict)
    assert "characters of text" in _refused(aliased(6, sy.MAX_CHARS - chars_so_far + 1)).reason


def test_a_refusal_names_the_key_path_into_aliased_and_nested_collections() -> None:
    refused = _refused(b"a: &x {k: [1, 2]}\nb:\n  - *x\n  - {k: 1, k: 2}\n")
    assert (refused.line, refused.where, refused.reason) == (4, ("b", 1, "k"), "duplicate key")
