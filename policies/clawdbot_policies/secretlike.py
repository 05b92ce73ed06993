"""Does a name or a value look like a secret? Heuristics that never echo what they found.

Names are split into words (snake, kebab, camel case) and matched against a word list, so
`STRIPE_KEY` and `apiToken` match while `KEYBOARD` does not. Values are matched against formats
that are unambiguous credentials (PEM private keys, vendor token prefixes, JWTs).

Inside a JSON document (a tenant's business `config`, a json binding) a field's name alone is not
enough: ordinary settings such as `cache_key`, `auth_mode` or `signature_header` carry a secret
word too. There a field is flagged when
- its value has a known credential format (whatever the field is called);
- its name *denotes* a credential (the last word is one: `api_token`, `webhook_secret`,
  `privateKey`) and it holds a value; or
- its last word is an ambiguous secret word (`cache_key`, `stripe_key`: `key`, `auth`, `hmac`,
  `signature`) and the value looks like a credential: a long, high-entropy token.
A secret word that only qualifies another (`token_ttl`, `auth_mode`, `signature_header`) makes
no difference. Entropy is only ever consulted under such a name: ids and hashes elsewhere (zone
ids, bundle hashes, config MACs) are high-entropy too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
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

AMBIGUOUS_SECRET_WORDS = frozenset({"key", "auth", "hmac", "signature"})
"""Secret words that name ordinary settings as often as credentials (`cache_key`, `auth_mode`)."""
_TRANSPARENT_WORDS = frozenset({"value", "raw", "b64", "base64", "hex", "str", "string", "text", "plain"})
"""Trailing words that do not change what a field is (`webhook_secret_value` is a secret)."""

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_MAX_DEPTH = 8
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_.~-]+")
_TOKEN_SEPARATORS = re.compile(r"[-_.]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORDLIKE = re.compile(r"[A-Za-z][a-z]*[0-9]*|[0-9]+")
MIN_TOKEN_LENGTH = 20
MIN_TOKEN_BITS_PER_CHAR = 3.0
"""Random base64 runs at ~4.5 bits a character and random hex at ~3.5-3.9; repetitive strings stay lower."""


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def name_looks_secret(name: str, secret_words: Iterable[str] = DEFAULT_SECRET_WORDS) -> bool:
    vocabulary = {w.lower() for w in secret_words}
    parts = words(name)
    joined = {a + b for a, b in pairwise(parts)}  # API_KEY -> "apikey"
    return bool(vocabulary.intersection(parts) or vocabulary.intersection(joined))


def _name_role(name: str, vocabulary: frozenset[str]) -> str | None:
    """What a field's name says: `credential` (`api_token`), `ambiguous` (`cache_key`) or nothing.

    Only the last word counts (after trailing `value`, `b64`, digits...): it says what the field is.
    """
    parts = words(name)
    while len(parts) > 1 and (parts[-1] in _TRANSPARENT_WORDS or parts[-1].isdigit()):
        parts.pop()
    if not parts:
        return None
    heads = ([parts[-2] + parts[-1]] if len(parts) > 1 else []) + [parts[-1]]  # api_key: apikey, not key
    head = next((h for h in heads if h in vocabulary), None)
    if head is None:
        # The secret word only qualifies another (`token_ttl`, `auth_mode`, `signature_header`).
        return None
    return "ambiguous" if head in AMBIGUOUS_SECRET_WORDS else "credential"


def _bits_per_char(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_like_token(text: str) -> bool:
    """A long, random-looking token (an API key or signing secret without a known prefix)."""
    value = text.strip()
    if len(value) < MIN_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(value) or _UUID.fullmatch(value):
        return False  # a UUID is an id (idempotency keys, client ids), not a credential format
    segments = [part for part in _TOKEN_SEPARATORS.split(value) if part]
    if len(segments) > 1 and all(_WORDLIKE.fullmatch(part) for part in segments):
        return False  # a slug of words and numbers, e.g. tenant-acme-cache-v1-2024
    # Random tokens mix letters and digits (a 32-character one lacks either with odds under 1e-3);
    # CamelCase or snake_case words do not.
    if not (any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)):
        return False
    return _bits_per_char(value) >= MIN_TOKEN_BITS_PER_CHAR


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


def find_secret(
    value: Any,
    secret_words: Iterable[str] = DEFAULT_SECRET_WORDS,
    path: str = "",
    allowed_names: Iterable[str] = (),
) -> str | None:
    """Why `value` (JSON data, possibly JSON text inside JSON) looks like it holds a secret.

    Returns a reason naming the path and kind - never the value itself. Fields named in
    `allowed_names` are not judged by their name (a known credential format is still reported).
    """
    vocabulary = frozenset(w.lower() for w in secret_words)
    return _find(value, vocabulary, frozenset(allowed_names), path or "value", 0)


def _find(value: Any, vocabulary: frozenset[str], allowed: frozenset[str], path: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, str):
        nested = _maybe_json(value)
        if nested is not None:
            return _find(nested, vocabulary, allowed, path, depth + 1)
        kind = token_format(value)
        return f"{path} contains what looks like {kind}" if kind else None
    if isinstance(value, Mapping):
        for key in value:
            child = value[key]
            child_path = f"{path}.{key}"
            role = None if str(key) in allowed else _name_role(str(key), vocabulary)
            if role == "credential" and _is_filled(child):
                return f"{child_path} is named like a secret and holds a plaintext value"
            if role == "ambiguous" and isinstance(child, str) and looks_like_token(child):
                return f"{child_path} is named like a secret and holds what looks like a credential token"
            found = _find(child, vocabulary, allowed, child_path, depth + 1)
            if found:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index in range(len(value)):
            found = _find(value[index], vocabulary, allowed, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


def _is_filled(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)
