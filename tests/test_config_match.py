"""`core.config_match` says "same payload" exactly when the Worker's `sameJson` does.

The Worker refuses a KV document at the version it holds whose payload is not `sameJson` to the
held one (`version_conflict`, worker_src/src/config.js `check`); every Python check of "same
version, other content" asks `core.config_match`. Each pair below is JSON text, parsed by both
sides: Python by `json.loads`, the Worker's own `sameJson` (worker_src/src/configdoc.js) by
`JSON.parse` in node, so the two can only agree by implementing the same rule.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from orchestrator.core.config_match import payload_identity, payload_text_identity, same_payload
from orchestrator.core.contract import WORKER_SRC
from orchestrator.core.crypto import config_payload_text

# (a, b, the Worker holds them the same)
PAIRS: list[tuple[str, str, bool]] = [
    ('{"a":1}', '{"a":1}', True),
    ('{"a":1,"b":2}', '{"b":2,"a":1}', True),  # key order is not content
    ('{"a":1}', '{"a":1.0}', True),  # one double to JSON.parse
    ('{"a":0}', '{"a":-0}', True),  # 0 === -0
    ('{"a":0.0}', '{"a":-0.0}', True),
    ('{"a":0.1}', '{"a":0.10000000000000001}', True),  # the same double
    ('{"a":9007199254740993}', '{"a":9007199254740992}', True),  # past 2**53: rounds to one double
    ('{"a":1' + "0" * 400 + "}", '{"a":1e999}', True),  # both Infinity to JSON.parse
    ('{"a":-1' + "0" * 400 + "}", '{"a":1e999}', False),
    ('{"a":1}', '{"a":true}', False),  # Python's == holds True == 1; the Worker does not
    ('{"a":0}', '{"a":false}', False),
    ('{"a":[1,true]}', '{"a":[true,1]}', False),
    ('{"a":null}', '{"a":false}', False),
    ('{"a":null}', "{}", False),  # a key with null is not a missing key
    ('{"a":"1"}', '{"a":1}', False),
    ('{"a":[1,2]}', '{"a":[2,1]}', False),  # arrays keep their order
    ('{"a":[]}', '{"a":{}}', False),
    ('{"a":{}}', '{"a":{"b":null}}', False),
    ('{"a":"\\u00e9"}', '{"a":"e\\u0301"}', False),  # no Unicode normalisation
    ('{"a":"\\ud83d\\ude00"}', '{"a":"\U0001f600"}', True),  # one string, two spellings
    ('{"__proto__":1}', "{}", False),  # an own key to JSON.parse like any other
    ('{"a":{"b":[{"c":1}]}}', '{"a":{"b":[{"c":1,"d":null}]}}', False),
    (
        '{"tenant":"acme","version":3,"config":{"greeting":"Hello","n":2}}',
        '{"config":{"n":2.0,"greeting":"Hello"},"version":3,"tenant":"acme"}',
        True,
    ),
    (
        '{"tenant":"acme","version":3,"config":{"greeting":"Hello"}}',
        '{"tenant":"acme","version":3,"config":{"greeting":"Hello!"}}',
        False,
    ),
]

SAME_JSON = """
const { sameJson } = await import(process.argv[1]);
const pairs = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(pairs.map(([a, b]) => sameJson(JSON.parse(a), JSON.parse(b)))));
"""


@pytest.mark.parametrize(("a", "b", "same"), PAIRS)
def test_same_payload_and_identity_follow_the_worker(a: str, b: str, same: bool) -> None:
    left, right = json.loads(a), json.loads(b)
    assert same_payload(left, right) is same and same_payload(right, left) is same
    assert (payload_identity(left) == payload_identity(right)) is same


def test_the_worker_s_own_same_json_agrees_on_every_pair() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the Worker's sameJson")
    module = (WORKER_SRC / "src" / "configdoc.js").as_uri()
    # CommonJS eval (for `require`) with a top-level-await-free body: wrap it in an async function.
    script = f"(async () => {{ {SAME_JSON} }})().catch((e) => {{ console.error(e); process.exit(1); }});"
    done = subprocess.run(
        [node, "-e", script, module],
        input=json.dumps([[a, b] for a, b, _ in PAIRS]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [same for _, _, same in PAIRS]


def test_the_identity_of_a_signed_payload_text_is_that_of_its_object() -> None:
    text = config_payload_text("acme", 3, {"greeting": "Hello", "flag": True})
    assert payload_text_identity(text) == payload_identity(json.loads(text))
    assert payload_text_identity(text) != payload_text_identity(config_payload_text("acme", 3, {"greeting": "Hello"}))
    assert payload_text_identity(text) != payload_text_identity(
        config_payload_text("acme", 4, json.loads(text)["config"])
    )


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()])
def test_a_value_json_cannot_hold_is_refused_not_guessed(value: object) -> None:
    with pytest.raises(TypeError, match="not a JSON value"):
        payload_identity({"a": value})
