"""Read and write `Pulumi.<stack>.yaml` the way the Pulumi CLI does, secrets included.

Reading: the `config:` map and `encryptionsalt`, with `secure:` values decrypted wherever they
sit (top level, or nested objects/lists written with `pulumi config set --path`). Writing:
`set_secret`/`set_value` at a key path (`clawdbot:secrets.WEBHOOK_SECRET`, `ns:list[0]`,
`ns:obj["dotted.key"]`), the file replaced atomically (temp file + rename, mode kept) under a
lock on its directory, every other key kept in order. This is how the tools keep secrets off
command lines (`pulumi config set --secret` puts the value on argv).

The file is untrusted input: it is read by `stack_yaml` (bounded, in the CLI's dialect: go-yaml v3,
YAML 1.2 core, duplicate keys refused, scalars the two would read differently refused) and edited
by `stack_roundtrip`, which keeps comments, key order, flow style and quotes: only the lines of the
changed values differ.
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

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml.comments import CommentedMap

from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.secrets_provider import PassphraseCrypter, new_encryption_salt
from orchestrator.config.stack_roundtrip import edit
from orchestrator.config.stack_yaml import MAX_FILE_BYTES, YamlRefused, clip, kind_of, load_plain
from orchestrator.core.errors import ConfigError
from orchestrator.core.masking import SECRET_MASK
from orchestrator.core.names import stack_name_from_path

SECURE = "secure"
PASSPHRASE_PROVIDERS = (None, "", "passphrase")

Segment = str | int


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


def _refusal(path: Path, refused: YamlRefused) -> ConfigError:
    """`<file>:<line>: <key path>: <reason>`, the key path as `pulumi config --path` spells it."""
    where = ""
    if refused.where:
        segments = [clip(s) if isinstance(s, str) else s for s in refused.where]
        if segments[0] == "config" and len(segments) > 1 and isinstance(segments[1], str):
            segments = segments[1:]  # a config key: `clawdbot:tenant.config.ratio`
        where = " " + clip(format_key_path(str(segments[0]), segments[1:]), 160) + ":"
    line = f":{refused.line}" if refused.line else ""
    return ConfigError(f"{path}{line}:{where} {refused.reason}")


def _read_document(path: Path) -> dict[str, Any]:
    try:
        data = _read_bounded(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: stack file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        raw = load_plain(data)
    except YamlRefused as exc:
        raise _refusal(path, exc) from None
    return _check_document(path, raw)


def _read_bounded(path: Path) -> bytes:
    """At most one byte past the limit, so a huge (or endless) file costs no memory to refuse."""
    with path.open("rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _check_document(path: Path, raw: Any) -> dict[str, Any]:
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
        if ":" not in key:
            raise ConfigError(f"{path}: config key {clip(key)!r} must be <namespace>:<name>")
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


def secure_key_paths(root: str, node: Any) -> list[str]:
    """Key paths of every secure value in `node` (the value of config key `root`), in file order."""
    return [format_key_path(root, segs) for segs, _ in _walk(node, root, [])]


def map_secure(node: Any, fn: Callable[[list[Segment], str], Any], segments: list[Segment]) -> Any:
    """`node` with each secure value replaced by fn(its path, its ciphertext); shares nothing with it."""
    if is_secure(node):
        return fn(segments, node[SECURE])
    if isinstance(node, dict):
        return {k: map_secure(v, fn, [*segments, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [map_secure(v, fn, [*segments, i]) for i, v in enumerate(node)]
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
            path
            for root, value in (self.document.get("config") or {}).items()
            for path in secure_key_paths(root, value)
        ]

    def masked_config(self) -> dict[str, Any]:
        """The config with every secret replaced by `[secret]` (for plans and logs)."""
        return {
            root: map_secure(value, lambda _segs, _ct: SECRET_MASK, [])
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
            root: map_secure(value, open_one(root), []) for root, value in (self.document.get("config") or {}).items()
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
        if root not in config:
            config[root] = value
            return None
        return _replace(config, root, value)
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
            raise ConfigError(f"{where}: [{seg}] indexes {kind_of(child)}, not a list")
        elif isinstance(seg, str) and not isinstance(child, dict):
            raise ConfigError(f"{where}: .{seg} reaches into {kind_of(child)}, not an object")
        parent, key = child, seg
    if not _has(parent, key):
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


def _update(path: str | os.PathLike[str], change: Callable[[Path, CommentedMap], None]) -> None:
    """Re-read, change and rewrite a stack file under an exclusive lock on its directory.

    `change` edits the round-trip tree (a dict that remembers comments and styles), so every line
    it does not touch is written back as it was.
    """
    # Resolve so a symlinked stack file keeps its link and the target is what gets replaced.
    file = Path(path).resolve()
    if not file.is_file():
        raise ConfigError(f"{path}: stack file does not exist")
    # Locking the directory (not the file) because the file's inode changes on every rename;
    # it serialises our writers so parallel updates cannot lose each other's keys.
    dir_fd = os.open(file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)

        def checked_change(tree: CommentedMap) -> None:
            _check_document(file, tree)
            change(file, tree)

        try:
            text = edit(_read_bounded(file), checked_change)
        except YamlRefused as exc:
            raise _refusal(file, exc) from None
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

    def change(file: Path, document: CommentedMap) -> None:
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

    def change(file: Path, document: CommentedMap) -> None:
        stack = StackFile(path=file, document=document)
        stack._require_passphrase_provider()
        if stack.encryption_salt is None:
            # Pulumi writes encryptionsalt as the file's first key (an empty one is replaced).
            document.pop("encryptionsalt", None)
            document.insert(0, "encryptionsalt", salt)
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
