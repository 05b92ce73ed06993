"""Backups against moto's S3 server over real HTTP on 127.0.0.1 (boto3, a loopback endpoint)."""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backup_fixtures import PASS, Clock, repo
from botocore.exceptions import EndpointConnectionError
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from orchestrator.backup import crypto as backup_crypto
from orchestrator.backup import repository, snapshot
from orchestrator.backup.crypto import MANIFEST_MAGIC, read_manifest_header
from orchestrator.backup.errors import BackupError, WrongPassphraseError
from orchestrator.backup.repository import Retention
from orchestrator.backup.snapshot import Source
from orchestrator.backup.store import S3Store


@pytest.fixture
def tree(tmp_path: Path) -> list[Source]:
    state = tmp_path / "src" / "state"
    (state / ".pulumi" / "stacks" / "clawdbot").mkdir(parents=True)
    state.chmod(0o700)
    (state / ".pulumi" / "meta.yaml").write_text("version: 1\n")
    stack = state / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"
    stack.write_bytes(os.urandom(5000))  # several 1000-byte chunks, not aligned
    stack.chmod(0o600)
    (state / ".pulumi" / "empty").write_bytes(b"")
    tool = state / "hook.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o750)
    project = tmp_path / "src" / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clawdbot\n")
    (project / "Pulumi.prod.acme.yaml").write_text("config: {}\n")
    (project / "__main__.py").write_text("not backed up\n")
    return [Source("state", state), Source("config", project, ("Pulumi.yaml", "Pulumi.*.yaml"))]


