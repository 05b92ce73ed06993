"""Where the local edge keeps its files: one state directory, 0700, owned by the operator.

<state>/kv/ and <state>/d1/     persisted KV namespaces and D1 databases (one store per tenant)
<state>/relay-keys/<t>.g<n>     per-tenant relay keys, 0600 (the local stand-in for RandomBytes in state)
<state>/control.token           bearer token of the control worker, 0600
<state>/runtime.pid             pid of the runner (also its process group: workerd runs inside it)
<state>/runtime.json            written by the runner once every tenant serves: ports and what each got
<state>/runtime.log             the runner's and workerd's output (never a secret: the runner redacts)
<state>/lock                    serialises up/down/push-config
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.private_files import ensure_private_dir


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def kv_dir(self) -> Path:
        return self.root / "kv"

    @property
    def d1_dir(self) -> Path:
        return self.root / "d1"

    @property
    def keys_dir(self) -> Path:
        return self.root / "relay-keys"

    @property
    def control_token(self) -> Path:
        return self.root / "control.token"

    @property
    def pid_file(self) -> Path:
        return self.root / "runtime.pid"

    @property
    def ready_file(self) -> Path:
        return self.root / "runtime.json"

    @property
    def log_file(self) -> Path:
        return self.root / "runtime.log"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    def ensure(self) -> None:
        """Create the state directory (0700) or refuse one that others can read (relay keys live here)."""
        for directory in (self.root, self.keys_dir):
            ensure_private_dir(directory, "local edge state directory")
