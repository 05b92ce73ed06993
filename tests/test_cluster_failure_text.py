"""What a failing activity says is kept in the Temporal cluster's history (its database, its UI,
`temporal workflow describe`): it must be redacted before it leaves the node, as every report is.

`temporalio.testing.ActivityEnvironment` runs an activity function with a real activity context
and no server (temporalio 1.35.0, temporalio/testing/_activity.py), so these need no dev server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.cluster.maintenance import AlertJob, MaintenanceActivities, MaintenanceJob
from orchestrator.config.settings import Settings
from orchestrator.core.errors import EdgeError

TOKEN = "cf-token-0123456789abcdefghij"


def _run(step: Coroutine[Any, Any, object]) -> None:
    """On a loop of its own: `asyncio.run` would leave the thread with no current loop (it sets None
    when done), and later tests in this process that ask for the current loop would fail."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(step)
    finally:
        loop.close()


def _activities(
    *, backup_error: Exception | None = None, alert_error: Exception | None = None
) -> MaintenanceActivities:
    def backup(_: Settings) -> str:
        assert backup_error is not None
        raise backup_error

    def alert(_name: str, _see: str) -> None:
        assert alert_error is not None
        raise alert_error

    return MaintenanceActivities(Settings(), backup=backup, alert=alert)


@pytest.mark.parametrize(
    "text",
    [f"upload refused: Authorization: Bearer {TOKEN}", f"token {TOKEN} rejected", f"x-auth-key={TOKEN}"],
)
def test_a_failed_backup_names_why_without_the_token(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    activities = _activities(backup_error=RuntimeError(text))
    job = MaintenanceJob(kind="backup", project="clawdbot", task_queue="fleet")
    with pytest.raises(ApplicationError) as failed:
        _run(ActivityEnvironment().run(activities.backup, job))
    assert str(failed.value).startswith("backup failed: ")
    assert TOKEN not in str(failed.value)
    assert "[redacted]" in str(failed.value)


def test_a_failed_alert_keeps_no_token_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    activities = _activities(alert_error=EdgeError(f"alert channel said: {TOKEN}"))
    with pytest.raises(ApplicationError) as failed:
        _run(ActivityEnvironment().run(activities.alert, AlertJob(name="clawdbot-drift", see="x")))
    assert TOKEN not in str(failed.value)
    assert "alert channel said" in str(failed.value)
