"""What every run of the executor brings besides the stack: the policy pack (and its config) and the
provider plugins, installed once at their exact versions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from requirement_pins import read_pins
from stack_fixtures import API_TOKEN, PASSPHRASE, FakeCli, executor, stack_settings

from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import SetupError
from orchestrator.fleet.ports import Operation, OpRequest


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
    return stack_settings(tmp_path)


# Issue 11, item 3. Upstream fact (pulumi 3.272.0 pulumi/automation/_stack.py): `Stack.preview()` and
# `Stack.up()` take `policy_packs` / `policy_pack_configs`, and `_parse_extra_args` (lines 1623-1628)
# emits `--policy-pack P` / `--policy-pack-config C` for each; `refresh()`/`destroy()` take none.


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_every_preview_and_up_runs_the_policy_pack_with_its_config(settings: Settings, tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "PulumiPolicy.yaml").write_text("runtime: python\n")
    config = tmp_path / "policy-config.json"
    config.write_text('{"no-apex-catch-all": {"allowedNames": []}}')
    configured = settings.model_copy(update={"policy_pack_dir": pack, "policy_config": config})
    cli = FakeCli()
    run = executor(configured, cli)
    for operation in (Operation.UP, Operation.PREVIEW, Operation.REFRESH):
        run.run(OpRequest("prod.acme", operation))
    by_command = {args[0]: args for args, _, _ in cli.calls if args[0] in ("preview", "up", "refresh")}
    for command in ("preview", "up"):
        assert _flag_values(by_command[command], "--policy-pack") == [str(pack.resolve())], command
        assert _flag_values(by_command[command], "--policy-pack-config") == [str(config.resolve())], command
    assert "--policy-pack" not in by_command["refresh"]


def test_the_default_pack_is_this_repos_and_no_config_means_no_config_flag(settings: Settings) -> None:
    cli = FakeCli()
    executor(settings, cli).run(OpRequest("prod.acme", Operation.UP))
    argv = next(args for args, _, _ in cli.calls if args[0] == "up")
    assert _flag_values(argv, "--policy-pack") == [str((REPO_ROOT / "policies").resolve())]
    assert (REPO_ROOT / "policies" / "PulumiPolicy.yaml").is_file()
    assert "--policy-pack-config" not in argv


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"policy_pack_dir": Path("/nonexistent/pack")}, "policy pack /nonexistent/pack: no PulumiPolicy.yaml"),
        ({"policy_config": Path("/nonexistent/c.json")}, "policy config /nonexistent/c.json does not exist"),
    ],
)
def test_a_missing_pack_or_config_stops_before_any_stack(
    settings: Settings, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(SetupError, match=re.escape(message)):
        executor(settings.model_copy(update=change), FakeCli())


def test_a_policy_config_that_is_not_a_json_object_is_refused(settings: Settings, tmp_path: Path) -> None:
    for text in ("[1, 2]", "{not json"):
        config = tmp_path / "c.json"
        config.write_text(text)
        with pytest.raises(SetupError, match="policy config"):
            executor(settings.model_copy(update={"policy_config": config}), FakeCli())


# Issue 11, item 5. Upstream facts: LocalWorkspace.install_plugin(name, version, kind="resource")
# runs `pulumi plugin install resource <name> <version>` (pulumi 3.272.0 _local_workspace.py:637);
# the plugins a Python program needs are named by the installed SDKs' pulumi-plugin.json
# (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go), e.g. pulumi_cloudflare's
# {"resource": true, "name": "cloudflare", "version": "6.23.1"}.


def test_prepare_installs_the_exact_plugin_versions_of_the_installed_sdks(settings: Settings) -> None:
    cli = FakeCli()
    executor(settings, cli).prepare()
    installs = [args for args, _, _ in cli.calls if args[:2] == ["plugin", "install"]]
    pins = read_pins(REPO_ROOT / "requirements.txt")  # the hashed lock's pins
    assert installs == [
        ["plugin", "install", "resource", "cloudflare", pins["pulumi-cloudflare"]],
        ["plugin", "install", "resource", "random", pins["pulumi-random"]],
    ]
    env = next(e for args, _, e in cli.calls if args[:2] == ["plugin", "install"])
    assert env["PULUMI_BACKEND_URL"].startswith("file://") and PASSPHRASE not in json.dumps(env)


def test_a_failed_plugin_install_names_the_plugin(settings: Settings) -> None:
    cli = FakeCli()
    cli.failures["plugin"] = ("", "error: could not download plugin: 404 Not Found")
    with pytest.raises(SetupError, match=r"installing provider plugin cloudflare 6\.23\.1 failed: .*404"):
        executor(settings, cli).prepare()
