"""Small promises of the CLI contract (issue 12 item 10): canonical `plan --json`, refused flag conflicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli.health import health

REPO = Path(__file__).resolve().parents[1]


def _plan_json(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    env.pop("CLAWDBOT_PROJECT_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "plan", "--stack", "prod.acme", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout


def test_plan_json_is_the_same_bytes_for_the_same_input_and_canonical() -> None:
    first, second = _plan_json("1"), _plan_json("4242")
    assert first == second
    document = json.loads(first)
    keys = [(r["type"], r["name"]) for r in document["resources"]]
    assert keys == sorted(keys) and len(keys) > 5
    assert first == json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def test_health_refuses_local_and_remote_together() -> None:
    result = CliRunner().invoke(health, ["--local", "--remote"])
    assert result.exit_code == 2
    assert "--local and --remote exclude each other" in result.output
