"""`python -m orchestrator plan`: text and JSON, secrets masked, clean exits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.core.contract import REPO_ROOT


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_plan_lists_resources_with_secrets_masked() -> None:
    code, out = _invoke("plan", "--stack", "prod.acme")
    assert code == 0, out
    assert out.startswith("Stack prod.acme: 13 resources")
    assert "+ D1Database acme-db [protected]" in out
    assert '"text": "[secret]", "type": "secret_text"' in out
    assert 'value: "[secret]"' in out


def test_plan_json_is_machine_readable_and_masks_secret_inputs() -> None:
    code, out = _invoke("plan", "--stack", "prod.globex", "--json")
    assert code == 0, out
    document = json.loads(out)
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["globex-config"]["inputs"]["value"] == "[secret]"
    relay = next(b for b in by_name["globex-worker"]["inputs"]["bindings"] if b["name"] == "RELAY_KEY")
    assert relay == {"name": "RELAY_KEY", "type": "secret_text", "text": "[secret]"}
    assert document["outputs"]["script_name"] == "clawdbot-prod-globex"


def test_plan_from_a_config_path(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Pulumi.prod.yaml", tmp_path)
    shutil.copy(REPO_ROOT / "Pulumi.prod.acme.yaml", tmp_path)
    code, out = _invoke("plan", "--config", str(tmp_path / "Pulumi.prod.acme.yaml"))
    assert code == 0 and "Stack prod.acme" in out, out


def test_invalid_config_exits_1_with_one_line(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "Pulumi.prod.yaml", tmp_path)
    text = (REPO_ROOT / "Pulumi.prod.acme.yaml").read_text().replace("*/15 * * * *", "*/15 * * *")
    (tmp_path / "Pulumi.prod.acme.yaml").write_text(text)
    code, out = _invoke("plan", "--config", str(tmp_path / "Pulumi.prod.acme.yaml"))
    assert code == 1
    assert (
        out == "Error: stack prod.acme: clawdbot:tenant.crons: [0] '*/15 * * *' must have 5 fields "
        "(minute hour day month weekday), not 4\n"
    )


@pytest.mark.parametrize("args", [[], ["--stack", "prod.acme", "--config", "Pulumi.prod.acme.yaml"]])
def test_plan_needs_exactly_one_source(args: list[str]) -> None:
    code, out = _invoke("plan", *args)
    assert code == 2 and "give exactly one of --stack or --config" in out


def test_unknown_stack_names_the_missing_file() -> None:
    code, out = _invoke("plan", "--stack", "prod.nobody")
    assert code == 1 and "stack prod.nobody: no stack file" in out


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag: str) -> None:
    code, out = _invoke("plan", flag)
    assert code == 0 and "without credentials or the Pulumi CLI" in out
