"""The local edge without a runtime: plans, keys, state files, process safety, CLI errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.config.stack_file import set_value
from orchestrator.config.tenant_config import TENANT_KEY, load_platform_spec, load_tenant_spec
from orchestrator.core.contract import REPO_ROOT, contract
from orchestrator.core.errors import ConfigError, CryptoError, PermissionsError
from orchestrator.core.model import host_for
from orchestrator.core.render import render_bundle, split_embedded
from orchestrator.local_edge import LocalEdge, prepare_tenants
from orchestrator.local_edge import process as proc
from orchestrator.local_edge.errors import LocalEdgeError, NotRunningError
from orchestrator.local_edge.keys import control_token, relay_key_b64, relay_key_path
from orchestrator.local_edge.layout import StateLayout
from orchestrator.local_edge.plan import check_distinct, local_routes, tenant_plan, with_config_ttl
from orchestrator.ops.scratch import ScratchProject, synthetic_tenant, write_passphrase_file

KEY = "A" * 43 + "="


def bundle(tenant: str = "acme"):  # type: ignore[no-untyped-def]
    return render_bundle(load_tenant_spec(REPO_ROOT, f"prod.{tenant}"), load_platform_spec(REPO_ROOT))


def kv_for(b) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {e.key: "x" for e in b.kv_entries}


def test_plan_resolves_bindings_like_tenant_edge() -> None:
    b = bundle()
    plan = tenant_plan(b, relay_key_b64=KEY, kv_values=kv_for(b))
    values = {p.name: (p.type, p.value) for p in plan.bindings}
    assert values == {
        "EDGE_KV": ("kv_namespace", None),
        "EDGE_DB": ("d1", None),
        "RELAY_KEY": ("secret_text", KEY),
        "TENANT_ID": ("plain_text", "acme"),
    }
    assert plan.routes == (*b.routes, "edge.acme.example.com/*")
    assert [m.content for m in plan.modules] == [m.content for m in b.modules]
    assert KEY not in repr(plan)  # secrets stay out of reprs and tracebacks


def test_plan_refuses_missing_or_extra_kv_values() -> None:
    b = bundle()
    missing = r"tenant acme: KV values do not match the bundle \(missing \['secret:STRIPE_KEY'\]"
    with pytest.raises(ConfigError, match=missing):
        tenant_plan(b, relay_key_b64=KEY, kv_values={k: v for k, v in kv_for(b).items() if k != "secret:STRIPE_KEY"})
    with pytest.raises(ConfigError, match=r"extra \['rogue'\]"):
        tenant_plan(b, relay_key_b64=KEY, kv_values={**kv_for(b), "rogue": "x"})


def test_config_ttl_override_changes_only_the_ttl() -> None:
    b = bundle()
    original = b.module(b.main_module).content
    changed = with_config_ttl(original, 1)
    head, literal, tail = split_embedded(original)
    new_head, new_literal, new_tail = split_embedded(changed)
    assert (new_head, new_tail) == (head, tail)  # the rest of the bundle is byte for byte the same
    before, after = json.loads(literal), json.loads(new_literal)
    assert after["contract"]["config_cache_ttl_seconds"] == 1
    after["contract"]["config_cache_ttl_seconds"] = contract()["config_cache_ttl_seconds"]
    assert after == before
    with pytest.raises(ConfigError, match=r"bundle: not one `const EMBEDDED =` line"):
        with_config_ttl("export default {};\n", 1)
    with pytest.raises(ConfigError, match=r"not one"):
        with_config_ttl(original + original, 1)
    plan = tenant_plan(b, relay_key_b64=KEY, kv_values=kv_for(b), config_ttl_seconds=1)
    assert [m.content for m in plan.modules] == [changed]


def test_two_tenants_may_not_share_a_route_or_store() -> None:
    a = tenant_plan(bundle("acme"), relay_key_b64=KEY, kv_values=kv_for(bundle("acme")))
    clash = a.model_copy(update={"tenant": "other", "worker": "w2", "kv_namespace": "k2", "d1_database": "d2"})
    clash_message = re.escape("tenant other: route 'shop.acme.example.com/*' is also used by tenant acme")
    with pytest.raises(ConfigError, match=clash_message):
        check_distinct([a, clash])


def test_host_for_follows_route_paths() -> None:
    routes = ["example.net/hooks/*", "*.wild.net/*", "www.example.net/*"]
    assert host_for(routes, "/hooks/x") == "example.net"
    assert host_for(routes, "/_edge/health") == "www.example.net"
    assert host_for(["example.net/hooks/*"], "/_edge/health") is None
    assert local_routes(bundle("globex")) == ("globex.example.net/hooks/*", "www.globex.example.net/*")


def test_relay_key_is_created_once_per_generation_and_private(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path / "state")
    layout.ensure()
    first = relay_key_b64(layout, "acme", 1)
    assert relay_key_b64(layout, "acme", 1) == first
    assert relay_key_b64(layout, "acme", 2) != first
    assert relay_key_path(layout, "acme", 1).stat().st_mode & 0o777 == 0o600
    assert control_token(layout) == control_token(layout)


def test_damaged_or_exposed_key_files_are_refused(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path / "state")
    layout.ensure()
    path = relay_key_path(layout, "acme", 1)
    path.write_text("not-a-key\n")
    os.chmod(path, 0o600)
    with pytest.raises(CryptoError, match=r"tenant acme: relay key file .*acme.g1 is damaged") as err:
        relay_key_b64(layout, "acme", 1)
    assert "not-a-key" not in str(err.value)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionsError, match="has mode 0644; it must be 0600"):
        relay_key_b64(layout, "acme", 1)


def test_state_directory_readable_by_others_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    with pytest.raises(PermissionsError, match=r"state directory .* has mode 0755; it must be 0700"):
        StateLayout(root).ensure()


def test_prepare_names_the_unknown_tenant_and_wrong_passphrase(tmp_path: Path) -> None:
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "pass"), source=REPO_ROOT)
    project.add_tenant(synthetic_tenant(7))
    layout = StateLayout(tmp_path / "state")
    with pytest.raises(ConfigError, match=re.escape("unknown tenant 'ghost': no stack file Pulumi.prod.ghost.yaml")):
        prepare_tenants(project.root, layout, passphrase_file=tmp_path / "pass", tenants=["ghost"])
    write_passphrase_file(tmp_path / "other")
    with pytest.raises(CryptoError, match=re.escape("Pulumi.prod.t007.yaml: incorrect passphrase")):
        prepare_tenants(project.root, layout, passphrase_file=tmp_path / "other")
    prepared = prepare_tenants(project.root, layout, passphrase_file=tmp_path / "pass")
    assert [p.spec.id for p in prepared] == ["t007"]
    assert project.secrets["t007"]["WEBHOOK_SECRET"] not in repr(prepared)


def test_prepare_names_a_declared_secret_without_a_value_and_how_to_set_it(tmp_path: Path) -> None:
    # As a fresh clone's globex after `secrets set` for acme only: declared, never set.
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "pass"), source=REPO_ROOT)
    path = project.add_tenant(synthetic_tenant(7))
    set_value(path, f"{TENANT_KEY}.secret_names", ["WEBHOOK_SECRET", "STRIPE_KEY"])
    expected = (
        "stack prod.t007: clawdbot:secrets.STRIPE_KEY: declared in secret_names but has no value "
        "(python -m orchestrator secrets set t007 STRIPE_KEY)"
    )
    with pytest.raises(ConfigError, match=re.escape(expected)):
        prepare_tenants(project.root, StateLayout(tmp_path / "state"), passphrase_file=tmp_path / "pass")


def test_status_of_a_never_started_and_of_a_dead_runtime(tmp_path: Path) -> None:
    edge = LocalEdge(tmp_path / "state")
    assert edge.status().state == "stopped"
    with pytest.raises(NotRunningError, match="local edge is not running: not started"):
        edge.control()
    edge.layout.ensure()
    # A pid that is certainly not our runner (this test process): reported dead, never signalled.
    edge.layout.pid_file.write_text(f"{os.getpid()}\n")
    status = edge.status()
    assert status.state == "dead" and f"runner process {os.getpid()} is gone" in status.reason
    assert edge.down() is False and not edge.layout.pid_file.exists()


def test_stop_group_never_signals_processes_that_are_not_ours(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert proc.group_members(sleeper.pid) == []
        assert proc.stop_group(sleeper.pid, state_dir=tmp_path, grace_s=0.2) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def _lookalike(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """A session leader whose command line looks like a runtime process (argv[0] and args as given)."""
    first, *rest = argv
    return subprocess.Popen(
        [first, "-c", "import time; time.sleep(30)", *rest], executable=sys.executable, cwd=cwd, start_new_session=True
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["/home/dev/app/node_modules/@cloudflare/workerd-linux-64/bin/workerd"],  # someone's `wrangler dev`
        ["node", str(proc.RUNNER_SCRIPT)],  # the runner of another local edge (another state dir)
    ],
    ids=["workerd", "runner"],
)
def test_a_recycled_pid_of_another_runtime_is_never_killed(tmp_path: Path, argv: list[str]) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state.mkdir(mode=0o700)
    elsewhere.mkdir()
    other = _lookalike(argv, elsewhere)
    try:
        time.sleep(0.2)
        seen = proc.read_proc(other.pid)
        assert seen is not None and (seen.is_workerd or seen.is_runner)
        assert proc.is_ours(seen)  # looks like a runtime process...
        assert not proc.is_ours(seen, state)  # ...but not of this local edge
        assert proc.group_members(other.pid, state) == [] and not proc.runner_alive(other.pid, state)
        assert proc.stop_group(other.pid, state_dir=state, grace_s=0.2) is False
        assert other.poll() is None
        # The state directory's runtime.pid holds that pid: status says dead, down signals nothing.
        edge = LocalEdge(state)
        edge.layout.ensure()
        edge.layout.pid_file.write_text(f"{other.pid}\n")
        assert edge.status().state == "dead"
        assert edge.down() is False and other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_processes_running_in_the_state_directory_are_ours(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    runner = _lookalike(["node", str(proc.RUNNER_SCRIPT)], state)
    try:
        time.sleep(0.2)
        seen = proc.read_proc(runner.pid)
        assert seen is not None and seen.is_runner and proc.is_ours(seen, state)
        assert proc.runner_alive(runner.pid, state)
        assert proc.stop_group(runner.pid, state_dir=state, grace_s=2.0) is True
        assert runner.wait(timeout=5) is not None
    finally:
        runner.kill()
        runner.wait()


def test_a_command_line_merely_mentioning_runner_mjs_is_not_ours(tmp_path: Path) -> None:
    other = _lookalike(["node", "/elsewhere/runner.mjs", "--note=workerd"], tmp_path)
    try:
        time.sleep(0.2)
        seen = proc.read_proc(other.pid)
        assert seen is not None and not proc.is_ours(seen) and not proc.is_ours(seen, tmp_path)
    finally:
        other.kill()
        other.wait()


def test_up_without_node_says_how_to_fix(tmp_path: Path) -> None:
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "pass"), source=REPO_ROOT)
    project.add_tenant(synthetic_tenant(3, secret_names=()))
    edge = LocalEdge(tmp_path / "state", node="no-such-node-binary")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "pass")
    with pytest.raises(LocalEdgeError, match=r"node \(no-such-node-binary\) is not on PATH; install Node.js 20\+"):
        edge.up(prepared, port=0)
    assert edge.status().state == "stopped"


def test_runner_failure_is_reported_with_redacted_log(tmp_path: Path) -> None:
    project = ScratchProject(tmp_path / "project", write_passphrase_file(tmp_path / "pass"), source=REPO_ROOT)
    project.add_tenant(synthetic_tenant(4))
    edge = LocalEdge(tmp_path / "state")
    prepared = prepare_tenants(project.root, edge.layout, passphrase_file=tmp_path / "pass")
    # An impossible compatibility flag makes workerd refuse the config after the plan was read.
    broken = [
        p.__class__(
            p.spec,
            p.bundle.model_copy(update={"compatibility_flags": ("no_such_flag_xyz",)}),
            p.relay_key_b64,
            p.kv_values,
        )
        for p in prepared
    ]
    with pytest.raises(LocalEdgeError, match=r"exited .* before it was ready") as err:
        edge.up(broken, port=0, timeout_s=60)
    assert prepared[0].relay_key_b64 not in str(err.value)
    assert prepared[0].relay_key_b64 not in edge.layout.log_file.read_text()
    assert edge.status().state == "stopped"


@pytest.mark.parametrize(
    "args",
    [
        ["local", "--help"],
        ["local", "up", "--help"],
        ["local", "push-config", "--help"],
        ["demo", "--help"],
        ["local", "health", "--help"],
    ],
)
def test_help_explains(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and len(result.output) > 200


def test_cli_status_and_push_when_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWDBOT_LOCAL_EDGE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(cli, ["local", "status"])
    assert result.exit_code == 3 and "local edge: stopped" in result.output
    result = CliRunner().invoke(cli, ["local", "push-config", "acme"])
    assert result.exit_code == 1 and "Error: local edge is not running: not started" in result.output
    result = CliRunner().invoke(cli, ["local", "down"])
    assert result.exit_code == 0 and "was not running" in result.output


READONLY_SQL = REPO_ROOT / "orchestrator" / "local_edge" / "readonly_sql.mjs"


def _read_only(statements: list[str]) -> list[bool]:
    """The control worker's read-only check, run under node on each statement."""
    script = (
        f"import {{ readOnly }} from {json.dumps(READONLY_SQL.as_uri())};\n"
        "const input = JSON.parse(process.argv[1]);\n"
        "process.stdout.write(JSON.stringify(input.map((sql) => readOnly(sql))));\n"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(statements)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    verdicts: list[bool] = json.loads(out.stdout)
    return verdicts


def test_control_queries_are_read_only() -> None:
    reads = [
        "SELECT webhook_id FROM webhook_events",
        "  select count(*) as n from d1_migrations;  ",
        "WITH recent AS (SELECT * FROM webhook_events ORDER BY received_at DESC LIMIT 5) SELECT * FROM recent",
        "SELECT CASE WHEN n > 1 THEN 'many' ELSE 'one' END AS size FROM t",
        "SELECT replace(body, 'a', 'b') FROM t WHERE note = 'DELETE FROM t; DROP TABLE t'",
        'SELECT "update", [delete] FROM t -- INSERT INTO t VALUES (1)',
        "SELECT MAX(version) AS v FROM applied_config_versions",
    ]
    writes = [
        "WITH x AS (SELECT 1) DELETE FROM webhook_events RETURNING *",
        "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
        "WITH x AS (SELECT 1) UPDATE t SET a = 1",
        "WITH x AS (SELECT 1) REPLACE INTO t VALUES (1)",
        "DELETE FROM t",
        "SELECT 1; DELETE FROM t",
        "SELECT 1; /* two statements */ SELECT 2",
        "PRAGMA writable_schema = 1",
        "ATTACH DATABASE 'x' AS y",
        "SELECT 'unterminated",
        "SELECT 1 /* unterminated",
        "",
        "EXPLAIN DELETE FROM t",
    ]
    assert _read_only(reads) == [True] * len(reads)
    assert _read_only(writes) == [False] * len(writes)
