"""Reading engine properties the way the analyzer hands them over.

In `pulumi preview` the analyzer wraps props in proxies (a Mapping and a Sequence, never dict or
list) that raise `UnknownValueError` when a value that is not known yet is read; the analyzer
then skips the policy for that resource with an advisory note. These helpers never swallow that
error, and they only read a value when asked for it, so a rule reads what it needs and nothing
more (see `has_key`). Numbers arrive as floats (protobuf Struct), hence `as_int`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def has_key(props: Mapping[str, Any], key: str) -> bool:
    """Whether `key` is set, without reading its (possibly unknown) value.

    `key in props` would read the value through the proxy's `__getitem__` and raise in preview.
    """
    return any(k == key for k in props)


def get_str(props: Mapping[str, Any], key: str) -> str | None:
    if not has_key(props, key):
        return None
    value = props[key]
    return value if isinstance(value, str) else None


def get_map(props: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if not has_key(props, key):
        return {}
    value = props[key]
    return value if isinstance(value, Mapping) else {}


def get_list(props: Mapping[str, Any], key: str) -> Sequence[Any]:
    if not has_key(props, key):
        return ()
    value = props[key]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def maps(items: Sequence[Any]) -> Iterator[Mapping[str, Any]]:
    """The mapping items of a list prop (bindings, schedules), skipping anything malformed."""
    for index in range(len(items)):
        item = items[index]
        if isinstance(item, Mapping):
            yield item


def as_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(value)
