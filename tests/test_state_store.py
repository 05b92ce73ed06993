"""Recovery reads the DIY backend the same way in a directory and in a folder of an R2 bucket.

The bucket is moto's S3 server over real HTTP on loopback (boto3, path-style, as R2 is addressed).
Layout and lock contents as the Pulumi CLI writes them (pulumi/pulumi pkg/backend/diy, snapshot
pkg/v3.259.0-14): `lock.go` `lockContent{pid, username, hostname, timestamp}` at
`.pulumi/locks/<fully qualified stack>/<lockID>.json`; `store.go` checkpoints at
`.pulumi/stacks/<project>/<stack>.json[.gz]`; `backend.go` puts the URL's folder in front of every
key (`blob.PrefixedBucket`).
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from orchestrator.config.state_backend import parse_state_backend
from orchestrator.core.errors import SetupError
from orchestrator.engine.locks import checkpoint_outputs, clear_stale, inspect, state_fingerprint, state_key
from orchestrator.engine.state_store import BucketState, DirectoryState, StateStore, open_state

PROJECT, STACK, FLAG = "clawdbot", "prod.acme", "--tenant acme"
LOCKS = f".pulumi/locks/organization/{PROJECT}/{STACK}"
CHECKPOINT = f".pulumi/stacks/{PROJECT}/{STACK}.json"
BUCKET = "clawdbot-state"
Put = Callable[[str, bytes], None]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-secret-value")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")


@pytest.fixture
def raw(endpoint: str, aws: None) -> Iterator[object]:
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture(params=["directory", "bucket"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StateStore, Put]:
    """The same state written where each store reads it: a directory, or the `fleet/` folder of a bucket."""
    if request.param == "directory":

        def put_file(key: str, data: bytes) -> None:
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(data)

        return DirectoryState(tmp_path), put_file
    endpoint = request.getfixturevalue("endpoint")
    client = request.getfixturevalue("raw")
    url = f"s3://{BUCKET}/fleet?endpoint={endpoint}&s3ForcePathStyle=true&region=us-east-1"

    def put_object(key: str, data: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=f"fleet/{key}", Body=data)

    return open_state(parse_state_backend(url)), put_object


def lock(pid: int, host: str = socket.gethostname()) -> bytes:
    return json.dumps({"pid": pid, "username": "ops", "hostname": host, "timestamp": "2025-01-01T10:00:00Z"}).encode()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def checkpoint(pending: list[dict[str, object]], outputs: dict[str, object]) -> bytes:
    root = {
        "urn": "urn:pulumi:prod.acme::clawdbot::pulumi:pulumi:Stack::clawdbot-prod.acme",
        "type": "pulumi:pulumi:Stack",
    }
    latest = {"resources": [{**root, "outputs": outputs}], "pending_operations": pending}
    return json.dumps({"version": 3, "checkpoint": {"stack": STACK, "latest": latest}}).encode()


def test_a_dead_local_lock_is_cleared_and_a_foreign_one_named(backend: tuple[StateStore, Put]) -> None:
    store, put = backend
    put(f"{LOCKS}/dead.json", lock(dead_pid()))
    put(f"{LOCKS}/far.json", lock(1, host="node-2"))
    put(f"{LOCKS}/nested/ignored.json", lock(1, host="node-3"))  # not a lock of this stack's folder
    report = inspect(store, PROJECT, STACK, tenant_flag=FLAG)
    assert [lk.key for lk in report.stale_locks] == [f"{LOCKS}/dead.json"]
    assert [lk.hostname for lk in report.live_locks] == ["node-2"] and report.blocked
    assert f"delete {store.where(f'{LOCKS}/far.json')} by hand" in report.advice[0]
    assert [lk.key for lk in clear_stale(store, report)] == [f"{LOCKS}/dead.json"]
    assert store.read(f"{LOCKS}/dead.json") is None and store.read(f"{LOCKS}/far.json") is not None
    assert clear_stale(store, report) == []  # already gone: nothing to report twice


@pytest.mark.parametrize("gz", [False, True])
def test_pending_operations_and_outputs_come_from_the_checkpoint(backend: tuple[StateStore, Put], gz: bool) -> None:
    store, put = backend
    pending: list[dict[str, object]] = [{"resource": {"urn": "urn:x::acme-kv", "type": "t"}, "type": "creating"}]
    data = checkpoint(pending, {"config_version": 7})
    put(CHECKPOINT + (".gz" if gz else ""), gzip.compress(data) if gz else data)
    assert state_key(store, PROJECT, STACK) == CHECKPOINT + (".gz" if gz else "")
    report = inspect(store, PROJECT, STACK, tenant_flag=FLAG)
    assert [p.kind for p in report.pending] == ["creating"] and "acme-kv" in report.advice[0]
    assert checkpoint_outputs(store, PROJECT, STACK) == {"config_version": 7}


def test_the_fingerprint_follows_every_rewrite(backend: tuple[StateStore, Put]) -> None:
    store, put = backend
    assert state_fingerprint(store, PROJECT, STACK) is None
    put(CHECKPOINT, checkpoint([], {"config_version": 1}))
    first = state_fingerprint(store, PROJECT, STACK)
    put(CHECKPOINT, checkpoint([], {"config_version": 22}))
    assert first is not None and state_fingerprint(store, PROJECT, STACK) not in (None, first)


def test_nothing_there_is_clean(backend: tuple[StateStore, Put]) -> None:
    store, _ = backend
    assert inspect(store, PROJECT, STACK, tenant_flag=FLAG).clean
    assert checkpoint_outputs(store, PROJECT, STACK) == {} and store.keys(LOCKS) == []


def test_the_urls_folder_scopes_every_key(endpoint: str, raw: object) -> None:
    client = raw
    # A lock of the same stack in another fleet's folder, and at the bucket root: neither is ours.
    for key in (f"other/{LOCKS}/a.json", f"{LOCKS}/a.json"):
        client.put_object(Bucket=BUCKET, Key=key, Body=lock(1, host="node-2"))  # type: ignore[attr-defined]
    store = open_state(parse_state_backend(f"s3://{BUCKET}/fleet?endpoint={endpoint}&s3ForcePathStyle=true"))
    assert inspect(store, PROJECT, STACK, tenant_flag=FLAG).clean
    root = open_state(parse_state_backend(f"s3://{BUCKET}?endpoint={endpoint}&s3ForcePathStyle=true"))
    assert [lk.where for lk in inspect(root, PROJECT, STACK, tenant_flag=FLAG).live_locks] == [
        f"s3://{BUCKET}/{LOCKS}/a.json"
    ]


def test_no_credentials_is_one_error_naming_the_object_and_the_variables(
    endpoint: str, raw: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = BucketState(parse_state_backend(f"s3://{BUCKET}/fleet?endpoint={endpoint}&s3ForcePathStyle=true"))
    with pytest.raises(SetupError) as info:
        inspect(store, PROJECT, STACK, tenant_flag=FLAG)
    message = str(info.value)
    assert f"s3://{BUCKET}/fleet/{LOCKS}/" in message and "AWS_SECRET_ACCESS_KEY" in message


def test_a_missing_bucket_names_it(endpoint: str, aws: None) -> None:
    store = open_state(parse_state_backend(f"s3://no-such-bucket?endpoint={endpoint}&s3ForcePathStyle=true"))
    with pytest.raises(SetupError, match=r"cannot list s3://no-such-bucket/\.pulumi/locks/.*NoSuchBucket"):
        inspect(store, PROJECT, STACK, tenant_flag=FLAG)


def test_a_key_that_would_leave_the_copy_is_refused(endpoint: str, raw: object, tmp_path: Path) -> None:
    """A bucket is shared with other writers: its keys are untrusted paths when copied to disk."""
    client = raw
    client.put_object(Bucket=BUCKET, Key="fleet/.pulumi/stacks/ok.json", Body=b"{}")  # type: ignore[attr-defined]
    client.put_object(Bucket=BUCKET, Key="fleet/.pulumi/../../escape", Body=b"x")  # type: ignore[attr-defined]
    store = BucketState(parse_state_backend(f"s3://{BUCKET}/fleet?endpoint={endpoint}&s3ForcePathStyle=true"))
    dest = tmp_path / "copy"
    with pytest.raises(SetupError, match="its key leaves the state folder"):
        store.copy_to(".pulumi", dest)
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


def test_a_directory_fingerprint_is_none_for_whatever_is_not_a_regular_file(tmp_path: Path) -> None:
    # As `Path.is_file` answers (CPython 3.11 Lib/pathlib.py: ENOENT, ENOTDIR, EBADF, ELOOP mean "no"),
    # with one stat: a missing key, a folder, a path under a file, a symlink loop, a dangling link.
    store = DirectoryState(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_bytes(b"{}")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    for key in ("missing", "folder", "file/under", "loop", "dangling"):
        assert store.fingerprint(key) is None, key
    assert store.fingerprint("file") == store.fingerprint("link") == f"2:{(tmp_path / 'file').stat().st_mtime_ns}"
