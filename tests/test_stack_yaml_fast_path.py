"""The plain-scalar fast path of the bounded stack-file reader decides exactly as the full resolvers.

`resolve_plain` returns most scalars as text without running both resolvers (YAML 1.2 core and
go-yaml v3). That is only sound if every scalar it skips is text for both: checked here against the
full path over every short string of the characters that matter, and the known tricky forms.
"""

from __future__ import annotations

import itertools
import math

import pytest

from orchestrator.config.stack_yaml import YamlRefused, _core_scalar, _go_scalar, _same, resolve_plain

ALPHABET = "0179+-._xXoObBeEaAfFnNtTlLsSuUiI:~ "
TRICKY = [
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    "true",
    "True",
    "TRUE",
    "tRUE",
    "false",
    "no",
    "yes",
    "on",
    "off",
    ".inf",
    "-.Inf",
    "+.INF",
    ".nan",
    ".NaN",
    "nan",
    "inf",
    "Infinity",
    "0x1F",
    "+0x1F",
    "0o17",
    "012",
    "0b1",
    "1_000",
    "1e3",
    "1E-3",
    ".5",
    "5.",
    "2026-03-15",
    "2026-03-15T10:00:00Z",
    "12:30",
    "0",
    "-0",
    "+1",
    "9" * 25,
    "9" * 41,
    "1" * 20,
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "hello",
    "shop.acme.example.com/*",
    "*/15 * * * *",
    "v1:abc==",
    "é",
    "0é",
    "x1",
    "_1",
    "=1",
]


def full_path(text: str) -> object:
    """What resolve_plain decided before the fast path: both resolvers, compared."""
    ours = _core_scalar(text)
    if not _same(ours, _go_scalar(text)):
        return "refused"
    if isinstance(ours, int) and not isinstance(ours, bool) and not -(2**63) <= ours <= 2**64 - 1:
        return "refused"
    return ours


def decided(text: str) -> object:
    try:
        return resolve_plain(text)
    except YamlRefused:
        return "refused"


def same_outcome(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def strings() -> list[str]:
    short = ["".join(chars) for n in range(1, 4) for chars in itertools.product(ALPHABET, repeat=n)]
    return TRICKY + short


@pytest.mark.parametrize("chunk", range(8))
def test_fast_path_decides_as_both_resolvers(chunk: int) -> None:
    corpus = strings()[chunk::8]
    wrong = [t for t in corpus if not same_outcome(decided(t), full_path(t))]
    assert wrong == [], wrong[:20]
