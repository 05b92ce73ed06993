"""Memory sizing of the local edge: the estimate, what the machine can give, the refusal before start.

Upstream facts relied on: proc(5) `/proc/meminfo` MemAvailable in kB and `/proc/self/cgroup`
lines `hierarchy-ID:controller-list:cgroup-path` (empty controller list for cgroup v2); the kernel's
Documentation/admin-guide/cgroup-v2.rst (`memory.max` holds "max" or bytes, `memory.current`,
`inactive_file` in `memory.stat`) and cgroup-v1/memory.rst (`memory.limit_in_bytes`,
`memory.usage_in_bytes`, `total_inactive_file`; no limit reads as a page-rounded LONG_MAX).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.render import render_bundle
from orchestrator.local_edge import sizing
from orchestrator.local_edge.deploy import PreparedTenant
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.local_edge.runtime import LocalEdge, default_timeout

GIB = 2**30
V1_UNLIMITED = "9223372036854771712"


def fake_host(tmp: Path, *, meminfo_kb: int | None, cgroup: str, files: dict[str, str]) -> tuple[Path, Path]:
    proc, root = tmp / "proc", tmp / "cgroup"
    (proc / "self").mkdir(parents=True)
    lines = ["MemTotal:       24683776 kB"]
    if meminfo_kb is not None:
        lines.append(f"MemAvailable:   {meminfo_kb} kB")
    (proc / "meminfo").write_text("\n".join(lines) + "\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    return proc, root


def test_meminfo_alone(tmp_path: Path) -> None:
    proc, root = fake_host(tmp_path, meminfo_kb=4 * 1024 * 1024, cgroup="0::/\n", files={"memory.max": "max\n"})
    have = sizing.available(proc, root)
    assert have is not None and have.bytes == 4 * GIB and have.source.startswith("MemAvailable")


def test_cgroup_v2_limit_counts_reclaimable_cache_as_free(tmp_path: Path) -> None:
    proc, root = fake_host(
        tmp_path,
        meminfo_kb=20 * 1024 * 1024,
        cgroup="0::/user.slice/me\n",
        files={
            "user.slice/me/memory.max": f"{4 * GIB}\n",
            "user.slice/me/memory.current": f"{2 * GIB}\n",
            "user.slice/me/memory.stat": f"anon 1\ninactive_file {GIB}\nactive_file 5\n",
        },
    )
    have = sizing.available(proc, root)
    assert have is not None and have.bytes == 3 * GIB
    assert have.source == "cgroup memory limit 4.0 GiB, 1.0 GiB in use"


def test_cgroup_v1_namespaced_path_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    # Inside a container the named path is the host's; the container sees its own cgroup as the mount root.
    proc, root = fake_host(
        tmp_path,
        meminfo_kb=20 * 1024 * 1024,
        cgroup="5:devices:/x\n4:memory:/process_api/abc\n0::/\n",
        files={
            "memory/memory.limit_in_bytes": f"{4 * GIB}\n",
            "memory/memory.usage_in_bytes": f"{GIB}\n",
            "memory/memory.stat": "total_inactive_file 0\n",
        },
    )
    assert sizing.cgroup_headroom(proc, root) == (4 * GIB, GIB, 3 * GIB)


@pytest.mark.parametrize("limit", ["max\n", V1_UNLIMITED + "\n", "garbage\n", ""])
def test_no_limit_or_unreadable_limit_leaves_meminfo(tmp_path: Path, limit: str) -> None:
    proc, root = fake_host(
        tmp_path,
        meminfo_kb=1024 * 1024,
        cgroup="0::/\n4:memory:/\n",
        files={"memory.max": limit, "memory.current": "1\n", "memory/memory.limit_in_bytes": limit},
    )
    assert sizing.cgroup_headroom(proc, root) is None
    have = sizing.available(proc, root)
    assert have is not None and have.bytes == GIB


def test_the_tightest_of_meminfo_and_cgroup_wins(tmp_path: Path) -> None:
    proc, root = fake_host(
        tmp_path,
        meminfo_kb=512 * 1024,
        cgroup="0::/\n",
        files={"memory.max": f"{8 * GIB}\n", "memory.current": "0\n"},
    )
    have = sizing.available(proc, root)
    assert have is not None and have.bytes == GIB // 2 and "MemAvailable" in have.source


def test_nothing_readable_means_unknown(tmp_path: Path) -> None:
    proc, root = fake_host(tmp_path, meminfo_kb=None, cgroup="", files={})
    assert sizing.available(proc, root) is None
    said: list[str] = []
    sizing.check_memory(10_000, measure=lambda: sizing.available(proc, root), say=said.append)  # no refusal
    assert "cannot tell" in said[0]


def test_estimate_grows_per_tenant() -> None:
    assert sizing.needed_bytes(0) == sizing.BASE_MIB * sizing.MIB
    assert sizing.needed_bytes(200) - sizing.needed_bytes(100) == int(100 * sizing.PER_TENANT_MIB * sizing.MIB)


def test_refusal_names_the_figures_and_the_ways_out() -> None:
    have = sizing.Available(3 * GIB, "MemAvailable 3.0 GiB")
    with pytest.raises(LocalEdgeError) as caught:
        sizing.check_memory(500, measure=lambda: have)
    message = str(caught.value)
    assert "\n" not in message
    assert "500 local tenant(s)" in message and f"{sizing.needed_bytes(500) / GIB:.1f} GiB" in message
    assert "3.0 GiB is available (MemAvailable 3.0 GiB)" in message
    fits = int((3 * 1024 - sizing.BASE_MIB) / sizing.PER_TENANT_MIB)
    assert f"about {fits} would fit" in message
    assert "local up TENANT" in message and "--no-memory-check" in message
    sizing.check_memory(fits, measure=lambda: have)  # exactly what it says fits, fits
    with pytest.raises(LocalEdgeError):
        sizing.check_memory(fits + 1, measure=lambda: have)


def test_cli_refuses_before_decrypting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWDBOT_PROJECT_DIR", str(REPO_ROOT))
    monkeypatch.setenv("CLAWDBOT_LOCAL_EDGE_DIR", str(tmp_path / "state"))
    # A passphrase file that does not exist: the refusal must come before it is needed.
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "absent"))
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.setattr(sizing, "available", lambda: sizing.Available(64 * sizing.MIB, "MemAvailable 0.1 GiB"))
    result = CliRunner().invoke(cli, ["local", "up", "--port", "0"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "not enough memory for" in errors[0] and "--no-memory-check" in errors[0]
    assert not (tmp_path / "state" / "runtime.pid").exists()


def test_library_up_checks_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sizing, "available", lambda: sizing.Available(0, "MemAvailable 0.0 GiB"))
    spec = load_tenant_spec(REPO_ROOT, "prod.acme")
    bundle = render_bundle(spec, load_platform_spec(REPO_ROOT))
    tenant = PreparedTenant(spec=spec, bundle=bundle, relay_key_b64="A" * 43 + "=", kv_values={})
    edge = LocalEdge(tmp_path / "state")
    with pytest.raises(LocalEdgeError, match="not enough memory for 1 local tenant"):
        edge.up([tenant], port=0)
    assert edge.status().state == "stopped"


def test_default_timeout_grows_with_the_fleet() -> None:
    assert default_timeout(1) >= 120
    assert default_timeout(800) > default_timeout(200) > default_timeout(1)
