"""Issue 12 "Done when": `setup-vps.sh --root DIR`, then `platform init`, `tenants add`, `secrets set`
and `plan`, as the service layout prescribes, without a traceback.

As prescribed: the installed package's `clawdbot-edge` (built from the laid-out code directory the
way setup-vps.sh's venv step builds it: offline, no build isolation), run as an unprivileged
service user with nothing but the env file to find its layout; the code (app and venv) is not
writable by that user and is unchanged afterwards; everything it writes lands in the project
directory. What `--root` cannot do is emulated, and said: the runtime packages come from this
test environment (a .pth file) instead of the hashed lock, and the chown/chgrp a real run does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from vps_setup import read_env_file, run

SERVICE_UID = 65534  # nobody: a user that owns nothing of the code
SECRET = "whsec-not-a-real-secret-9f2c"


def _tree_digest(top: Path) -> dict[str, str]:
    found = {}
    for path in sorted(top.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(top))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def root() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is 0700 and the service user must reach the layout.
    made = Path(tempfile.mkdtemp(prefix="clawdbot-vps-", dir="/tmp"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _install_the_package(root: Path) -> Path:
    """setup-vps.sh step_venv, offline: build the wheel from the laid-out code dir, install it --no-index."""
    app, venv_dir, wheels = root / "opt/clawdbot/app", root / "opt/clawdbot/venv", root / "build"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(wheels), str(app)],
        check=True, capture_output=True, cwd=root,
    )  # fmt: skip
    venv.create(venv_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv_dir), "platbase": str(venv_dir)}))
    # The runtime packages: on a host `pip install --require-hashes -r requirements.txt`; here, no index.
    (site / "_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [*pip, "--python", str(venv_dir / "bin/python"), "install", "--quiet", "--no-deps", "--no-index",
         "--force-reinstall", "--find-links", str(wheels), "clawdbot-edge"],
        check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(wheels)
    return venv_dir / "bin" / "clawdbot-edge"


def _move_layout_under(root: Path) -> Path:
    """The env file setup wrote, its absolute paths moved under `root` (nothing else changed)."""
    env_file = root / "etc/clawdbot/clawdbot.env"
    text = env_file.read_text()
    for top in ("/var/lib/clawdbot", "/etc/clawdbot", "/opt/clawdbot"):
        text = text.replace(f"={top}", f"={root}{top}").replace(f"file://{top}", f"file://{root}{top}")
    env_file.write_text(text)
    read_env_file(env_file)  # still the strict shared format
    return env_file


def _as_service_user(root: Path) -> list[str]:
    """What setup's chown/chgrp do on a host; as root, then run as nobody. Else make the code read-only."""
    if os.geteuid() != 0:
        for path in [root / "opt/clawdbot", *(root / "opt/clawdbot").rglob("*")]:
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.lstat().st_mode) & ~0o222)
        return []
    data = root / "var/lib/clawdbot"
    for path in [data, *data.rglob("*")]:
        os.lchown(path, SERVICE_UID, SERVICE_UID)
    for name in ("passphrase", "backup-passphrase"):
        os.chown(root / "etc/clawdbot" / name, SERVICE_UID, SERVICE_UID)
    os.chown(root / "etc/clawdbot", 0, SERVICE_UID)  # 0750 root:clawdbot
    return ["setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups"]


@pytest.mark.slow
def test_setup_then_init_add_set_plan_as_the_service_user(root: Path) -> None:
    setup = run("--root", str(root))
    assert setup.returncode == 0, setup.stderr
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): cannot run as the service user")
    console_script = _install_the_package(root)
    env_file = _move_layout_under(root)
    prefix = _as_service_user(root)
    code_before = _tree_digest(root / "opt/clawdbot")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "var/lib/clawdbot"),  # the service user's home (useradd --home-dir)
        "LANG": "C.UTF-8",
        "CLAWDBOT_ENV_FILE": str(env_file),  # on a host the default /etc/clawdbot/clawdbot.env
    }
    zone = ["--zone-id", "0123456789abcdef0123456789abcdef", "--zone-name", "acme.example.com"]
    steps: list[tuple[list[str], str | None]] = [
        (["platform", "init", "--account-id", "fedcba9876543210fedcba9876543210",
          "--compatibility-date", "2026-03-01", "--environment", "prod"], None),
        (["tenants", "add", "acme", *zone, "--route", "shop.acme.example.com/*",
          "--custom-domain", "edge.acme.example.com", "--cron", "*/15 * * * *", "--d1-location-hint", "weur"], None),
        (["secrets", "set", "acme", "WEBHOOK_SECRET", "--add"], SECRET + "\n"),
        (["plan", "--stack", "prod.acme"], None),
        (["plan", "--stack", "prod"], None),
    ]  # fmt: skip
    outputs = []
    for args, stdin in steps:
        result = subprocess.run(
            [*prefix, str(console_script), *args], input=stdin, env=env, cwd=root / "var/lib/clawdbot/project",
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
        outputs.append(result.stdout + result.stderr)

    assert "+ Platform clawdbot-prod" in outputs[4] and "fedcba9876543210fedcba9876543210" in outputs[4]
    # The tenant's plan carries what platform init wrote (the account) and what tenants add gave.
    assert "+ TenantEdge acme" in outputs[3] and 'title: "clawdbot-prod-acme"' in outputs[3]
    assert 'accountId: "fedcba9876543210fedcba9876543210"' in outputs[3] and 'primaryLocationHint: "weur"' in outputs[3]
    assert SECRET not in "".join(outputs)
    # The code, app and venv alike, is exactly what setup and the install left: nothing written there.
    assert _tree_digest(root / "opt/clawdbot") == code_before
    project = root / "var/lib/clawdbot/project"
    acme = project / "Pulumi.prod.acme.yaml"
    assert stat.S_IMODE(acme.stat().st_mode) == 0o600 and "secure: v1:" in acme.read_text()
    assert SECRET not in acme.read_text()
    if prefix:
        assert acme.stat().st_uid == SERVICE_UID and (project / "Pulumi.prod.yaml").stat().st_uid == SERVICE_UID
    assert 'account_id: "fedcba9876543210fedcba9876543210"' in (project / "Pulumi.prod.yaml").read_text()
