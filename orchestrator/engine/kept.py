"""What `destroy` keeps on purpose (protected resources: the tenant's D1 database), and how to remove it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.config.settings import Settings
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.names import tenant_flag
from orchestrator.engine.locks import State, checkpoint_resources
from orchestrator.engine.workdirs import StackPaths
from orchestrator.fleet.ports import KeptResource


@dataclass(frozen=True)
class Leftovers:
    """The real resources still in a stack's checkpoint (not the stack, components or providers)."""

    unprotected: tuple[KeptResource, ...]
    protected: tuple[KeptResource, ...]
    """What `destroy` keeps on purpose (the tenant's D1 database)."""


def leftovers(state: State, project: str, stack: str) -> Leftovers:
    """Read from the checkpoint file, no engine: what a `destroy` has not removed."""
    unprotected: list[KeptResource] = []
    protected: list[KeptResource] = []
    for r in checkpoint_resources(state, project, stack):
        kind = str(r.get("type", "?"))
        if not r.get("custom", True) or kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:"):
            continue
        (protected if r.get("protect") else unprotected).append(KeptResource(str(r.get("urn", "?")), kind))
    return Leftovers(tuple(unprotected), tuple(protected))


def kept_protected(state: State, project: str, stack: str) -> tuple[KeptResource, ...]:
    """Protected custom resources still in the stack's checkpoint (read from the file, no engine)."""
    return leftovers(state, project, stack).protected


@dataclass(frozen=True)
class RemovalCommands:
    """How to get rid of what `destroy` kept: delete it for good, or drop the stack and keep the data."""

    delete: tuple[str, ...]
    """Unprotect each kept resource, then destroy again: the data is gone for good."""
    keep_data: str
    """Drop the stack from the state backend; the resources stay at Cloudflare, unmanaged."""

    def describe(self) -> str:
        delete = " && ".join(self.delete)
        return f"to delete it for good run `{delete}`; or, to keep the data and drop the stack, run `{self.keep_data}`"


def removal_commands(settings: Settings, stack: str, kept: Sequence[KeptResource]) -> RemovalCommands:
    """The exact commands, run by hand and on purpose (the fleet never deletes protected data).

    They run the Pulumi CLI in the stack's work dir (its Pulumi.yaml names the backend) with the
    passphrase given as a file path, never as a value.
    """
    work_dir = StackPaths.of(settings, stack).work_dir
    prefix = (
        f"cd {shlex.quote(str(work_dir))} && PULUMI_BACKEND_URL={shlex.quote(settings.backend_url)} "
        f"PULUMI_CONFIG_PASSPHRASE_FILE={shlex.quote(str(settings.passphrase_file.resolve()))}"
    )
    unprotect = tuple(f"{prefix} pulumi state unprotect --stack {stack} --yes {shlex.quote(k.urn)}" for k in kept)
    destroy = f"python -m orchestrator destroy {tenant_flag(stack)} --yes"
    return RemovalCommands(
        delete=(*unprotect, f"cd {shlex.quote(str(REPO_ROOT))} && {destroy}"),
        keep_data=f"{prefix} pulumi stack rm --stack {stack} --force --yes",
    )


def describe_kept(settings: Settings, stack: str, kept: Sequence[KeptResource]) -> str:
    names = ", ".join(f"{k.kind} {k.name}" for k in kept)
    return f"kept protected {names} (its data survives); {removal_commands(settings, stack, kept).describe()}"
