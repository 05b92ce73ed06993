"""Print `<kind> <name> <version>` for each Pulumi provider plugin the installed SDKs declare.

Run with the venv's python by scripts/setup-vps.sh, which installs exactly these. It reads what
the Python language host reads (pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go,
`determinePluginDependency`): each distribution's top-level `pulumi-plugin.json`; `resource:
false` means no plugin; a missing name defaults to the distribution name without `pulumi-`. Unlike
the language host we refuse a file without a version rather than guess one from the package.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys


def declared_plugins() -> list[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for dist in importlib.metadata.distributions():
        for file in dist.files or ():
            if file.name != "pulumi-plugin.json" or len(file.parts) != 2:
                continue
            meta = json.loads(file.read_text(encoding="utf-8"))
            if not meta.get("resource"):
                continue
            name = meta.get("name") or dist.metadata["Name"].removeprefix("pulumi-").removeprefix("pulumi_")
            version = meta.get("version")
            if not isinstance(version, str) or not version:
                raise SystemExit(f"{dist.metadata['Name']}: {file} declares no plugin version")
            found.add(("resource", str(name), version.removeprefix("v")))
    return sorted(found)


if __name__ == "__main__":
    for kind, name, version in declared_plugins():
        sys.stdout.write(f"{kind} {name} {version}\n")
