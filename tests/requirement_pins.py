"""Exact pins (`name==version`) of a requirements file or a pyproject dependency list, by normalised name.

The one reader the packaging, policy-pack, plugin and setup tests share: comments, `\\` line
continuations, `--hash` options, extras and environment markers are ignored; anything that is not
an exact pin fails the calling test, naming the line.
"""

from __future__ import annotations

import re
from pathlib import Path

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)(?:\s*;.*)?")


def normalised(name: str) -> str:
    """PEP 503's normal form: `Pulumi_Cloudflare` and `pulumi-cloudflare` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins_of(text: str, source: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = line.split(" --", 1)[0].strip()
        match = _PIN.fullmatch(requirement)
        assert match, f"{source}: {requirement!r} is not an exact pin"
        pins[normalised(match.group(1))] = match.group(2)
    return pins


def read_pins(path: Path) -> dict[str, str]:
    return pins_of(path.read_text(encoding="utf-8"), path.name)
