"""What each kind of backup holds, from the settings."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.backup.snapshot import Source
from orchestrator.config.atomic_file import make_private_dirs
from orchestrator.config.settings import Settings
from orchestrator.engine.locks import BOOKKEEPING
from orchestrator.engine.state_store import BucketState, state_of

STACK_CONFIG_PATTERNS = ("Pulumi.yaml", "Pulumi.*.yaml")


@contextmanager
def state_sources(settings: Settings) -> Iterator[list[Source]]:
    """The Pulumi state and the stack config files (the tenant registry and its secrets).

    A file backend is read in place. A shared one (R2) is first copied, object by object, into an
    owner-only scratch directory under the work root, removed afterwards: the backup then holds the
    same `.pulumi/` tree a file backend has, and `backup restore` gives a state directory back.
    """
    config = Source("config", settings.project_dir, STACK_CONFIG_PATTERNS)
    store = state_of(settings)
    if not isinstance(store, BucketState):
        yield [Source("state", settings.state_dir), config]
        return
    make_private_dirs(settings.work_root)
    with tempfile.TemporaryDirectory(prefix="state-copy-", dir=settings.work_root) as scratch:
        store.copy_to(BOOKKEEPING, Path(scratch))
        yield [Source("state", Path(scratch)), config]


def escrow_sources(settings: Settings) -> list[Source]:
    """The state passphrase file alone: losing it makes every state backup useless."""
    path = settings.passphrase_file
    return [Source("escrow", path.parent, (path.name,))]
