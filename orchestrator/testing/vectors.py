"""The shared test vectors (contract/vectors.json): written here, decrypted and verified by the Worker.

Known keys, every envelope and signed config the formats allow, and every tampered variant the
Worker must reject. Test tooling, not part of the program: nothing the fleet or the Pulumi program
imports loads this module. ``python -m orchestrator.testing vectors [--check]`` (re)writes or
checks the file.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.config.atomic_file import write_atomically
from orchestrator.core.contract import VECTORS_PATH, contract
from orchestrator.core.crypto import (
    COMPACT_JSON,
    FORMAT_VERSION,
    b64,
    config_document,
    config_mac,
    config_payload_text,
    derive_key,
    health_token,
    purpose_info,
    seal_secret,
    sign_config,
    webhook_signature,
)

VECTORS_COMMAND = "python -m orchestrator.testing vectors"
_VECTOR_TENANT = "acme"
_OTHER_TENANT = "globex"
# Fixed, obviously-not-secret keys: the vectors must be reproducible byte for byte.
_VECTOR_RELAY_KEY = bytes(range(32))
_WRONG_RELAY_KEY = bytes(range(32, 64))


def _flip(encoded: str, index: int) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[index] ^= 0x01
    return b64(bytes(raw))


_DELETE = object()


def _edit(kv_value: str, **changes: Any) -> str:
    doc = json.loads(kv_value)
    for field, value in changes.items():
        if value is _DELETE:
            del doc[field]
        else:
            doc[field] = value
    return json.dumps(doc, separators=COMPACT_JSON, ensure_ascii=False)


def _envelope_vectors(key: bytes, tenant: str) -> list[dict[str, str]]:
    samples = [
        ("WEBHOOK_SECRET", "whsec_3b9f1c2d7e8a4f60b5c1d2e3f4a5b6c7"),
        ("EMPTY_SECRET", ""),
        ("UNICODE_SECRET", "Grüße, 世界! 🔐 — ñ"),
        ("LARGE_SECRET", "".join(f"{i:04x}" for i in range(1024))),
    ]
    return [
        {"name": name, "plaintext": text, "kv_value": seal_secret(key, tenant, name, text)} for name, text in samples
    ]


def _config_vectors(key: bytes, tenant: str) -> list[dict[str, Any]]:
    configs: list[tuple[int, dict[str, Any]]] = [
        (1, {"greeting": "hello", "features": {"webhooks": True, "beta": False}, "limits": [1, 2, 3]}),
        (
            2,
            {
                "greeting": "Grüß Gott — こんにちは 👋",
                "features": {"webhooks": True, "beta": True},
                "nested": {"z": None, "a": {"list": ["x", 0, -7, 2.5]}},
            },
        ),
    ]
    out: list[dict[str, Any]] = []
    for version, config in configs:
        text = config_payload_text(tenant, version, config)
        payload = {"tenant": tenant, "version": version, "config": config}
        out.append({"payload": payload, "payload_text": text, "kv_value": sign_config(key, tenant, text)})
    return out


def _tampered_envelopes(key: bytes, tenant: str, good: dict[str, str]) -> list[dict[str, str]]:
    name, value = good["name"], good["kv_value"]
    doc = json.loads(value)
    other_tenant_env = seal_secret(key, _OTHER_TENANT, name, good["plaintext"])
    other_name_env = seal_secret(key, tenant, "OTHER_SECRET", good["plaintext"])
    short_iv = b64(base64.b64decode(doc["iv"])[:11])
    short_ct = b64(base64.b64decode(doc["ct"])[:15])
    truncated = b64(base64.b64decode(doc["ct"])[:-1])
    rows = [
        ("ct byte flipped", name, _edit(value, ct=_flip(doc["ct"], 0))),
        ("tag byte flipped", name, _edit(value, ct=_flip(doc["ct"], -1))),
        ("ct truncated by one byte", name, _edit(value, ct=truncated)),
        ("iv byte flipped", name, _edit(value, iv=_flip(doc["iv"], 0))),
        ("tenant field names another tenant", name, _edit(value, tenant=_OTHER_TENANT)),
        (
            "sealed for another tenant, tenant field rewritten (AAD/key mismatch)",
            name,
            _edit(other_tenant_env, tenant=tenant),
        ),
        (
            "sealed for another name, name field rewritten (AAD mismatch)",
            name,
            _edit(other_name_env, name=name),
        ),
        ("envelope stored under the wrong KV name", "OTHER_SECRET", value),
        ("alg is not A256GCM", name, _edit(value, alg="A128GCM")),
        ("v is 2", name, _edit(value, v=2)),
        ("v is the string '1'", name, _edit(value, v="1")),
        ("v missing", name, _edit(value, v=_DELETE)),
        ("iv is 11 bytes", name, _edit(value, iv=short_iv)),
        ("iv is not base64", name, _edit(value, iv="!!not-base64!!")),
        ("ct shorter than the tag", name, _edit(value, ct=short_ct)),
        ("ct missing", name, _edit(value, ct=_DELETE)),
        ("not JSON", name, value[:-1]),
        ("JSON array, not an object", name, "[]"),
    ]
    return [{"why": why, "name": n, "kv_value": v} for why, n, v in rows]


def _tampered_configs(key: bytes, tenant: str, good: dict[str, Any]) -> list[dict[str, str]]:
    value: str = good["kv_value"]
    doc = json.loads(value)
    text: str = good["payload_text"]
    acme_mac_key = derive_key(key, tenant, purpose_info("config_mac"))
    other_mac_key = derive_key(key, _OTHER_TENANT, purpose_info("config_mac"))
    other_text = config_payload_text(_OTHER_TENANT, 1, {"greeting": "hello"})
    edited_text = text.replace('"version":1}', '"version":9}')
    if edited_text == text:
        raise RuntimeError("vector config 1 must end with its version field")

    def signed(payload_text: str, mac_key: bytes = acme_mac_key) -> str:
        return config_document(payload_text, config_mac(mac_key, payload_text))

    def unchecked(version: object, config: object) -> str:
        return json.dumps({"config": config, "tenant": tenant, "version": version}, separators=COMPACT_JSON)

    rows = [
        ("mac byte flipped", _edit(value, mac=_flip(doc["mac"], 0))),
        ("payload edited after signing (version bumped)", _edit(value, payload=edited_text)),
        ("other tenant's payload signed with that tenant's key", signed(other_text, other_mac_key)),
        ("this tenant's payload signed with another tenant's key", signed(text, other_mac_key)),
        ("valid MAC, payload names another tenant", signed(other_text)),
        ("signed with the wrong relay key", sign_config(_WRONG_RELAY_KEY, tenant, text)),
        ("valid MAC, version 0", signed(unchecked(0, {}))),
        ("valid MAC, version is a string", signed(unchecked("2", {}))),
        ("valid MAC, version is a float", signed(unchecked(2.5, {}))),
        ("valid MAC, config is not an object", signed(unchecked(2, []))),
        ("valid MAC, payload is not JSON", signed("{not json")),
        ("v is 2", _edit(value, v=2)),
        ("mac missing", _edit(value, mac=_DELETE)),
        ("mac is not base64", _edit(value, mac="%%%")),
        ("mac truncated to 16 bytes", _edit(value, mac=b64(base64.b64decode(doc["mac"])[:16]))),
        ("payload is an object, not JSON text", _edit(value, payload=json.loads(text))),
        ("not JSON", value[:-1]),
    ]
    return [{"why": why, "kv_value": v} for why, v in rows]


def build_vectors() -> dict[str, Any]:
    """The vectors document, deterministic byte for byte."""
    key, tenant = _VECTOR_RELAY_KEY, _VECTOR_TENANT
    purposes = contract()["hkdf"]["purposes"]
    envelopes = _envelope_vectors(key, tenant)
    configs = _config_vectors(key, tenant)
    health = [
        {"now": now, "ts": now, "nonce": nonce, "token": health_token(key, tenant, now, nonce)}
        for now, nonce in [(1767225600, "0123456789abcdef"), (1700000000, "fedcba9876543210")]
    ]
    webhook_bodies = [
        ("whsec_3b9f1c2d7e8a4f60b5c1d2e3f4a5b6c7", '{"id":"evt_1","topic":"orders/create","total":42}'),
        ("whsec_3b9f1c2d7e8a4f60b5c1d2e3f4a5b6c7", '{"id":"evt_2","note":"Grüße 👋"}'),
        ("another-secret", ""),
    ]
    webhooks = [
        {"secret": secret, "body": body, "signature": webhook_signature(secret, body.encode("utf-8"))}
        for secret, body in webhook_bodies
    ]
    return {
        "v": FORMAT_VERSION,
        "generated_by": VECTORS_COMMAND,
        "tenant": tenant,
        "relay_key_b64": b64(key),
        "derived_keys_hex": {p: derive_key(key, tenant, p).hex() for p in purposes.values()},
        "envelopes": envelopes,
        "configs": configs,
        "health_tokens": health,
        "webhooks": webhooks,
        "rejects": {
            "wrong_relay_key_b64": b64(_WRONG_RELAY_KEY),
            "tampered_envelopes": _tampered_envelopes(key, tenant, envelopes[0]),
            "tampered_configs": _tampered_configs(key, tenant, configs[0]),
        },
    }


def vectors_text() -> str:
    return json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    vectors = sub.add_parser("vectors", help="write contract/vectors.json (the Worker's test vectors)")
    vectors.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    vectors.add_argument("--path", type=Path, default=VECTORS_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path: Path = args.path
    fresh = vectors_text()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != fresh:
            state = "missing" if current is None else "out of date"
            print(f"Error: {path} is {state}; run `{VECTORS_COMMAND}`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    write_atomically(path, fresh, mode=0o644)
    print(f"wrote {path}")
    return 0
