"""Before an operation on a stack: may it run now, given what a killed run left behind?

The engine finds the debris (`orchestrator.engine.locks`: stale and live locks, pending operations)
and clears what is provably dead; this is the fleet's rule on what remains. A live or unreadable
lock blocks any operation; pending operations block an `up`, which could otherwise create
duplicates of what the killed run created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from orchestrator.fleet.ports import Clearance, Operation


class Debris(Protocol):
    """What the fleet (and the cluster engine's recovery) needs of a recovery report
    (`orchestrator.engine.locks.RecoveryReport`)."""

    @property
    def blocked(self) -> bool: ...

    @property
    def pending(self) -> Sequence[Any]: ...

    @property
    def advice(self) -> tuple[str, ...]: ...


def clearance(debris: Debris, operation: Operation) -> Clearance:
    if debris.blocked:
        return Clearance("; ".join(debris.advice), debris.advice)
    if operation is Operation.UP and len(debris.pending):
        blocked = (
            f"{len(debris.pending)} operations of an interrupted update are pending; clear them first: "
            + "; ".join(debris.advice)
        )
        return Clearance(blocked, debris.advice)
    return Clearance(None, debris.advice)
