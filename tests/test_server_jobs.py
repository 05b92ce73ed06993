"""Fleet jobs over HTTP, run by the fleet's own code on the simulated executor (never the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from server_env import ServerEnv, Template, bearer, client, env, examples_template

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.core.drift import DriftFinding, DriftReport
from orchestrator.core.errors import StackError
from orchestrator.engine.locks import fleet_lease
from orchestrator.fleet.audit import read_events

__all__ = ["client", "env", "examples_template"]


@pytest.fixture
def slow(tmp_path: Path, examples_template: Template) -> ServerEnv:
    """Every stack operation waits at the valve until the test opens it."""
    return ServerEnv(tmp_path, examples_template, latency=lambda stack, op: 1.0)


def start(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    response = client.post("/api/jobs", headers=headers, json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/jobs/{response.json()['id']}"
    answer: dict[str, object] = response.json()
    return answer


def test_a_job_runs_the_fleet_and_reports_per_tenant(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token("ci"))
    job = start(client, headers, operation="up", all=True)
    assert job["state"] in ("queued", "running") and job["by"] == "ci" and job["total"] == 2
    done = env.wait_job(client, headers, str(job["id"]))
    assert done["state"] == "succeeded" and done["done"] == 2 and done["error"] is None
    assert [(t["tenant"], t["state"], t["result"]) for t in done["tenants"]] == [
        ("acme", "done", "ok"),
        ("globex", "done", "ok"),
    ]
    assert done["report"]["counts"] == {"ok": 2} and done["report"]["waves"] == 2  # canary, then the rest
    assert sorted(env.sim.calls) == [("prod.acme", "up"), ("prod.globex", "up")]
    # The CLI sees what the job did: the same records, so the next up skips both.
    status = CliRunner().invoke(cli, ["status", "--json"], obj=FleetDeps(settings=lambda: env.settings))
    assert [t["bundle_hash"] for t in json.loads(status.stdout)["tenants"]] == ["sim-prod.acme", "sim-prod.globex"]
    again = env.wait_job(client, headers, str(start(client, headers, operation="up", all=True)["id"]))
    assert [t["result"] for t in again["tenants"]] == ["unchanged", "unchanged"]
    env.state.watcher.refresh()
    api = client.get("/api/status", headers=headers).json()
    assert [r["bundle_hash"] for r in api["tenants"]] == ["sim-prod.acme", "sim-prod.globex"]


def test_drift_job_records_what_the_drift_route_shows(env: ServerEnv, client: TestClient) -> None:
    env.sim.drift["prod.globex"] = DriftReport(
        findings=(
            DriftFinding(
                "urn:pulumi:prod.globex::clawdbot::cloudflare:index/workersScript:WorkersScript::w",
                "cloudflare:index/workersScript:WorkersScript",
                "update",
                ("content",),
            ),
        )
    )
    headers = bearer(env.token())
    done = env.wait_job(client, headers, str(start(client, headers, operation="drift", all=True)["id"]))
    assert done["state"] == "failed"  # like `drift`: exit 1 when a tenant drifted
    assert {t["tenant"]: t["result"] for t in done["tenants"]} == {"acme": "no-drift", "globex": "drifted"}
    assert set(env.sim.calls) == {("prod.acme", "refresh"), ("prod.globex", "refresh")}
    drift = client.get("/api/drift", headers=headers).json()
    assert drift["drifted"] == 1
    assert {d["tenant"]: d["state"] for d in drift["tenants"]} == {"acme": "clean", "globex": "drifted"}
    assert "w: update content" in next(d for d in drift["tenants"] if d["tenant"] == "globex")["summary"]


def test_a_failed_tenant_fails_the_job_with_its_detail(env: ServerEnv, client: TestClient) -> None:
    env.sim.failures["prod.acme"] = [StackError("stack prod.acme (tenant acme): pulumi preview failed: quota")]
    headers = bearer(env.token())
    done = env.wait_job(client, headers, str(start(client, headers, operation="preview", tenants=["acme"])["id"]))
    assert done["state"] == "failed"
    assert done["tenants"][0]["result"] == "failed" and "quota" in done["tenants"][0]["detail"]


def test_one_job_per_stack_at_a_time(slow: ServerEnv) -> None:
    with slow.client() as client:
        headers = bearer(slow.token())
        first = start(client, headers, operation="up", tenants=["acme"])
        slow.valve.wait_for(1)
        clash = client.post("/api/jobs", headers=headers, json={"operation": "preview", "all": True})
        assert clash.status_code == 409
        assert clash.json() == {"error": f"tenant acme is busy: job {first['id']} (up) is running"}
        other = start(client, headers, operation="preview", tenants=["globex"])  # queued behind the first
        assert client.get(f"/api/jobs/{other['id']}", headers=headers).json()["state"] == "queued"
        also = client.post("/api/jobs", headers=headers, json={"operation": "drift", "tenants": ["globex"]})
        assert also.status_code == 409 and "is queued" in also.json()["error"]
        busy = client.get("/api/tenants/acme", headers=headers).json()
        assert busy["job"] == first["id"]
        slow.valve.open()
        assert slow.wait_job(client, headers, str(first["id"]))["state"] == "succeeded"
        assert slow.wait_job(client, headers, str(other["id"]))["state"] == "succeeded"
        assert client.get("/api/tenants/acme", headers=headers).json()["job"] is None
        log = [e for e in read_events(slow.settings.audit_log) if e.result == "accepted"]
        assert len(log) == 2  # the refused requests started nothing


def test_cancel_a_queued_job_drops_it(slow: ServerEnv) -> None:
    with slow.client() as client:
        headers = bearer(slow.token("ops"))
        first = start(client, headers, operation="preview", tenants=["acme"])
        slow.valve.wait_for(1)
        queued = start(client, headers, operation="preview", tenants=["globex"])
        cancelled = client.post(f"/api/jobs/{queued['id']}/cancel", headers=headers, json={})
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        slow.valve.open()
        slow.wait_job(client, headers, str(first["id"]))
        assert client.get(f"/api/jobs/{queued['id']}", headers=headers).json()["state"] == "cancelled"
        assert ("prod.globex", "preview") not in slow.sim.calls
        again = client.post(f"/api/jobs/{queued['id']}/cancel", headers=headers, json={})
        assert (
            again.status_code == 409
            and again.json()["error"] == f"job {queued['id']} has already cancelled; nothing to cancel"
        )


def test_cancel_a_running_job_stops_it_starting_more_stacks(slow: ServerEnv) -> None:
    with slow.client() as client:
        headers = bearer(slow.token("ops"))
        job = start(client, headers, operation="preview", all=True, concurrency=1)
        slow.valve.wait_for(1)  # acme is in its engine operation; globex waits its turn
        cancelling = client.post(f"/api/jobs/{job['id']}/cancel", headers=headers, json={}).json()
        assert cancelling["state"] == "cancelling"
        slow.valve.open()
        done = slow.wait_job(client, headers, str(job["id"]))
        assert done["state"] == "cancelled"
        assert slow.sim.calls == [("prod.acme", "preview")]  # the one in flight finished, no other started
        results = {t["tenant"]: t for t in done["tenants"]}
        assert results["acme"]["result"] == "ok"
        assert results["globex"]["result"] != "ok" and "cancelled" in results["globex"]["detail"]
        events = read_events(slow.settings.audit_log)
        cancel = [e for e in events if e.result == "cancel"]
        assert len(cancel) == 1 and cancel[0].who == "token:ops" and cancel[0].detail == f"job {job['id']}"


def test_every_change_is_audited_with_the_tokens_name(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token("deploy-bot"))
    job = start(client, headers, operation="up", tenants=["acme"])
    env.wait_job(client, headers, str(job["id"]))
    events = read_events(env.settings.audit_log)
    assert events and {e.who for e in events} == {"token:deploy-bot"}
    accepted = next(e for e in events if e.result == "accepted")
    assert accepted.operation == "job up" and f"job {job['id']}: 1 tenants (acme)" == accepted.detail
    assert any(e.tenant == "acme" and e.operation == "up" and e.result == "ok" for e in events)
    assert any(e.operation == "health-gate" for e in events) is False  # the simulation has no health URL
    # Reads change nothing and are not audited.
    before = len(events)
    client.get("/api/status", headers=headers)
    client.get("/api/jobs", headers=headers)
    assert len(read_events(env.settings.audit_log)) == before


def test_a_held_fleet_lease_fails_the_job_with_the_clis_message(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    with fleet_lease(env.settings.fleet_lease_file, holder="ops@vps", command="up acme"):
        done = env.wait_job(client, headers, str(start(client, headers, operation="preview", all=True)["id"]))
        cli_run = CliRunner().invoke(cli, ["preview", "--all"], obj=FleetDeps(settings=lambda: env.settings))
    assert done["state"] == "failed" and done["report"] is None
    assert done["error"].startswith(f"another fleet run holds {env.settings.fleet_lease_file}: up acme by ops@vps")
    assert f"Error: {done['error']}" in cli_run.output
    assert env.sim.calls == []


def test_jobs_list_newest_first_and_unknown_job_is_404(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    ids = [str(start(client, headers, operation="preview", tenants=[t])["id"]) for t in ("acme", "globex")]
    for job_id in ids:
        env.wait_job(client, headers, job_id)
    assert [j["id"] for j in client.get("/api/jobs", headers=headers).json()["jobs"]] == list(reversed(ids))
    missing = client.get("/api/jobs/ffffffffffff", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"].startswith("no job 'ffffffffffff'")
