"""Whether two config payloads are the same, decided as the Worker decides it.

The Worker refuses a KV document whose version equals the one it holds but whose payload is not
`sameJson` to it (`version_conflict`, worker_src/src/config.js; docs/contract.md, "Signed config
document"), and reports the tenant degraded. Every Python check of "same version, other content"
(the fleet's guard before `up`, the local edge's `push-config`) asks this module, so it refuses
exactly what the Worker would.

`sameJson` (worker_src/src/configdoc.js) compares values parsed by `JSON.parse`: objects by their
own keys in any order, arrays item by item, primitives with `===`. So a number is a double (`1`
and `1.0` are the same, so are `0` and `-0`, and integers past 2**53 that round to one double, and
every literal past the double range is `Infinity`), and `true` is not `1` (as it is to Python's
`==`). `payload_identity` is a digest of that reading, so it can be kept in stack outputs and
records and compared later without the payload.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _as_worker_reads_it(value: object) -> Any:
    """`value` (parsed JSON) as a tagged tree in which equal trees are exactly `sameJson` values."""
    if value is None:
        return ["null"]
    if isinstance(value, bool):  # before int: True is an int to Python, never a number to JSON.parse
        return ["bool", value]
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer literal past the double range: JSON.parse gives ±Infinity
            number = math.inf if value > 0 else -math.inf
        return ["number", (number + 0.0).hex()]  # + 0.0 turns -0.0 into 0.0, as `===` does
    if isinstance(value, str):
        return ["string", value]
    if isinstance(value, list | tuple):
        return ["array", [_as_worker_reads_it(item) for item in value]]
    if isinstance(value, dict):
        return ["object", {str(key): _as_worker_reads_it(item) for key, item in value.items()}]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def payload_identity(payload: object) -> str:
    """sha256 (hex) of a config payload as the Worker compares payloads: equal iff `sameJson`."""
    tree = json.dumps(_as_worker_reads_it(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(tree.encode("utf-8", "surrogatepass")).hexdigest()


def payload_text_identity(payload_text: str) -> str:
    """`payload_identity` of a payload given as the JSON text that is signed (`config_payload_text`)."""
    return payload_identity(json.loads(payload_text))


def same_payload(a: object, b: object) -> bool:
    """True when the Worker's `sameJson` holds the two payloads equal."""
    same: bool = _as_worker_reads_it(a) == _as_worker_reads_it(b)
    return same