def snapshot_of(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """path -> (mode, bytes or None for a directory) for everything under root."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        out[str(path.relative_to(root))] = (mode, None if path.is_dir() else path.read_bytes())
    return out


def expected(sources: list[Source]) -> dict[str, tuple[int, bytes | None]]:
    state, config = sources
    out: dict[str, tuple[int, bytes | None]] = {"state": (stat.S_IMODE(state.root.stat().st_mode), None)}
    out.update({f"state/{k}": v for k, v in snapshot_of(state.root).items()})
    out["config"] = (stat.S_IMODE(config.root.stat().st_mode), None)
    for name in ("Pulumi.yaml", "Pulumi.prod.acme.yaml"):
        path = config.root / name
        out[f"config/{name}"] = (stat.S_IMODE(path.stat().st_mode), path.read_bytes())
    return out


def keys(store: S3Store) -> list[str]:
    return sorted(k for k, _ in store.list(""))


def fail_on(store: S3Store, operation: str, after: int) -> list[int]:
    """Make the (after+1)-th call of `operation` fail like a dropped connection."""
    calls = [0]

    def hook(**_: Any) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1/injected")

    store.client.meta.events.register(f"before-call.s3.{operation}", hook)
    return calls


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip_is_byte_identical_with_modes(store: S3Store, tree: list[Source], tmp_path: Path) -> None:
    manifest = repo(store).create(tree)
    assert len(manifest.chunks) == 6  # 5000 random bytes + small files over 1000-byte chunks
    dest = tmp_path / "restored"
    repo(store).restore(manifest.backup_id, dest)
    assert snapshot_of(dest) == expected(tree)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert "config/__main__.py" not in snapshot_of(dest)


def test_restore_into_existing_empty_directory(store: S3Store, tree: list[Source], tmp_path: Path) -> None:
    manifest = repo(store).create(tree)
    dest = tmp_path / "empty"
    dest.mkdir()
    repo(store).restore(manifest.backup_id, dest)
    assert snapshot_of(dest) == expected(tree)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clawdbot-restore-")] == []


def test_restore_refuses_a_non_empty_directory(store: S3Store, tree: list[Source], tmp_path: Path) -> None:
    manifest = repo(store).create(tree)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match=f"{dest} is not an empty directory"):
        repo(store).restore(manifest.backup_id, dest)
    assert snapshot_of(dest) == {"keep.txt": (0o644 & ~_umask(), b"mine")}


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_list_and_verify_a_complete_backup(store: S3Store, tree: list[Source]) -> None:
    manifest = repo(store).create(tree)
    [info] = repo(store).list()
    assert (info.backup_id, info.status, info.files) == (manifest.backup_id, "complete", 6)
    small = ("version: 1\n", "#!/bin/sh\n", "name: clawdbot\n", "config: {}\n")
    assert info.total_size == 5000 + sum(len(text) for text in small)
    assert repo(store).verify(manifest.backup_id).backup_id == manifest.backup_id


def test_escrow_is_kept_apart_from_state_backups(store: S3Store, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "passphrase").write_bytes(b"state-passphrase\n")
    (home / "passphrase").chmod(0o600)
    escrow = repo(store, kind="escrow").create([Source("escrow", home, ("passphrase",))])
    assert repo(store).list() == []
    assert [i.backup_id for i in repo(store, kind="escrow").list()] == [escrow.backup_id]
    repo(store, kind="escrow").restore(escrow.backup_id, tmp_path / "out")
    assert (tmp_path / "out" / "escrow" / "passphrase").read_bytes() == b"state-passphrase\n"
    assert stat.S_IMODE((tmp_path / "out" / "escrow" / "passphrase").stat().st_mode) == 0o600


# -- tampering ----------------------------------------------------------------------------------


def _flip(store: S3Store, key: str, at: int = -1) -> None:
    data = bytearray(store.get(key) or b"")
    data[at] ^= 0x01
    store.put(key, bytes(data))


def test_tampered_chunk_is_rejected_and_restore_writes_nothing(
    store: S3Store, tree: list[Source], tmp_path: Path
) -> None:
    manifest = repo(store).create(tree)
    victim = manifest.chunks[2].key
    _flip(store, victim)
    with pytest.raises(BackupError, match=f"object {victim} does not match its manifest hash"):
        repo(store).verify(manifest.backup_id)
    dest = tmp_path / "restored"
    with pytest.raises(BackupError, match=victim):
        repo(store).restore(manifest.backup_id, dest)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clawdbot-restore-")] == []


def test_chunk_swapped_in_from_another_backup_is_rejected(store: S3Store, tree: list[Source]) -> None:
    first = repo(store).create(tree)
    second = repo(store).create(tree)
    store.put(second.chunks[0].key, store.get(first.chunks[0].key) or b"")
    with pytest.raises(BackupError, match=second.chunks[0].key):
        repo(store).verify(second.backup_id)


def test_tampered_manifest_is_rejected_by_list_and_verify(store: S3Store, tree: list[Source]) -> None:
    manifest = repo(store).create(tree)
    key = f"state/{manifest.backup_id}/manifest"
    _flip(store, key)
    [info] = repo(store).list()
    assert info.status == "invalid"
    assert "failed authentication" in (info.problem or "")
    with pytest.raises(BackupError, match="failed authentication"):
        repo(store).verify(manifest.backup_id)


def test_manifest_moved_to_another_backup_id_is_rejected(store: S3Store, tree: list[Source]) -> None:
    manifest = repo(store).create(tree)
    forged = "20990101T000000Z-deadbeef"
    store.put(f"state/{forged}/manifest", store.get(f"state/{manifest.backup_id}/manifest") or b"")
    with pytest.raises(BackupError, match=f"was copied from state backup {manifest.backup_id}"):
        repo(store).verify(forged)
    assert [i.status for i in repo(store).list()] == ["invalid", "complete"]


def test_missing_chunk_makes_list_call_the_backup_invalid(store: S3Store, tree: list[Source]) -> None:
    manifest = repo(store).create(tree)
    store.delete(manifest.chunks[-1].key)
    [info] = repo(store).list()
    assert info.status == "invalid"
    assert manifest.chunks[-1].key in (info.problem or "")


# -- interrupted uploads ------------------------------------------------------------------------


@pytest.mark.parametrize("fail_after_puts", [0, 3, 6])  # first chunk, midway, the manifest itself
def test_interrupted_upload_never_looks_valid(
    store: S3Store, endpoint: str, tree: list[Source], fail_after_puts: int
) -> None:
    good = repo(store).create(tree)
    flaky = S3Store(store.bucket, endpoint)
    fail_on(flaky, "PutObject", after=fail_after_puts)
    fail_on(flaky, "DeleteObject", after=0)  # as if the process died: no clean-up either
    with pytest.raises(BackupError, match=r"cannot upload .*EndpointConnectionError"):
        repo(flaky).create(tree)
    infos = repo(store).list()
    assert [i.status for i in infos if i.backup_id != good.backup_id] == (["incomplete"] if fail_after_puts else [])
    latest = repo(store).latest()
    assert latest is not None and latest.backup_id == good.backup_id
    for info in infos:
        if info.status == "incomplete":
            with pytest.raises(BackupError, match="no manifest"):
                repo(store).verify(info.backup_id)


def test_interrupted_upload_cleans_up_when_it_can(store: S3Store, endpoint: str, tree: list[Source]) -> None:
    flaky = S3Store(store.bucket, endpoint)
    fail_on(flaky, "PutObject", after=3)
    with pytest.raises(BackupError, match="cannot upload"):
        repo(flaky).create(tree)
    assert keys(store) == []


def test_truncated_manifest_is_invalid(store: S3Store, tree: list[Source]) -> None:
    manifest = repo(store).create(tree)
    key = f"state/{manifest.backup_id}/manifest"
    store.put(key, (store.get(key) or b"")[:40])
    [info] = repo(store).list()
    assert info.status == "invalid"
    assert "truncated" in (info.problem or "")


# -- passphrase ---------------------------------------------------------------------------------


def test_wrong_passphrase_is_a_clear_error(store: S3Store, tree: list[Source], tmp_path: Path) -> None:
    manifest = repo(store).create(tree)
    wrong = repo(store, passphrase=b"not the passphrase")
    with pytest.raises(WrongPassphraseError, match="wrong backup passphrase file"):
        wrong.list()
    with pytest.raises(WrongPassphraseError, match=f"state backup {manifest.backup_id}.*does not open"):
        wrong.verify(manifest.backup_id)
    with pytest.raises(WrongPassphraseError):
        wrong.restore(manifest.backup_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(WrongPassphraseError):
        wrong.prune(Retention(keep_last=1))
    assert any(k.endswith("/manifest") for k in keys(store))


def test_passphrase_does_not_appear_in_stored_objects(store: S3Store, tree: list[Source]) -> None:
    repo(store).create(tree)
    for key in keys(store):
        blob = store.get(key) or b""
        assert PASS not in blob
        assert b"prod.acme" not in blob  # file names are inside the encrypted manifest too


# -- retention ----------------------------------------------------------------------------------


def _history(store: S3Store, tree: list[Source], days: int) -> tuple[Clock, list[str]]:
    clock = Clock(datetime(2025, 1, 1, 3, 0, tzinfo=UTC))
    ids = []
    for _ in range(days):
        ids.append(repo(store, clock=clock).create(tree).backup_id)
        clock.now += timedelta(days=1)
    return clock, ids


def test_retention_keep_last(store: S3Store, tree: list[Source]) -> None:
    clock, ids = _history(store, tree, 5)
    result = repo(store, clock=clock).prune(Retention(keep_last=2))
    assert sorted(result.deleted) == ids[:3]
    assert [i.backup_id for i in repo(store).list()] == ids[:2:-1]
    assert all(not k.startswith(tuple(f"state/{i}" for i in ids[:3])) for k in keys(store))


def test_retention_keep_days_or_last_whichever_keeps_more(store: S3Store, tree: list[Source]) -> None:
    clock, ids = _history(store, tree, 5)  # ages now: 5,4,3,2,1 days
    result = repo(store, clock=clock).prune(Retention(keep_last=1, keep_days=2.5))
    assert sorted(result.kept) == ids[3:]
    assert sorted(result.deleted) == ids[:3]


def test_retention_never_deletes_invalid_and_only_old_debris(store: S3Store, tree: list[Source]) -> None:
    clock, ids = _history(store, tree, 3)
    _flip(store, f"state/{ids[0]}/manifest")  # tampered: kept for a human to look at
    old_debris = "20240101T000000Z-00000001"
    young_debris = f"{clock.now - timedelta(hours=1):%Y%m%dT%H%M%SZ}-00000002"
    for debris in (old_debris, young_debris):
        store.put(f"state/{debris}/chunk-000000", b"x" * 40)
    result = repo(store, clock=clock).prune(Retention(keep_last=1))
    assert result.deleted == [ids[1]]
    assert result.debris_deleted == [old_debris]
    remaining = {i.backup_id: i.status for i in repo(store).list()}
    assert remaining == {ids[2]: "complete", ids[0]: "invalid", young_debris: "incomplete"}


def test_symlinks_are_refused_before_anything_is_uploaded(store: S3Store, tree: list[Source], tmp_path: Path) -> None:
    (tree[0].root / "link").symlink_to("/etc/passwd")
    with pytest.raises(BackupError, match="link: not a regular file"):
        repo(store).create(tree)
    assert keys(store) == []


def test_missing_source_directory_is_named(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=f"backup source 'state': {tmp_path / 'nope'} is not a directory"):
        repo(store).create([Source("state", tmp_path / "nope")])


def _forge_kdf(blob: bytes, **kdf: int) -> bytes:
    """The manifest with its cleartext header's KDF cost rewritten (what a bucket writer can do)."""
    start = len(MANIFEST_MAGIC)
    (length,) = struct.unpack(">I", blob[start : start + 4])
    header = json.loads(blob[start + 4 : start + 4 + length])
    header["kdf"].update(kdf)
    forged = json.dumps(header).encode()
    return MANIFEST_MAGIC + struct.pack(">I", len(forged)) + forged + blob[start + 4 + length :]


def test_forged_manifest_header_cannot_make_scrypt_allocate_gigabytes(
    store: S3Store, tree: list[Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = repo(store).create(tree)
    key = f"state/{manifest.backup_id}/manifest"
    forged = _forge_kdf(store.get(key) or b"", n=2**20, r=16)
    # Refused while parsing, before any key derivation.
    with pytest.raises(BackupError, match=r"unreadable header: kdf: .*2048 MiB, over the 256 MiB cap"):
        read_manifest_header(forged, "manifest")
    store.put(key, forged)
    derived: list[tuple[int, int]] = []

    def spy(*, salt: bytes, length: int, n: int, r: int, p: int) -> Any:
        derived.append((n, r))
        return Scrypt(salt=salt, length=length, n=n, r=r, p=p)

    monkeypatch.setattr(backup_crypto, "Scrypt", spy)
    [info] = repo(store).list()
    assert info.status == "invalid" and "over the 256 MiB cap" in (info.problem or "")
    with pytest.raises(BackupError, match="over the 256 MiB cap"):
        repo(store).verify(manifest.backup_id)
    assert repo(store).prune(Retention(keep_last=1)).deleted == []
    assert derived == []
    assert key in keys(store)  # an unreadable backup is never pruned


# -- files that change while they are read -------------------------------------------------------


def _replace_after_collect(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Run `change` between listing the files and reading them (as a concurrent `pulumi up` would)."""

    def collect_then_change(sources: list[Source]) -> Any:
        collected = snapshot.collect(sources)
        change()
        return collected

    monkeypatch.setattr(repository, "collect", collect_then_change)


def test_checkpoint_replaced_by_rename_fails_the_backup(
    store: S3Store, tree: list[Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tree[0].root / ".pulumi" / "stacks" / "clawdbot" / "prod.acme.json"

    def pulumi_writes_checkpoint() -> None:
        fresh = checkpoint.with_name("prod.acme.json.tmp")
        fresh.write_bytes(os.urandom(9000))  # bigger: the old code stored its first 5000 bytes
        fresh.rename(checkpoint)

    _replace_after_collect(monkeypatch, pulumi_writes_checkpoint)
    with pytest.raises(BackupError, match=f"cannot back up {checkpoint}: it changed during backup; retry"):
        repo(store).create(tree)
    assert keys(store) == []


@pytest.mark.parametrize("how", ["rewritten in place", "removed", "became a symlink"])
def test_file_changed_in_place_or_removed_fails_the_backup(
    store: S3Store, tree: list[Source], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    meta = tree[0].root / ".pulumi" / "meta.yaml"

    def change() -> None:
        if how == "rewritten in place":
            before = meta.stat()
            meta.write_text("version: 2\n")  # same size, same inode
            os.utime(meta, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
        elif how == "removed":
            meta.unlink()
        else:
            meta.unlink()
            meta.symlink_to("/etc/hostname")

    _replace_after_collect(monkeypatch, change)
    with pytest.raises(BackupError, match=r"meta\.yaml: it changed during backup; retry"):
        repo(store).create(tree)
    assert keys(store) == []


def test_unknown_backup_id_and_bad_id(store: S3Store) -> None:
    with pytest.raises(BackupError, match="has no manifest"):
        repo(store).verify("20250101T000000Z-00000000")
    with pytest.raises(BackupError, match="is not a backup id"):
        repo(store).verify("../../etc")


def test_each_manifest_key_is_derived_once_per_repository(
    store: S3Store, tree: list[Source], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `verify latest` lists (one scrypt derivation per manifest) and then opens the chosen one.
    writer = repo(store)
    ids = [writer.create(tree).backup_id for _ in range(3)]
    derivations: list[str] = []
    real = backup_crypto.open_manifest

    def counting(blob: bytes, passphrase: bytes, what: str) -> Any:
        derivations.append(what)
        return real(blob, passphrase, what)

    monkeypatch.setattr(repository, "open_manifest", counting)
    reader = repo(store)
    latest = reader.latest()
    assert latest is not None and latest.backup_id == max(ids)
    reader.verify(latest.backup_id)
    reader.restore(latest.backup_id, tmp_path / "restored")
    assert len(derivations) == 3
