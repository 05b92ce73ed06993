"""What the executor tests share: a stand-in `PulumiCommand` that answers in the CLI's output formats.

It records what we send (argv, env, work dir) so tests can check it and how results and errors
are mapped; it never stands for an operation having worked (tests that need the real CLI are
marked `needs_pulumi_cli`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

from orchestrator.config.settings import Settings
from orchestrator.engine.stacks import AutomationExecutor

PASSPHRASE = "correct horse battery staple"
API_TOKEN = "cf-api-token-should-never-leak"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
URN = f"urn:pulumi:prod.acme::clawdbot::{SCRIPT}::acme-worker"
STACK_FILE = """encryptionsalt: v1:c2FsdA==:v1:abc:def
config:
  clawdbot:tenant:
    id: acme
  clawdbot:secrets:
    WEBHOOK_SECRET:
      secure: v1:ciphertext-only
"""


class FakeCli(PulumiCommand):
    """Stand-in for the CLI: records each call, answers in the CLI's output formats."""

    def __init__(self) -> None:
        self.command = "pulumi"
        self.version = VersionInfo(3, 200, 0)  # file-based event log, as the CLI used before 3.205
        self.calls: list[tuple[list[str], str, dict[str, str]]] = []
        self.stacks: set[str] = set()
        self.failures: dict[str, tuple[str, str]] = {}
        """sub-command -> (stdout, stderr) to fail with."""
        self.events: list[dict[str, Any]] = []
        self.outputs: dict[str, tuple[Any, bool]] = {}

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Callable[[str], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
    ) -> CommandResult:
        self.calls.append((list(args), cwd, dict(additional_env)))
        stack = (
            args[args.index("--stack") + 1] if "--stack" in args else args[2] if args[:2] == ["stack", "init"] else ""
        )
        sub = " ".join(args[:2]) if args[0] == "stack" else args[0]
        if sub in self.failures:
            stdout, stderr = self.failures[sub]
            raise create_command_error(CommandResult(stdout=stdout, stderr=stderr, code=255))
        if sub == "stack select" and stack not in self.stacks:
            raise create_command_error(CommandResult("", f"error: no stack named '{stack}' found", 255))
        if sub == "stack init":
            self.stacks.add(stack)
        if "--event-log" in args:
            self._write_events(args[args.index("--event-log") + 1])
        if on_output:
            on_output("Updating (prod.acme): done")
        return CommandResult(self._stdout(sub, args), "", 0)

    def _write_events(self, path: str) -> None:
        lines = [
            *self.events,
            {"sequence": 99, "timestamp": 0, "summaryEvent": self._summary()},
            {"sequence": 100, "timestamp": 0, "cancelEvent": {}},
        ]
        with open(path, "a", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line) + "\n")

    def _summary(self) -> dict[str, Any]:
        ops: dict[str, int] = {}
        for event in self.events:
            op = event.get("resOutputsEvent", {}).get("metadata", {}).get("op")
            if op:
                ops[op] = ops.get(op, 0) + 1
        return {"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": ops or {"same": 9}, "PolicyPacks": {}}

    def _stdout(self, sub: str, args: list[str]) -> str:
        if sub == "stack output":
            shown = "--show-secrets" in args
            return json.dumps({k: (v if shown or not s else "[secret]") for k, (v, s) in self.outputs.items()})
        if sub == "stack history":
            return json.dumps(
                [
                    {
                        "kind": "update",
                        "startTime": "2025-01-01T00:00:00.000Z",
                        "message": "",
                        "environment": {},
                        "config": {},
                        "result": "succeeded",
                        "endTime": "2025-01-01T00:01:00.000Z",
                        "version": 2,
                        "resourceChanges": {"update": 1, "same": 8},
                    }
                ]
            )
        return ""


def last(cli: FakeCli, command: str) -> list[str]:
    return next(args for args, _, _ in reversed(cli.calls) if args[0] == command)


def program() -> None:
    raise AssertionError("the stand-in CLI never runs the program")


def executor(
    settings: Settings, cli: FakeCli, base_url: str | None = "http://127.0.0.1:9999/client/v4"
) -> AutomationExecutor:
    return AutomationExecutor(settings, command=cli, program=program, base_url=base_url)


def stack_settings(tmp_path: Path) -> Settings:
    """A project with one tenant (acme), an owner-only passphrase file and private dirs under tmp_path."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clawdbot\nruntime: python\n")
    (project / "Pulumi.prod.acme.yaml").write_text(STACK_FILE)
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE)
    passphrase.chmod(0o600)
    return Settings(
        project_dir=project,
        state_dir=tmp_path / "state",
        passphrase_file=passphrase,
        work_root=tmp_path / "work",
        audit_log=tmp_path / "audit.jsonl",
    )
