"""Is this VPS able to run stacks: the pinned Pulumi CLI, the passphrase file it will be given, the policy pack."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors

from orchestrator.config.private_files import check_private_file
from orchestrator.config.settings import Settings
from orchestrator.core.errors import ConfigError, PulumiCliMissingError, SetupError


def pinned_cli_version() -> str:
    """The CLI version matching the pinned SDK (requirements.txt): the one to install."""
    return importlib.metadata.version("pulumi")


def install_hint() -> str:
    """How to get the CLI this SDK needs: the one hint every check gives (engine, fleet, doctor)."""
    version = pinned_cli_version()
    return (
        f"install the Pulumi CLI {version} with scripts/setup-vps.sh (pinned, checksum-verified), or "
        f"`curl -fsSL https://get.pulumi.com | sh -s -- --version {version}` and put ~/.pulumi/bin on PATH "
        f"(or set CLAWDBOT_PULUMI_ROOT)"
    )


def pulumi_command(root: Path | None = None) -> auto.PulumiCommand:
    """The CLI wrapper, built once per run (it runs `pulumi version` on construction)."""
    try:
        return auto.PulumiCommand(root=str(root) if root else None)
    except FileNotFoundError:
        where = f"{root}/bin/pulumi" if root else "`pulumi` on PATH"
        raise PulumiCliMissingError(f"Pulumi CLI not found ({where}): {install_hint()}") from None
    except auto_errors.InvalidVersionError as exc:
        raise SetupError(f"Pulumi CLI is too old for this SDK ({exc}): {install_hint()}") from None


def check_passphrase_file(path: Path) -> None:
    """Refuse a passphrase file that is missing or fails the owner-only rule. Never reads it.

    A setup error: the fleet stops, since every stack would fail alike.
    """
    try:
        check_private_file(path, "passphrase file")
    except ConfigError as exc:
        raise SetupError(str(exc)) from None


def check_policy_pack(settings: Settings) -> None:
    """Refuse to run stacks without the policy pack (or with an unreadable pack config)."""
    pack = settings.policy_pack_dir
    if not (pack / "PulumiPolicy.yaml").is_file():
        raise SetupError(f"policy pack {pack}: no PulumiPolicy.yaml there; set CLAWDBOT_POLICY_PACK_DIR")
    config = settings.policy_config
    if config is None:
        return
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"policy config {config} does not exist") from None
    except (OSError, ValueError) as exc:
        raise SetupError(f"policy config {config} is not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict):
        raise SetupError(f"policy config {config} must be a JSON object of policy name -> settings")
