"""Does a name or a value look like a secret? Heuristics that never echo what they found.

Names are split into words (snake, kebab, camel case) and matched against a word list, so
`STRIPE_KEY` and `apiToken` match while `KEYBOARD` does not. Values are matched against formats
that are unambiguous credentials (PEM private keys, vendor token prefixes, JWTs); entropy is not
used because ids and hashes (zone ids, bundle hashes, config MACs) would be flagged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

DEFAULT_SECRET_WORDS: tuple[str, ...] = (
    "secret",
    "secrets",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "token",
    "apikey",
    "key",
    "privatekey",
    "credential",
    "credentials",
    "auth",
    "bearer",
    "jwt",
    "hmac",
    "signature",
)

_TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Stripe secret key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{10,}")),
    ("a webhook signing secret", re.compile(r"\bwhsec_[0-9A-Za-z+/=]{16,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[0-9A-Za-z]{30,}|github_pat_[0-9A-Za-z_]{30,})")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a JSON Web Token", re.compile(r"\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}")),
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_MAX_DEPTH = 8


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def name_looks_secret(name: str, secret_words: Iterable[str] = DEFAULT_SECRET_WORDS) -> bool:
    vocabulary = {w.lower() for w in secret_words}
    parts = words(name)
    joined = {a + b for a, b in pairwise(parts)}  # API_KEY -> "apikey"
    return bool(vocabulary.intersection(parts) or vocabulary.intersection(joined))


def token_format(text: str) -> str | None:
    """The kind of credential `text` contains, or None."""
    for kind, pattern in _TOKEN_FORMATS:
        if pattern.search(text):
            return kind
    return None


def _maybe_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        return None


def find_secret(value: Any, secret_words: Iterable[str] = DEFAULT_SECRET_WORDS, path: str = "") -> str | None:
    """Why `value` (JSON data, possibly JSON text inside JSON) looks like it holds a secret.

    Returns a reason naming the path and kind - never the value itself.
    """
    words_ = tuple(secret_words)
    return _find(value, words_, path or "value", 0)


def _find(value: Any, secret_words: tuple[str, ...], path: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, str):
        nested = _maybe_json(value)
        if nested is not None:
            return _find(nested, secret_words, path, depth + 1)
        kind = token_format(value)
        return f"{path} contains what looks like {kind}" if kind else None
    if isinstance(value, Mapping):
        for key in value:
            child = value[key]
            child_path = f"{path}.{key}"
            if name_looks_secret(str(key), secret_words) and _is_filled(child):
                return f"{child_path} is named like a secret and holds a plaintext value"
            found = _find(child, secret_words, child_path, depth + 1)
            if found:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index in range(len(value)):
            found = _find(value[index], secret_words, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


def _is_filled(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)
