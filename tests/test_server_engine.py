"""A job's `engine` (embedded | temporal) and the Temporal settings it reaches, without a cluster.

What needs a Temporal client runs in its own process (tests/test_server_cluster.py): a client in
pytest's process can abort the interpreter's exit (temporalio/sdk-python#300). Everything here is
refused before any client exists: by the job schema, or by the settings when a process starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from fastapi.testclient import TestClient
from server_env import ServerEnv, bearer, client, env, examples_template

from orchestrator.cli.fleet import up
from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import ConfigError
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.fleet.audit import read_events
from orchestrator.fleet.sizing import Sizing
from orchestrator.ops.fleet_run import DEFAULT_SIZING, sizing_for_budget
from orchestrator.server.library import Library
from orchestrator.server.schemas import JobRequest

__all__ = ["client", "env", "examples_template"]


def test_the_api_and_the_cli_offer_the_same_engines() -> None:
    schema = JobRequest.model_json_schema()["properties"]["engine"]
    (option,) = [p for p in up.params if p.name == "engine"]
    assert isinstance(option.type, click.Choice) and option.default == schema["default"] == "embedded"
    assert tuple(schema["enum"]) == tuple(option.type.choices) == ("embedded", "temporal")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"engine": "kubernetes"}, "engine: Input should be 'embedded' or 'temporal'"),
        ({"engine": ""}, "engine: Input should be 'embedded' or 'temporal'"),
        ({"engine": None}, "engine: Input should be 'embedded' or 'temporal'"),
        ({"engine": ["temporal"]}, "engine: Input should be 'embedded' or 'temporal'"),
        # The cluster is the server's settings, never the request's: a client cannot point it elsewhere.
        ({"engine": "temporal", "temporal_address": "evil.example:7233"}, "temporal_address: Extra inputs"),
        ({"engine": "temporal", "namespace": "other"}, "namespace: Extra inputs"),
        ({"engine": "temporal", "task_queue": "other"}, "task_queue: Extra inputs"),
    ],
)
def test_a_bad_engine_is_a_400_naming_the_field_and_starts_nothing(
    env: ServerEnv, client: TestClient, extra: dict[str, object], message: str
) -> None:
    headers = bearer(env.token())
    answer = client.post("/api/jobs", headers=headers, json={"operation": "up", "all": True, **extra})
    assert answer.status_code == 400 and answer.json()["error"].startswith(message), answer.text
    assert client.get("/api/jobs", headers=headers).json() == {"jobs": []}
    assert not [e for e in read_events(env.settings.audit_log) if e.result == "accepted"]
    assert env.sim.calls == []


def test_an_embedded_job_shows_each_stacks_wave(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    answer = client.post("/api/jobs", headers=headers, json={"operation": "up", "all": True})
    assert answer.status_code == 202 and answer.json()["engine"] == "embedded"
    done = env.wait_job(client, headers, answer.json()["id"])
    assert [(t["tenant"], t["wave"], t["result"]) for t in done["tenants"]] == [("acme", 0, "ok"), ("globex", 1, "ok")]
    assert done["wave"] == 1 and done["events"][0] == "wave wave 0 (canary): acme"


GOOD = ["127.0.0.1:7233", "temporal.internal:7233", "[::1]:7233", "frontend-1.eu.example.com:443", "h:1"]
BAD = [  # (an empty variable is an unset one: the default)
    "127.0.0.1",
    ":7233",
    "h:0",
    "h:65536",
    "h:123456",
    "http://h:7233",
    "dns:///h:7233",
    "h:7233/x",
    "a b:7233",
    "-h:7233",
    "h-:7233",
    "[zz]:7233",
    "user:s3cr3t@h:7233",
    "h:7233\n",
]


@pytest.mark.parametrize("address", GOOD)
def test_a_temporal_address_is_host_and_port(address: str) -> None:
    assert Settings(temporal_address=address).temporal_address == address


@pytest.mark.parametrize("address", BAD)
def test_a_malformed_temporal_address_names_the_setting_never_the_value(address: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"CLAWDBOT_TEMPORAL_ADDRESS": address}, default_env_file=Path(os.devnull))
    message = str(refused.value)
    assert message.startswith("CLAWDBOT_TEMPORAL_ADDRESS (setting temporal_address): must be host:port")
    assert "s3cr3t" not in message


@pytest.mark.parametrize("command", [["serve", "--port", "8799"], ["up", "--all", "--engine", "temporal"]])
def test_a_door_started_with_a_malformed_address_says_so_in_one_line(command: list[str], tmp_path: Path) -> None:
    """Both doors read the one setting: neither starts a server nor a rollout (and no SDK is loaded)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_"))}
    env |= {"CLAWDBOT_ENV_FILE": os.devnull, "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    env["CLAWDBOT_TEMPORAL_ADDRESS"] = "https://user:s3cr3t@temporal.example:7233"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error: CLAWDBOT_TEMPORAL_ADDRESS (setting temporal_address): must be host:port")
    assert len(done.stderr.strip().splitlines()) == 1 and "s3cr3t" not in done.stderr + done.stdout


def test_a_cluster_job_sizes_from_the_task_queues_share_as_the_cli_does(env: ServerEnv) -> None:
    """`"engine": "temporal"` is `--engine temporal`: its operations go to every worker of the queue, so
    a job sizes from the queue's share of the budget, not from this node's (fleet_run.run_share)."""
    settings = env.settings.model_copy(update={"api_budget_share": 0.25, "temporal_queue_budget_share": 1.0})
    library = Library(settings)
    node, queue = library.sizing(None, None, "embedded"), library.sizing(None, None, "temporal")
    assert node == sizing_for_budget(ThrottleConfig.requests, share=0.25)
    assert queue == sizing_for_budget(ThrottleConfig.requests, share=1.0) == DEFAULT_SIZING
    assert queue.concurrency > node.concurrency
    assert library.sizing(3, 7, "temporal") == Sizing(3, 7)  # what a request asks for is kept


def test_the_jobs_page_offers_the_engines_and_shows_each_stacks_wave(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    page = client.get("/ui/jobs", headers=headers).text
    assert '<select name="engine">' in page and "<option>embedded</option><option>temporal</option>" in page
    answer = client.post("/api/jobs", headers=headers, json={"operation": "up", "all": True})
    env.wait_job(client, headers, answer.json()["id"])
    job = client.get(f"/ui/jobs/{answer.json()['id']}", headers=headers).text
    assert ">embedded</span>" in job and "acme · wave 0: ok" in job and "globex · wave 1: ok" in job
