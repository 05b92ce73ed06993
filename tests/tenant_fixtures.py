"""Valid tenant configs to derive test cases from, and the canaries secrets are traced with."""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.core.contract import REPO_ROOT
from orchestrator.offline.cloudflare_mock import FakeAccount
from orchestrator.offline.session import OfflineRun, OfflineSession

ZONE_ID = "00112233445566778899aabbccddeeff"
ZONE = "acme.example.com"
CANARY = "canary-7f3e-do-not-leak-Zq9"
"""A business secret value that must never appear in plaintext anywhere the tests can look."""


def tenant(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "acme",
        "zone": {"id": ZONE_ID, "name": ZONE},
        "routes": ["shop.acme.example.com/*"],
        "custom_domains": ["edge.acme.example.com"],
        "crons": ["*/15 * * * *"],
        "config_version": 2,
        "config": {"greeting": 'hello </script> "quoted" ünïcode'},
        "secret_names": ["WEBHOOK_SECRET"],
    }
    base.update(copy.deepcopy(overrides))
    return base


def stack_config(spec: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "clawdbot:tenant": spec if spec is not None else tenant(),
        "clawdbot:secrets": {"WEBHOOK_SECRET": CANARY} if secrets is None else secrets,
    }


def account(*zones: tuple[str, str]) -> FakeAccount:
    return FakeAccount(zones=dict(zones or [(ZONE_ID, ZONE)]))


def session(
    config: dict[str, Any],
    stack: str = "prod.acme",
    fake: FakeAccount | None = None,
    secret_keys: list[str] | None = None,
) -> OfflineSession:
    """The program over `config` as the engine hands it (decrypted); `secret_keys` as the engine marks them."""
    fake = fake if fake is not None else account()
    return OfflineSession(REPO_ROOT, stack, config=config, account=fake, secret_keys=secret_keys)


def run(config: dict[str, Any] | None = None, stack: str = "prod.acme", fake: FakeAccount | None = None) -> OfflineRun:
    return session(config if config is not None else stack_config(), stack, fake).run()
