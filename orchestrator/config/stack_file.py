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
changed values differ. The key-path grammar and the edits of the tree at a path are
`orchestrator.config.key_paths`.
"""

from __future__ import annotations

import copy
import fcntl
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml.comments import CommentedMap

from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.key_paths import (
    SECURE,
    assign,
    check_plain_value,
    format_key_path,
    has,
    is_secure,
    map_secure,
    parse_key_path,
    removal_order,
    secure_key_paths,
    walk_secure,
)
from orchestrator.config.secrets_provider import PassphraseCrypter, new_encryption_salt
from orchestrator.config.stack_roundtrip import edit
from orchestrator.config.stack_yaml import MAX_FILE_BYTES, Segment, YamlRefused, clip, load_plain
from orchestrator.core.errors import ConfigError
from orchestrator.core.masking import SECRET_MASK
from orchestrator.core.names import stack_name_from_path

PASSPHRASE_PROVIDERS = (None, "", "passphrase")


# --- the document -----------------------------------------------------------------------------


class _StackDocument(BaseModel):
    """The keys of a stack file this module relies on; any other key is kept as it is."""

    model_config = ConfigDict(extra="allow")

    encryptionsalt: str | None = None
    secretsprovider: str | None = None
    config: dict[str, Any] | None = None


def yaml_refusal(path: Path, refused: YamlRefused) -> ConfigError:
    """The error for a stack file whose YAML `stack_yaml` or `stack_roundtrip` refused:
    `<file>:<line>: <key path>: <reason>`, the key path as `pulumi config --path` spells it."""
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
    return _check_document(path, read_plain(path, data))


def read_plain(source: str | os.PathLike[str], data: bytes) -> Any:
    """YAML or JSON `data` read as strictly as a stack file (one bounded document, plain data), or a
    ConfigError `<source>:<line>: <key path>: <reason>`. For any operator file of config (`--from-file`)."""
    try:
        return load_plain(data)
    except YamlRefused as exc:
        raise yaml_refusal(Path(source), exc) from None


def _read_bounded(path: Path) -> bytes:
    """At most one byte past the limit, so a huge (or endless) file costs no memory to refuse.

    In chunks: one `read(limit)` allocates the whole limit first (4 MiB: an mmap, a shrink and an
    munmap for every 1 KiB stack file, a fifth of reading one), and a buffered file object adds
    fstat, ioctl and lseek calls a fleet run makes a thousand times.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        left = MAX_FILE_BYTES + 1
        while left:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


_CHUNK = 64 * 1024
"""Below malloc's mmap threshold (128 KiB), and larger than any usual stack file."""


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


def load_stack_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw `config:` map of a stack file read for this call (secure values as `{"secure": "v1:..."}`).

    Not a copy, unlike `StackFile.config`: the document was parsed for this call and nothing else
    holds it, so the caller owns it (a fleet run reads a thousand of these; the copy cost a sixth
    of the read).
    """
    config: dict[str, Any] = _read_document(Path(path)).get("config") or {}
    return config


def read_config(path: str | os.PathLike[str], passphrase: str) -> dict[str, Any]:
    """The decrypted `config:` map of a stack file."""
    stack = load_stack_file(path)
    if not stack.secret_key_paths():
        return stack.config
    return stack.decrypted_config(stack.crypter(passphrase))


# --- writing ----------------------------------------------------------------------------------


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
            raise yaml_refusal(file, exc) from None
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
        check_plain_value(value, key_path, file)
        old = assign(_config_of(document), root, segments, copy.deepcopy(value), where)
        if is_secure(old) or any(True for _ in walk_secure(old, root, [])):
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
            assign(config, root, segments, {SECURE: crypter.encrypt(plaintext)}, f"{file}: {key_path}")

    _update(path, change)


def set_secret(path: str | os.PathLike[str], key_path: str, plaintext: str, passphrase: str) -> None:
    """Encrypt `plaintext` and write it as a `secure:` value at a key path."""
    set_secrets(path, {key_path: plaintext}, passphrase)


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
        for key_path, (root, segments) in sorted(paths.items(), key=removal_order, reverse=True):
            parent: Any = config
            *walk, last = [root, *segments]
            for key in walk:
                parent = parent[key] if has(parent, key) else None
                if not isinstance(parent, dict | list):
                    raise ConfigError(f"{file}: {key_path}: changed while it was being adopted; run again")
            if not has(parent, last) or not is_secure(parent[last]) or parent[last][SECURE] != values[key_path]:
                raise ConfigError(f"{file}: {key_path}: changed while it was being adopted; run again")
            del parent[last]

    _update(path, change)
