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

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.errors import PermissionsError, SetupError

DIR_MODE = 0o700


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
        """Create the state directory (0700) or refuse one that others can read."""
        try:
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            self.keys_dir.mkdir(mode=DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise SetupError(f"local edge state directory {self.root}: cannot be created ({exc.strerror})") from None
        for directory in (self.root, self.keys_dir):
            mode = stat.S_IMODE(os.stat(directory).st_mode)
            if mode & 0o077:
                # Relay keys live here: a group- or world-readable directory would expose them.
                raise PermissionsError(
                    f"local edge state directory {directory} has mode {mode:04o}; "
                    f"it must be 0700 (chmod 700 {directory})"
                )
