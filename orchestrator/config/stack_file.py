"""Read and write `Pulumi.<stack>.yaml` the way the Pulumi CLI does, secrets included.

Reading: the `config:` map and `encryptionsalt`, with `secure:` values decrypted wherever they
sit (top level, or nested objects/lists written with `pulumi config set --path`). Writing:
`set_secret`/`set_value` at a key path (`clawdbot:secrets.WEBHOOK_SECRET`, `ns:list[0]`,
`ns:obj["dotted.key"]`), the file replaced atomically (temp file + rename, mode kept) under a
lock on its directory, every other key kept in order. This is how the tools keep secrets off
command lines (`pulumi config set --secret` puts the value on argv).

The YAML dialect follows the CLI's parser (go-yaml v3, YAML 1.2 core) rather than PyYAML's
YAML 1.1: `on`/`yes` and `2024-09-23` stay strings, `012` is 12, and duplicate keys are an
error instead of a silent last-one-wins. Comments are not preserved when a file is rewritten.
"""

from __future__ import annotations

import copy
import fcntl
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.secrets_provider import PassphraseCrypter, new_encryption_salt
from orchestrator.core.errors import ConfigError
from orchestrator.core.masking import SECRET_MASK
from orchestrator.core.names import stack_name_from_path

SECURE = "secure"
PASSPHRASE_PROVIDERS = (None, "", "passphrase")

Segment = str | int


# --- YAML dialect -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars and duplicate keys refused (as go-yaml v3)."""


_REPLACED_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "timestamp")}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_IMPLICIT_12: list[tuple[str, re.Pattern[str], list[str]]] = [
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    ("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    ),
]
for _tag, _regexp, _first in _IMPLICIT_12:
    _Loader.add_implicit_resolver(_tag, _regexp, _first)  # type: ignore[no-untyped-call]


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith(("0x", "0o")):
        return int(text, 0)
    return int(text, 10)  # YAML 1.2: a leading 0 is not octal


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        if not isinstance(key, str | int | float | bool | None):
            continue  # construct_mapping below reports unhashable keys itself
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


class _Dumper(yaml.SafeDumper):
    """Quotes every string that a YAML 1.1 *or* 1.2 reader could take for another type."""


for _tag, _regexp, _first in _IMPLICIT_12:
    _Dumper.add_implicit_resolver(_tag, _regexp, _first)  # type: ignore[no-untyped-call]


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096
    )


# --- key paths --------------------------------------------------------------------------------

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


# --- the document -----------------------------------------------------------------------------


def is_secure(node: object) -> bool:
    """Pulumi's encoding of a secret: an object whose only key is `secure` (a string)."""
    return isinstance(node, dict) and len(node) == 1 and isinstance(node.get(SECURE), str)


class _StackDocument(BaseModel):
    """The keys of a stack file this module relies on; any other key is kept as it is."""

    model_config = ConfigDict(extra="allow")

    encryptionsalt: str | None = None
    secretsprovider: str | None = None
    config: dict[str, Any] | None = None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: stack file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        # The problem description carries a position, never the offending scalar's text.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a YAML mapping at the top level")
    try:
        doc = _StackDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {field}: {first['msg']}") from None
    for key in doc.config or {}:
        if not isinstance(key, str) or ":" not in key:
            raise ConfigError(f"{path}: config key {key!r} must be <namespace>:<name>")
    return raw


def _walk(node: Any, root: str, segments: list[Segment]) -> Iterator[tuple[list[Segment], Any]]:
    """Every secure leaf under `node`, with its path."""
    if is_secure(node):
        yield segments, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _walk(child, root, [*segments, str(key)])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _walk(child, root, [*segments, index])


