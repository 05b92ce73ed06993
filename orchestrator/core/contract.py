"""The edge contract shared with the Worker: one JSON file, read here and embedded there.

See docs/contract.md for the formats. Nothing else in Python hard-codes these names.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()
IN_CHECKOUT = (_HERE.parents[2] / "contract" / "edge-contract.json").is_file()
"""Running from a checkout of the repository (tests, demo, `pulumi up`), not an installed wheel."""
REPO_ROOT = _HERE.parents[2] if IN_CHECKOUT else _HERE.parents[1] / "_assets"
"""Where the program's files live: the contract, worker sources and migrations, the policy pack and the
Pulumi project files. In a checkout that is its root; an installed wheel carries copies of them
under `orchestrator/_assets/` (pyproject.toml's force-include), so the same paths hold either way."""
CONTRACT_PATH = REPO_ROOT / "contract" / "edge-contract.json"
VECTORS_PATH = REPO_ROOT / "contract" / "vectors.json"
WORKER_SRC = REPO_ROOT / "worker_src"
MIGRATIONS_DIR = WORKER_SRC / "migrations"


@cache
def contract() -> dict[str, Any]:
    """The contract object exactly as the Worker receives it."""
    data: dict[str, Any] = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    return data


def binding_name(role: str) -> str:
    name: str = contract()["bindings"][role]
    return name


def hkdf_purpose(purpose: str) -> str:
    value: str = contract()["hkdf"]["purposes"][purpose]
    return value


def config_kv_key() -> str:
    key: str = contract()["kv_keys"]["config"]
    return key


def secret_kv_key(name: str) -> str:
    prefix: str = contract()["kv_keys"]["secret_prefix"]
    return prefix + name


def health_path() -> str:
    path: str = contract()["health"]["path"]
    return path
