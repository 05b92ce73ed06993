"""Re-issuing a last good stack file under a newer config_version (the rollback that rolls forward),
and the Worker adopting it in workerd where it refuses the same config re-applied as it was."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_local_edge_runtime import root_doc_after_ttl

from orchestrator.config.reissue import reissue
from orchestrator.config.stack_file import set_value
from orchestrator.config.stack_yaml import load_plain
from orchestrator.core import crypto
from orchestrator.core.contract import REPO_ROOT, config_kv_key, health_path
from orchestrator.core.crypto import MAX_CONFIG_VERSION
from orchestrator.core.errors import ConfigError
from orchestrator.core.names import tenant_stack
from orchestrator.local_edge import LocalEdge, prepare_tenants, probe_local, tenant_request
from orchestrator.local_edge.deploy import load_bundles
from orchestrator.local_edge.keys import relay_key_b64
from orchestrator.local_edge.runtime import RuntimeInfo
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file

GOOD = b"""encryptionsalt: v1:c2FsdA==:v1:abc:def
config:
  # the tenant, as the operator wrote it
  clawdbot:tenant:
    id: acme
    config_version: 3   # bumped on every change
    config: {greeting: 'Hello', "list": [1, 2]}
  clawdbot:secrets:
    WEBHOOK_SECRET:
      secure: v1:ciphertext-only
"""


def test_only_the_version_changes() -> None:
    out = reissue(GOOD, 5, path=Path("last-good.Pulumi.yaml"))
    assert out == GOOD.replace(b"config_version: 3 ", b"config_version: 5 ")
    before, after = load_plain(GOOD), load_plain(out)
    assert isinstance(before, dict) and isinstance(after, dict)
    after["config"]["clawdbot:tenant"]["config_version"] = 3
    assert after == before


def test_a_file_without_the_key_gains_it() -> None:
    data = b"config:\n  clawdbot:tenant:\n    id: acme\n"
    assert reissue(data, 2, path=Path("f")) == data + b"    config_version: 2\n"


@pytest.mark.parametrize("version", [0, -1, True, MAX_CONFIG_VERSION + 1, "5", 2.0])
def test_a_version_the_model_refuses_is_refused(version: Any) -> None:
    with pytest.raises(ConfigError, match=r"^f: cannot re-issue the config as version"):
        reissue(GOOD, version, path=Path("f"))


@pytest.mark.parametrize(
    "data",
    [b"config: {}\n", b"config:\n  clawdbot:tenant: [1]\n", b"config: 3\n", b"{}\n", b"name: x\n"],
)
def test_a_file_without_tenant_config_is_refused(data: bytes) -> None:
    with pytest.raises(ConfigError, match=r"^f: no clawdbot:tenant mapping to re-issue"):
        reissue(data, 2, path=Path("f"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"config:\n  clawdbot:tenant: {id: a}\n  clawdbot:tenant: {id: b}\n", "duplicate"),
        (b"config: &a {clawdbot:tenant: *a}\n", ""),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_hostile_yaml_is_refused_naming_the_file(data: bytes, reason: str) -> None:
    with pytest.raises(ConfigError, match=r"^f") as info:
        reissue(data, 2, path=Path("f"))
    assert reason in str(info.value)


# --- the Worker's side, in workerd ---------------------------------------------------------------


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[tuple[ScratchProject, LocalEdge, RuntimeInfo]]:
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "passphrase"), source=REPO_ROOT)
    project.add_tenant(synthetic_tenant(1))
    local = LocalEdge(tmp_path / "state")
    info = local.up(
        prepare_tenants(project.root, local.layout, passphrase_file=tmp_path / "passphrase"),
        port=0,
        config_ttl_seconds=1,
    )
    yield project, local, info
    local.down()


def deploy_config(edge: LocalEdge, project_dir: Path, tenant: str) -> None:
    """Write the stack file's config into KV as `pulumi up` does: the signed document, nothing checked.

    (`local push-config` refuses a version below what the edge served; `up` leaves that to the Worker.)
    """
    ((spec, bundle),) = load_bundles(project_dir, [tenant_stack(tenant)])
    key = crypto.relay_key_from_b64(relay_key_b64(edge.layout, tenant, spec.relay_key_generation))
    edge.control().kv_put(tenant, config_kv_key(), crypto.sign_config(key, tenant, bundle.config_payload))


@pytest.mark.slow
def test_the_worker_adopts_the_re_issued_config_it_refuses_as_it_was(
    edge: tuple[ScratchProject, LocalEdge, RuntimeInfo],
) -> None:
    project, local, info = edge
    (tenant,) = info.tenants
    path = project.root / f"Pulumi.prod.{tenant.tenant}.yaml"
    good = path.read_bytes()  # version 1, served and healthy: the last good file
    set_value(path, "clawdbot:tenant.config", {"greeting": "broken release"})
    set_value(path, "clawdbot:tenant.config_version", 2)
    deploy_config(local, project.root, tenant.tenant)
    assert root_doc_after_ttl(local, tenant)["config_version"] == 2  # served: the floor is 2 now

    path.write_bytes(good)  # the old rollback: the last good file as it was
    deploy_config(local, project.root, tenant.tenant)
    time.sleep(1.2)
    assert probe_local(local.edge_client(), tenant).verdict == "degraded"
    # A running isolate holds v2 (`stale_version`); a fresh one reads the floor (`rollback_refused`).
    answer = tenant_request(local.edge_client(), tenant, "GET", health_path()).json()
    assert (answer["status"], answer["config"]["problem"], answer["config"]["version"]) == (
        "degraded",
        "stale_version",
        2,
    )

    path.write_bytes(reissue(good, 3, path=path))  # the rollback that rolls forward
    deploy_config(local, project.root, tenant.tenant)
    served = root_doc_after_ttl(local, tenant)
    assert (served["config_version"], served["config_source"], served["greeting"]) == (3, "kv", "hello from t001")
    assert probe_local(local.edge_client(), tenant).verdict == "ok"
    answer = tenant_request(local.edge_client(), tenant, "GET", health_path()).json()
    assert (answer["status"], answer["config"]["problem"], answer["config"]["floor"]) == ("ok", None, 3)
