"""Config key paths as `pulumi config --path` spells them, and the edits of a config tree at one.

`ns:key.a[0]["b.c"]` names a value inside the `config:` map of a stack file. This module parses
and formats those paths, finds the secure leaves of a tree (Pulumi's `{secure: <ciphertext>}`),
and assigns or removes a value at a path, creating objects and lists on the way, editing
round-trip nodes in place where that keeps their comments. `orchestrator.config.stack_file` reads
and writes the files with these.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.config.stack_yaml import Segment, kind_of
from orchestrator.core.errors import ConfigError

SECURE = "secure"


_PLAIN_SEGMENT = re.compile(r"[^.\[\]\"]+")


def parse_key_path(key_path: str) -> tuple[str, list[Segment]]:
    """`ns:key.a[0]["b.c"]` -> ("ns:key", ["a", 0, "b.c"]) (pulumi config --path syntax)."""
    pos = 0

    def fail(reason: str) -> ConfigError:
        return ConfigError(f"key path {key_path!r}: {reason}")

    first = _PLAIN_SEGMENT.match(key_path)
    if not first:
        raise fail("must start with a config key such as clawdbot:tenant")
    root, pos = first.group(0), first.end()
    namespace, _, name = root.partition(":")
    if not namespace or not name or ":" in name:
        raise fail(f"config key {root!r} must be <namespace>:<name>, e.g. clawdbot:{root}")
    segments: list[Segment] = []
    while pos < len(key_path):
        if key_path.startswith(".", pos):
            match = _PLAIN_SEGMENT.match(key_path, pos + 1)
            if not match:
                raise fail(f"empty or invalid segment at offset {pos + 1}")
            segments.append(match.group(0))
            pos = match.end()
        elif key_path.startswith('["', pos):
            end = key_path.find('"]', pos + 2)
            if end < 0:
                raise fail(f'unterminated ["..."] at offset {pos}')
            segments.append(key_path[pos + 2 : end])
            pos = end + 2
        elif key_path.startswith("[", pos):
            end = key_path.find("]", pos)
            index = key_path[pos + 1 : end] if end > 0 else ""
            if not index.isdigit() or not index.isascii():
                raise fail(f"list index at offset {pos} must be a non-negative integer")
            segments.append(int(index))
            pos = end + 1
        else:
            raise fail(f"unexpected character at offset {pos}")
    return root, segments


def format_key_path(root: str, segments: list[Segment]) -> str:
    out = root
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _PLAIN_SEGMENT.fullmatch(seg):
            out += f".{seg}"
        else:
            out += f'["{seg}"]'
    return out


def is_secure(node: object) -> bool:
    """Pulumi's encoding of a secret: an object whose only key is `secure` (a string)."""
    return isinstance(node, dict) and len(node) == 1 and isinstance(node.get(SECURE), str)


def walk_secure(node: Any, root: str, segments: list[Segment]) -> Iterator[tuple[list[Segment], Any]]:
    """Every secure leaf under `node`, with its path."""
    if is_secure(node):
        yield segments, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from walk_secure(child, root, [*segments, str(key)])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from walk_secure(child, root, [*segments, index])


def secure_key_paths(root: str, node: Any) -> list[str]:
    """Key paths of every secure value in `node` (the value of config key `root`), in file order."""
    return [format_key_path(root, segs) for segs, _ in walk_secure(node, root, [])]


def map_secure(node: Any, fn: Callable[[list[Segment], str], Any], segments: list[Segment]) -> Any:
    """`node` with each secure value replaced by fn(its path, its ciphertext); shares nothing with it."""
    if is_secure(node):
        return fn(segments, node[SECURE])
    if isinstance(node, dict):
        return {k: map_secure(v, fn, [*segments, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [map_secure(v, fn, [*segments, i]) for i, v in enumerate(node)]
    return copy.deepcopy(node)


def check_plain_value(value: object, key_path: str, path: Path) -> None:
    if isinstance(value, dict):
        if is_secure(value):
            raise ConfigError(f"{path}: {key_path}: use set_secret to write a secure value")
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{path}: {key_path}: object keys must be strings")
            check_plain_value(v, key_path, path)
    elif isinstance(value, list):
        for item in value:
            check_plain_value(item, key_path, path)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ConfigError(f"{path}: {key_path}: {type(value).__name__} is not a config value type")


def assign(config: dict[str, Any], root: str, segments: list[Segment], value: Any, where: str) -> Any:
    """Put `value` at root+segments, creating objects/lists on the way; returns the old value."""
    if not segments:
        if root not in config:
            config[root] = value
            return None
        return _replace(config, root, value)
    parent: Any = config
    key: Segment = root
    for seg in segments:
        child = parent[key] if has(parent, key) else None
        if child is None:
            child = [] if isinstance(seg, int) else {}
            _put(parent, key, child, where)
        elif is_secure(child):
            raise ConfigError(f"{where}: a secret sits on this path; it cannot hold nested values")
        elif isinstance(seg, int) and not isinstance(child, list):
            raise ConfigError(f"{where}: [{seg}] indexes {kind_of(child)}, not a list")
        elif isinstance(seg, str) and not isinstance(child, dict):
            raise ConfigError(f"{where}: .{seg} reaches into {kind_of(child)}, not an object")
        parent, key = child, seg
    if not has(parent, key):
        _put(parent, key, value, where)
        return None
    return _replace(parent, key, value)


def _replace(parent: Any, key: Segment, value: Any) -> Any:
    """Replace a value, editing the round-trip node in place where that keeps its comments and
    style (a secret's ciphertext, a list's items); returns a copy of what was there."""
    old = parent[key]
    if is_secure(old) and is_secure(value):
        previous = dict(old)
        old[SECURE] = value[SECURE]
        return previous
    if isinstance(old, list) and isinstance(value, list):
        previous_items = list(old)
        old[:] = value
        return previous_items
    parent[key] = value
    return old


def has(parent: Any, key: Segment) -> bool:
    if isinstance(parent, list):
        return isinstance(key, int) and key < len(parent)
    return bool(key in parent)


def _put(parent: Any, key: Segment, value: Any, where: str) -> None:
    if isinstance(parent, list) and isinstance(key, int):
        if key > len(parent):
            raise ConfigError(f"{where}: index {key} is past the end of a list of {len(parent)}")
        if key == len(parent):
            parent.append(value)
        else:
            parent[key] = value
    else:
        parent[key] = value


def removal_order(item: tuple[str, tuple[str, list[Segment]]]) -> list[tuple[int, str | int]]:
    root, segments = item[1]
    return [(0, root), *((1, s) if isinstance(s, int) else (0, s) for s in segments)]