def _map_secure(node: Any, fn: Callable[[list[Segment], str], Any], segments: list[Segment]) -> Any:
    if is_secure(node):
        return fn(segments, node[SECURE])
    if isinstance(node, dict):
        return {k: _map_secure(v, fn, [*segments, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_secure(v, fn, [*segments, i]) for i, v in enumerate(node)]
    return copy.deepcopy(node)


@dataclass(frozen=True)
class StackFile:
    """One parsed stack config file. Secure values stay encrypted until `decrypted_config`."""

    path: Path
    document: dict[str, Any]

    @property
    def stack(self) -> str:
        return stack_name_from_path(self.path)

    @property
    def encryption_salt(self) -> str | None:
        salt = self.document.get("encryptionsalt")
        return salt if isinstance(salt, str) and salt else None

    @property
    def config(self) -> dict[str, Any]:
        """The raw `config:` map (a copy; secure values as `{"secure": "v1:..."}`)."""
        return copy.deepcopy(self.document.get("config") or {})

    def get(self, key_path: str) -> Any:
        """The raw value at a key path, or None when absent."""
        root, segments = parse_key_path(key_path)
        node: Any = (self.document.get("config") or {}).get(root)
        for seg in segments:
            if isinstance(seg, int):
                node = node[seg] if isinstance(node, list) and seg < len(node) else None
            else:
                node = node.get(seg) if isinstance(node, dict) and not is_secure(node) else None
        return copy.deepcopy(node)

    def secret_key_paths(self) -> list[str]:
        """Key paths of every secure value, in file order."""
        return [
            format_key_path(root, segs)
            for root, value in (self.document.get("config") or {}).items()
            for segs, _ in _walk(value, root, [])
        ]

    def masked_config(self) -> dict[str, Any]:
        """The config with every secret replaced by `[secret]` (for plans and logs)."""
        return {
            root: _map_secure(value, lambda _segs, _ct: SECRET_MASK, [])
            for root, value in (self.document.get("config") or {}).items()
        }

    def crypter(self, passphrase: str) -> PassphraseCrypter:
        """The stack's crypter; raises PassphraseError when the passphrase is wrong."""
        self._require_passphrase_provider()
        salt = self.encryption_salt
        if salt is None:
            raise ConfigError(f"{self.path}: has no encryptionsalt, so it holds no passphrase secrets yet")
        return PassphraseCrypter(passphrase, salt, source=self.path)

    def decrypted_config(self, crypter: PassphraseCrypter) -> dict[str, Any]:
        """The config with every secure value decrypted (keep the result out of logs)."""

        def open_one(root: str) -> Callable[[list[Segment], str], str]:
            return lambda segs, ct: crypter.decrypt(ct, key_path=format_key_path(root, segs))

        return {
            root: _map_secure(value, open_one(root), []) for root, value in (self.document.get("config") or {}).items()
        }

    def _require_passphrase_provider(self) -> None:
        provider = self.document.get("secretsprovider")
        if provider not in PASSPHRASE_PROVIDERS:
            raise ConfigError(
                f"{self.path}: secretsprovider {provider!r} is not the passphrase provider; "
                "only passphrase stacks can be read or written offline"
            )


def load_stack_file(path: str | os.PathLike[str]) -> StackFile:
    file = Path(path)
    return StackFile(path=file, document=_read_document(file))


def read_config(path: str | os.PathLike[str], passphrase: str) -> dict[str, Any]:
    """The decrypted `config:` map of a stack file."""
    stack = load_stack_file(path)
    if not stack.secret_key_paths():
        return stack.config
    return stack.decrypted_config(stack.crypter(passphrase))


# --- writing ----------------------------------------------------------------------------------


def _check_plain_value(value: object, key_path: str, path: Path) -> None:
    if isinstance(value, dict):
        if is_secure(value):
            raise ConfigError(f"{path}: {key_path}: use set_secret to write a secure value")
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{path}: {key_path}: object keys must be strings")
            _check_plain_value(v, key_path, path)
    elif isinstance(value, list):
        for item in value:
            _check_plain_value(item, key_path, path)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ConfigError(f"{path}: {key_path}: {type(value).__name__} is not a config value type")


def _assign(config: dict[str, Any], root: str, segments: list[Segment], value: Any, where: str) -> Any:
    """Put `value` at root+segments, creating objects/lists on the way; returns the old value."""
    if not segments:
        old = config.get(root)
        config[root] = value
        return old
    parent: Any = config
    key: Segment = root
    for seg in segments:
        child = parent[key] if _has(parent, key) else None
        if child is None:
            child = [] if isinstance(seg, int) else {}
            _put(parent, key, child, where)
        elif is_secure(child):
            raise ConfigError(f"{where}: a secret sits on this path; it cannot hold nested values")
        elif isinstance(seg, int) and not isinstance(child, list):
            raise ConfigError(f"{where}: [{seg}] indexes a {type(child).__name__}, not a list")
        elif isinstance(seg, str) and not isinstance(child, dict):
            raise ConfigError(f"{where}: .{seg} reaches into a {type(child).__name__}, not an object")
        parent, key = child, seg
    old = parent[key] if _has(parent, key) else None
    _put(parent, key, value, where)
    return old


def _has(parent: Any, key: Segment) -> bool:
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


def _update(path: str | os.PathLike[str], change: Callable[[Path, dict[str, Any]], None]) -> None:
    """Re-read, change and rewrite a stack file under an exclusive lock on its directory."""
    # Resolve so a symlinked stack file keeps its link and the target is what gets replaced.
    file = Path(path).resolve()
    if not file.is_file():
        raise ConfigError(f"{path}: stack file does not exist")
    # Locking the directory (not the file) because the file's inode changes on every rename;
    # it serialises our writers so parallel updates cannot lose each other's keys.
    dir_fd = os.open(file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        document = _read_document(file)
        change(file, document)
        text = _dump(document)
        # Round-trip check before replacing: never leave a file the next read would reject.
        if yaml.load(text, Loader=_Loader) != document:
            raise ConfigError(f"{path}: refusing to write: the YAML would not read back identically")
        write_atomically(file, text, mode=stat.S_IMODE(os.stat(file).st_mode))
    finally:
        os.close(dir_fd)


def _config_of(document: dict[str, Any]) -> dict[str, Any]:
    config = document.get("config")
    if config is None:
        config = document["config"] = {}
    return config


def set_value(path: str | os.PathLike[str], key_path: str, value: Any) -> None:
    """Write a non-secret value at a key path; refuses to overwrite a secret with plaintext."""
    root, segments = parse_key_path(key_path)

    def change(file: Path, document: dict[str, Any]) -> None:
        where = f"{file}: {key_path}"
        _check_plain_value(value, key_path, file)
        old = _assign(_config_of(document), root, segments, copy.deepcopy(value), where)
        if is_secure(old) or any(True for _ in _walk(old, root, [])):
            raise ConfigError(f"{where}: holds a secret; refusing to replace it with a plain value")

    _update(path, change)


def set_secrets(path: str | os.PathLike[str], values: dict[str, str], passphrase: str) -> None:
    """Encrypt and write several secrets in one atomic rewrite (creates encryptionsalt if absent)."""
    for key_path, plaintext in values.items():
        parse_key_path(key_path)
        if not isinstance(plaintext, str):
            raise ConfigError(f"{path}: {key_path}: a secret value must be a string")
    # Derive the key before taking the lock: PBKDF2 is slow and the crypter cache makes the
    # second derivation under the lock free.
    current = load_stack_file(path)
    current._require_passphrase_provider()
    salt = current.encryption_salt or new_encryption_salt(passphrase)
    PassphraseCrypter(passphrase, salt, source=current.path)

    def change(file: Path, document: dict[str, Any]) -> None:
        stack = StackFile(path=file, document=document)
        stack._require_passphrase_provider()
        if stack.encryption_salt is None:
            # Pulumi writes encryptionsalt as the file's first key.
            items = list(document.items())
            document.clear()
            document.update([("encryptionsalt", salt), *((k, v) for k, v in items if k != "encryptionsalt")])
        crypter = stack.crypter(passphrase)
        config = _config_of(document)
        for key_path, plaintext in values.items():
            root, segments = parse_key_path(key_path)
            _assign(config, root, segments, {SECURE: crypter.encrypt(plaintext)}, f"{file}: {key_path}")

    _update(path, change)


def set_secret(path: str | os.PathLike[str], key_path: str, plaintext: str, passphrase: str) -> None:
    """Encrypt `plaintext` and write it as a `secure:` value at a key path."""
    set_secrets(path, {key_path: plaintext}, passphrase)


def _removal_order(item: tuple[str, tuple[str, list[Segment]]]) -> list[tuple[int, str | int]]:
    root, segments = item[1]
    return [(0, root), *((1, s) if isinstance(s, int) else (0, s) for s in segments)]


def remove_secrets(path: str | os.PathLike[str], values: dict[str, str], salt: str | None = None) -> None:
    """Remove secure values (key path -> the ciphertext expected there) and, if given, the salt.

    Each value and the salt are removed only if the file still holds exactly what the caller judged:
    a value written in the meantime is never dropped (ConfigError: re-run). An object left empty
    by the removal stays, as `pulumi config rm` leaves it.
    """
    paths = {key_path: parse_key_path(key_path) for key_path in values}

    def change(file: Path, document: dict[str, Any]) -> None:
        if salt is not None:
            if document.get("encryptionsalt") != salt:
                raise ConfigError(f"{file}: encryptionsalt changed while it was being adopted; run again")
            del document["encryptionsalt"]
        config = _config_of(document)
        # Deepest list indexes first, so removing one list item cannot shift another's index.
        for key_path, (root, segments) in sorted(paths.items(), key=_removal_order, reverse=True):
            parent: Any = config
            *walk, last = [root, *segments]
            for key in walk:
                parent = parent[key] if _has(parent, key) else None
                if not isinstance(parent, dict | list):
                    raise ConfigError(f"{file}: {key_path}: changed while it was being adopted; run again")
            if not _has(parent, last) or not is_secure(parent[last]) or parent[last][SECURE] != values[key_path]:
                raise ConfigError(f"{file}: {key_path}: changed while it was being adopted; run again")
            del parent[last]

    _update(path, change)
