"""Writing a new stack file: one config object, every value as JSON, read back before it lands.

JSON is valid YAML whose strings are all double-quoted, so no scalar can read one way under
YAML 1.1 (PyYAML), another under YAML 1.2 or the Pulumi CLI's go-yaml (`1e5`, `0o17`, `012` are
numbers in some and text in others; the stack-file loader refuses such plain scalars). The text
is written beside the target, checked by `check` (the reader's own validation), then linked into
place, which never replaces a file that appeared meanwhile, or renamed over one when asked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.atomic_file import staged_beside, sync_directory
from orchestrator.core.errors import ConfigError


def render_stack_file(header: str, key: str, value: Mapping[str, Any]) -> str:
    """`header` (comment lines), then `config:` with `key` holding `value`, one field a line."""
    lines = [header, "config:\n", f"  {key}:\n"]
    lines += [f"    {field}: {json.dumps(item, sort_keys=True, ensure_ascii=False)}\n" for field, item in value.items()]
    return "".join(lines)


def put_in_place(path: Path, text: str, check: Callable[[Path], None], *, replace: bool) -> None:
    """Write `text` beside `path`, `check` that copy, then move it to `path` (0600, fsynced).

    `replace=False`: a file at `path` (also one created meanwhile) is never replaced.
    """
    with staged_beside(path, text.encode("utf-8")) as tmp:
        check(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ConfigError(f"{path} already exists; nothing was changed") from None
    sync_directory(path.parent)
