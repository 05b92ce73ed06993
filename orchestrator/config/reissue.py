"""An older stack file re-issued under a newer config_version: how a rollback rolls forward.

The Worker never adopts a config below the highest version it served (docs/contract.md, "Never
backwards"), so bringing an older config back means deploying it again under a version above that
floor. Only `clawdbot:tenant.config_version` changes; every other line (secrets' ciphertext,
comments, key order) is written back as it was, by the round-trip editor the secret commands use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.config.stack_file import yaml_refusal
from orchestrator.config.stack_roundtrip import edit
from orchestrator.config.stack_yaml import YamlRefused
from orchestrator.config.tenant_config import TENANT_KEY
from orchestrator.core.crypto import MAX_CONFIG_VERSION
from orchestrator.core.errors import ConfigError


def reissue(data: bytes, version: int, *, path: Path) -> bytes:
    """`data` (a tenant's stack file) with `clawdbot:tenant.config_version` set to `version`.

    `path` names the file in errors (as the secret commands name it). Refuses a version the model
    would refuse and a file with no tenant config to re-issue; never writes anything itself.
    """
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_CONFIG_VERSION:
        raise ConfigError(f"{path}: cannot re-issue the config as version {version!r} (1..{MAX_CONFIG_VERSION})")

    def change(tree: Any) -> None:
        config = tree.get("config")
        tenant = config.get(TENANT_KEY) if isinstance(config, dict) else None
        if not isinstance(tenant, dict):
            raise ConfigError(f"{path}: no {TENANT_KEY} mapping to re-issue under a new config_version")
        tenant["config_version"] = version

    try:
        return edit(data, change).encode("utf-8")
    except YamlRefused as exc:
        raise yaml_refusal(path, exc) from None
