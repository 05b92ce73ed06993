"""Running scripts/setup-vps.sh in tests: the script, scratch checkouts, the layout env file."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
SCRIPT = SCRIPTS / "setup-vps.sh"
UNITS = SCRIPTS / "systemd"
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

# The env file format the units and the CLI share (scripts/vps/lib.sh ENV_LINE_RE).
ENV_LINE = re.compile(r"[A-Z_][A-Z0-9_]*=[^\s\"'\\$`#]*")


def run_script(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script(SCRIPT, *args)


def scratch_checkout(tmp_path: Path, track: list[str]) -> Path:
    """A git work tree holding a copy of scripts/ plus a few files; only `track` is added to the index."""
    repo = tmp_path / "checkout"
    shutil.copytree(SCRIPTS, repo / "scripts")
    (repo / "requirements.txt").write_text("pulumi\n")
    (repo / "app.py").write_text("print('app')\n")
    (repo / "Pulumi.yaml").write_text("name: clawdbot\n")
    (repo / "Pulumi.prod.yaml").write_text("config: {}\n")  # the platform stack: copied to the project dir
    (repo / "Pulumi.prod.acme.yaml").write_text("config: {}\n")  # tracked example: never copied
    (repo / "gone.txt").write_text("tracked, then deleted from the work tree\n")
    (repo / ".env").write_text("CLOUDFLARE_API_TOKEN=do-not-ship\n")  # untracked
    (repo / "notes").mkdir()
    (repo / "notes" / "scratch.txt").write_text("untracked\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=GIT_ENV)
    if track:
        subprocess.run(["git", "-C", str(repo), "add", "--", *track], check=True, env=GIT_ENV)
    (repo / "gone.txt").unlink()
    return repo


def tracked_checkout(tmp_path: Path) -> Path:
    return scratch_checkout(tmp_path, ["scripts", "requirements.txt", "app.py", "Pulumi.yaml", "Pulumi.prod.yaml"])


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the layout env file strictly, as the contract says the CLI must."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        assert ENV_LINE.fullmatch(line), f"{path}:{number}: {line!r} is not a plain KEY=VALUE line"
        key, value = line.split("=", 1)
        assert key not in values, f"{path}:{number}: {key} twice"
        values[key] = value
    return values


def tar_bytes(members: dict[str, str], mode: str) -> bytes:
    """A tar archive (mode "w:gz" or "w:xz") of executable text files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
