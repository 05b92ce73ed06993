"""policies/PulumiPolicy.yaml says what the Pulumi CLI needs to run the pack in its own venv.

The CLI cannot run here, so each upstream fact the file relies on is pinned below with its source
(pulumi/pulumi at 1b5949891b, 2026-08-21; pulumi/templates-policy at 5d24a6428):

- sdk/go/common/workspace/project.go, `PolicyPackProject` (`runtime`, `version`, `description`,
  ...) and `ProjectRuntimeInfo.UnmarshalYAML`: `runtime` is a string or `{name, options}`;
  `PolicyPackProject.Validate` wants a runtime name.
- pkg/cmd/pulumi/policy/policy_new.go, `runNewPolicyPack`: the python templates
  (templates-policy aws-python/PulumiPolicy.yaml says only `runtime: python`) get
  `virtualenv: venv` unless they set one, and `--runtime-options toolchain=pip` adds
  `toolchain: pip`; `proj.Save` writes them as `runtime: {name: python, options: {...}}`.
- sdk/python/cmd/pulumi-language-python/main.go, `parseOptions`: `virtualenv` must be a string,
  `toolchain` one of pip, poetry, uv; the `venv` default applies only to non-analyzer plugins
  (`isPlugin := req.Kind != AnalyzerPlugin` in `RunPlugin`), so a pack without `virtualenv` runs
  on the ambient python - the defect of issue 11 item 2.
- pkg/resource/plugin/plugin.go, `newPlugin`: an analyzer's ProgramInfo root is the directory
  holding PulumiPolicy.yaml; sdk/python/toolchain/pip.go `resolveVirtualEnvironmentPath` joins a
  relative `virtualenv` to that root, and pip reads `requirements.txt` from the same root.
- pkg/cmd/pulumi/install/install.go, `shouldInstallPolicyPackDependencies`: `pulumi install` run
  in a policy pack nested in a project installs the pack's dependencies (policy/io.go
  `InstallPluginDependencies`, which creates the venv).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from requirement_pins import read_pins

from orchestrator.core.contract import REPO_ROOT
from orchestrator.fleet.changes import parse_source

PACK = REPO_ROOT / "policies"
PYTHON_TOOLCHAINS = ("pip", "poetry", "uv")
"""parseOptions' accepted `toolchain` values."""


def _runtime(document: dict[str, object]) -> tuple[str, dict[str, object]]:
    """`ProjectRuntimeInfo.UnmarshalYAML`: a bare name, or a mapping with `name` and `options`."""
    runtime = document["runtime"]
    if isinstance(runtime, str):
        return runtime, {}
    assert isinstance(runtime, dict), "runtime section must be a string or an object with name and options"
    assert set(runtime) <= {"name", "options"}, runtime
    options = runtime.get("options") or {}
    assert isinstance(options, dict)
    return str(runtime["name"]), options


def _project() -> dict[str, object]:
    document = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_runtime_options_are_what_pulumi_policy_new_writes() -> None:
    document = _project()
    name, options = _runtime(document)
    assert name == "python"
    # policy_new.go: `--runtime-options toolchain=pip` plus the python `virtualenv: venv` default.
    assert options == {"toolchain": "pip", "virtualenv": "venv"}
    assert options["toolchain"] in PYTHON_TOOLCHAINS
    # PolicyPackProject has no other top-level fields we use; a typo would be ignored by the CLI.
    assert set(document) <= {"runtime", "version", "main", "description", "author", "website", "license"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(document["version"]))


def test_virtualenv_resolves_inside_the_pack_and_is_not_committed() -> None:
    _, options = _runtime(_project())
    virtualenv = str(options["virtualenv"])
    # pip.go resolveVirtualEnvironmentPath: relative to the PulumiPolicy.yaml directory.
    assert not PurePosixPath(virtualenv).is_absolute()
    resolved = (PACK / virtualenv).resolve()
    assert resolved.parent == PACK.resolve(), f"{virtualenv} must be a directory of policies/"
    ignored = (PACK / ".gitignore").read_text(encoding="utf-8").split()
    assert f"{virtualenv}/" in ignored


def test_pack_requirements_are_the_pins_the_repo_tests_with() -> None:
    pack = read_pins(PACK / "requirements.txt")
    repo = read_pins(REPO_ROOT / "requirements.txt")
    assert {"pulumi-policy", "pulumi"} <= set(pack)
    for name, version in pack.items():
        assert repo.get(name) == version, f"policies/requirements.txt pins {name}=={version}, repo {repo.get(name)}"


def _imported_roots(source: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(parse_source(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_pack_imports_only_pulumi_policy_and_itself() -> None:
    """So policies/requirements.txt is complete and the pack can be published without the repo."""
    allowed = set(sys.stdlib_module_names) | {"__future__", "pulumi_policy", "clawdbot_policies"}
    sources = sorted(p for p in PACK.rglob("*.py") if "venv" not in p.relative_to(PACK).parts)
    assert len(sources) > 5
    for source in sources:
        foreign = _imported_roots(source) - allowed
        assert not foreign, f"{source.relative_to(REPO_ROOT)} imports {sorted(foreign)}"


@pytest.mark.needs_pulumi_cli
@pytest.mark.skipif(shutil.which("pulumi") is None, reason="needs the Pulumi CLI (pulumi install creates the venv)")
def test_pulumi_install_puts_the_pack_requirements_into_its_venv(tmp_path: Path) -> None:
    pack = shutil.copytree(PACK, tmp_path / "policies", ignore=shutil.ignore_patterns("venv", "__pycache__"))
    subprocess.run(["pulumi", "install"], cwd=pack, check=True, capture_output=True, timeout=600)
    python = pack / "venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", "import clawdbot_policies.pack, pulumi_policy; print(pulumi_policy.__name__)"],
        cwd=pack,
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "pulumi_policy"
