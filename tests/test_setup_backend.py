"""The shared state's URL reaches the hand-run `pulumi` through the env file setup-vps.sh writes."""

from __future__ import annotations

from pathlib import Path

from vps_setup import read_env_file, run

from orchestrator.config.settings import Settings

SHARED = (
    "s3://clawdbot-state/fleet?endpoint=https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    "&region=auto&s3ForcePathStyle=true"
)


def test_the_raw_cli_follows_a_shared_backend_set_in_the_env_file(tmp_path: Path) -> None:
    root = tmp_path / "vps"
    assert run("--root", str(root)).returncode == 0
    env = root / "etc/clawdbot/clawdbot.env"
    assert read_env_file(env)["PULUMI_BACKEND_URL"] == "file:///var/lib/clawdbot/state"
    env.write_text(env.read_text() + f"CLAWDBOT_STATE_BACKEND={SHARED}\n")
    again = run("--root", str(root))
    assert again.returncode == 0, again.stderr
    values = read_env_file(env)  # the URL fits the shared KEY=VALUE format (no quoting needed)
    assert values["PULUMI_BACKEND_URL"] == values["CLAWDBOT_STATE_BACKEND"] == SHARED
    # ... and the fleet's own settings read the same file the same way: both see one state.
    assert Settings.from_env({"CLAWDBOT_ENV_FILE": str(env)}).backend_url == SHARED
