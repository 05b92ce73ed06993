"""An offline plan as a document people review: what each resource gets, with secrets masked.

Secret inputs show as `[secret]` except the structural keys that say what a binding is; long text
shows as its size; the provider reference is left out. Used by `plan` (text or `--json`); the JSON
form is canonical (resources by type and name, keys sorted) so the same stack gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.core.masking import SECRET_MASK
from orchestrator.offline.session import OfflineRun, RegisteredResource

STRUCTURAL_KEYS = frozenset({"name", "type", "namespaceId", "id", "keyName"})
"""Inside a secret container these stay visible: they say what a binding is, never what it holds."""
HIDDEN_INPUTS = frozenset({"__provider"})
MAX_TEXT = 80


def _mask(value: Any, secret: bool, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, secret, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secret, key) for v in value]
    if secret and key not in STRUCTURAL_KEYS:
        return SECRET_MASK
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"<{len(value.encode())} bytes>"
    return value


def _reviewable(resource: RegisteredResource) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for key, value in resource.inputs.items():
        if key in HIDDEN_INPUTS:
            continue
        secret = any(p == key or p.startswith(key + ".") or p.startswith(key + "[") for p in resource.secret_paths)
        if key == "files" and isinstance(value, dict):
            inputs[key] = sorted(value)
            continue
        inputs[key] = _mask(value, secret, key)
    return inputs


def plan_document(run: OfflineRun) -> dict[str, Any]:
    return {
        "stack": run.stack,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "protect": r.protect,
                "inputs": _reviewable(r),
            }
            for r in run.resources
        ],
        "outputs": {k: (SECRET_MASK if k in run.secret_outputs else v) for k, v in run.outputs.items()},
    }


def plan_json(document: dict[str, Any]) -> str:
    """The document for scripts and diffs: same input, same bytes, whatever the registration order."""
    resources = sorted(document["resources"], key=lambda r: (r["type"], r["name"]))
    return json.dumps({**document, "resources": resources}, indent=2, ensure_ascii=False, sort_keys=True)
