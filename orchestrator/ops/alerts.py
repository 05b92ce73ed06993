"""Raising an alert: the one alert hook, `scripts/alert-hook.sh`, for whatever noticed a failed job.

On one VPS systemd runs it (`OnFailure=clawdbot-alert@%n.service`) when a timer's unit fails; in
cluster mode a failed scheduled run calls it from the worker that ran it (`cluster/maintenance.py`).
The hook is the rule: it writes the journal line, POSTs `ALERT_WEBHOOK_URL` and runs `ALERT_COMMAND`
(from `/etc/clawdbot/alert.env`, which the worker's unit reads like the alert unit does). Nothing
here re-implements it; this only runs it and says whether a configured channel failed.

The alert text is the hook's: what failed, on which host, when, and the command that shows why.
A failure's own message never goes into it, so no secret in an error can reach a chat channel.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import EdgeError

ALERT_HOOK = REPO_ROOT / "scripts" / "alert-hook.sh"
"""The hook in a checkout; an installed wheel carries it at the same place under `_assets/`."""
HOOK_TIMEOUT_S = 120.0
"""As clawdbot-alert@.service's TimeoutStartSec=2min."""
_NAME = re.compile(r"[A-Za-z0-9:_.@\\-]{1,256}")


def raise_alert(name: str, see: str, *, env: Mapping[str, str] | None = None, hook: Path = ALERT_HOOK) -> None:
    """Run the hook once for `name` (a unit or a schedule id), pointing at `see` for the why.

    The hook's lines go to this process's stderr (a worker's journal), as the alert unit's go to its
    own. EdgeError when the hook refuses the name or a configured channel failed."""
    if not _NAME.fullmatch(name):  # not `$`, which matches before a final newline
        raise EdgeError(f"not alerting about {name!r}: not a unit or schedule name")
    try:
        done = subprocess.run(
            ["bash", str(hook), name, see],
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=HOOK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgeError(f"the alert hook {hook} did not run: {type(exc).__name__}") from None
    if done.returncode != 0:
        raise EdgeError(f"the alert hook failed for {name} (exit {done.returncode}); its lines are in this log")
