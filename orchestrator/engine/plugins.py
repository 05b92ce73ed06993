"""Provider plugins: the exact versions the installed SDKs were generated for, installed once per run.

Every Pulumi provider SDK ships a `pulumi-plugin.json` (`{"resource": true, "name": "cloudflare",
"version": "6.23.1"}` for pulumi_cloudflare); the Python language host reads the same files to tell
the engine which plugins a program needs (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
`pulumiPluginJSONPathsScript`). Left to each stack, N CLIs that find a plugin missing download it at
once into the same plugin cache; installing the exact versions first, once, makes every stack find
them (fleet-lessons #7).
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.core.errors import SetupError

PLUGIN_FILE = "pulumi-plugin.json"


@dataclass(frozen=True, order=True)
class PluginSpec:
    name: str
    version: str
    kind: str = "resource"


def installed_plugins(distributions: Iterable[importlib.metadata.Distribution] | None = None) -> tuple[PluginSpec, ...]:
    """The resource plugins named by the `pulumi-plugin.json` of every installed distribution."""
    found: set[PluginSpec] = set()
    for dist in importlib.metadata.distributions() if distributions is None else distributions:
        for file in dist.files or ():
            if file.name != PLUGIN_FILE:
                continue
            where = f"{dist.metadata['Name']} ({file})"
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise SetupError(f"provider plugin metadata {where} cannot be read") from None
            if not isinstance(data, dict) or not data.get("resource"):
                continue
            name, version = data.get("name"), data.get("version")
            if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                raise SetupError(f"provider plugin metadata {where} has no name or version")
            found.add(PluginSpec(name, version.removeprefix("v")))
    return tuple(sorted(found))
