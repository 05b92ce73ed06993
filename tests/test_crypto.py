"""The secret relay formats: round trips, tamper detection, and no secret in any error."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from orchestrator.core import crypto
from orchestrator.core.errors import ConfigError, CryptoError

KEY = bytes(range(100, 132))
OTHER_KEY = bytes(range(132, 164))
TENANT = "acme"
CANARY = "canary-Zq8!v2-do-not-leak"
CANARY_CONFIG = {"api": {"token_hint": "hint-canary-77"}, "n": 1}


def _flip_field(kv_value: str, field: str, index: int = 0) -> str:
    doc = json.loads(kv_value)
    raw = bytearray(base64.b64decode(doc[field]))
    raw[index] ^= 0x80
    doc[field] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(doc)


def _with(kv_value: str, **changes: Any) -> str:
    doc = json.loads(kv_value)
    doc.update(changes)
    return json.dumps(doc)


def _assert_clean(exc: BaseException, *secrets: str) -> None:
    message = str(exc)
    for secret in (*secrets, CANARY, KEY.hex(), base64.b64encode(KEY).decode()):
        assert secret not in message, f"secret material in error message: {message!r}"


# --- keys -------------------------------------------------------------------------------------


def test_derived_keys_differ_per_purpose_and_tenant() -> None:
    purposes = ["secret-envelope", "envelope-nonce", "config-mac", "health-token"]
    keys = {(t, p): crypto.derive_key(KEY, t, p) for t in ("acme", "globex") for p in purposes}
    assert all(len(k) == 32 for k in keys.values())
    assert len(set(keys.values())) == len(keys)


def test_derive_key_rejects_unknown_purpose_and_bad_inputs() -> None:
    with pytest.raises(CryptoError, match="unknown key purpose 'signing'"):
        crypto.derive_key(KEY, TENANT, "signing")
    with pytest.raises(CryptoError, match="32 bytes"):
        crypto.derive_key(KEY[:31], TENANT, "config-mac")
    for tenant in ("", "a/b"):
        with pytest.raises(CryptoError, match="tenant id"):
            crypto.derive_key(KEY, tenant, "config-mac")


def test_relay_key_from_b64_round_trip_and_errors_never_echo() -> None:
    encoded = base64.b64encode(KEY).decode()
    assert crypto.relay_key_from_b64(encoded + "\n") == KEY
    short = base64.b64encode(KEY[:16]).decode()
    with pytest.raises(CryptoError, match="32 bytes, got 16") as info:
        crypto.relay_key_from_b64(short)
    _assert_clean(info.value, short)
    bad = "not*base64*" + CANARY
    with pytest.raises(CryptoError, match="not valid standard base64") as info:
        crypto.relay_key_from_b64(bad)
    _assert_clean(info.value, bad)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --- envelopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["", "x", CANARY, "Grüße 🔐 世界", "z" * 5000])
def test_envelope_round_trip(plaintext: str) -> None:
    sealed = crypto.seal_secret(KEY, TENANT, "WEBHOOK_SECRET", plaintext)
    assert crypto.open_secret(KEY, TENANT, "WEBHOOK_SECRET", sealed) == plaintext
    if plaintext:
        assert plaintext not in sealed


def test_envelope_format_and_determinism() -> None:
    sealed = crypto.seal_secret(KEY, TENANT, "API_KEY", CANARY)
    doc = json.loads(sealed)
    assert list(doc) == ["v", "alg", "tenant", "name", "iv", "ct"]
    assert (doc["v"], doc["alg"], doc["tenant"], doc["name"]) == (1, "A256GCM", TENANT, "API_KEY")
    assert len(base64.b64decode(doc["iv"])) == 12
    assert len(base64.b64decode(doc["ct"])) == len(CANARY.encode()) + 16
    # Same input, same envelope (no perpetual diff); any input change, another nonce.
    assert crypto.seal_secret(KEY, TENANT, "API_KEY", CANARY) == sealed
    ivs = {
        json.loads(crypto.seal_secret(k, t, n, p))["iv"]
        for k, t, n, p in [
            (KEY, TENANT, "API_KEY", CANARY),
            (KEY, TENANT, "API_KEY", CANARY + "!"),
            (KEY, TENANT, "OTHER", CANARY),
            (KEY, "globex", "API_KEY", CANARY),
            (OTHER_KEY, TENANT, "API_KEY", CANARY),
        ]
    }
    assert len(ivs) == 5


def _sealed() -> str:
    return crypto.seal_secret(KEY, TENANT, "WEBHOOK_SECRET", CANARY)


@pytest.mark.parametrize(
    ("why", "kv_value", "tenant", "name", "key", "message"),
    [
        ("flipped ct byte", _flip_field(_sealed(), "ct", 0), TENANT, "WEBHOOK_SECRET", KEY, "authenticate"),
        ("flipped tag byte", _flip_field(_sealed(), "ct", -1), TENANT, "WEBHOOK_SECRET", KEY, "authenticate"),
        ("flipped iv byte", _flip_field(_sealed(), "iv", 3), TENANT, "WEBHOOK_SECRET", KEY, "authenticate"),
        ("wrong relay key", _sealed(), TENANT, "WEBHOOK_SECRET", OTHER_KEY, "authenticate"),
        ("asked for another tenant", _sealed(), "globex", "WEBHOOK_SECRET", KEY, "'tenant' does not match"),
        ("asked for another name", _sealed(), TENANT, "OTHER", KEY, "'name' does not match"),
        (
            "tenant field rewritten: AAD binds the real tenant",
            _with(_sealed(), tenant="globex"),
            "globex",
            "WEBHOOK_SECRET",
            KEY,
            "authenticate",
        ),
        (
            "name field rewritten: AAD binds the real name",
            _with(_sealed(), name="OTHER"),
            TENANT,
            "OTHER",
            KEY,
            "authenticate",
        ),
        ("alg", _with(_sealed(), alg="A128GCM"), TENANT, "WEBHOOK_SECRET", KEY, "'alg'"),
        ("v is 2", _with(_sealed(), v=2), TENANT, "WEBHOOK_SECRET", KEY, "'v' must be 1"),
        ("v is true", _with(_sealed(), v=True), TENANT, "WEBHOOK_SECRET", KEY, "'v' must be 1"),
        ("iv not b64", _with(_sealed(), iv="@@@@"), TENANT, "WEBHOOK_SECRET", KEY, "'iv': not valid"),
        ("iv is a number", _with(_sealed(), iv=7), TENANT, "WEBHOOK_SECRET", KEY, "'iv': must be a base64"),
        ("iv 8 bytes", _with(_sealed(), iv="AAAAAAAAAAA="), TENANT, "WEBHOOK_SECRET", KEY, "12 bytes"),
        ("ct tiny", _with(_sealed(), ct="AAAA"), TENANT, "WEBHOOK_SECRET", KEY, "shorter than the GCM tag"),
        ("not json", "{", TENANT, "WEBHOOK_SECRET", KEY, "not valid JSON"),
        ("NaN", '{"v":NaN}', TENANT, "WEBHOOK_SECRET", KEY, "not valid JSON"),
        ("array", "[1]", TENANT, "WEBHOOK_SECRET", KEY, "must be a JSON object"),
    ],
)
def test_envelope_tampering_detected(why: str, kv_value: str, tenant: str, name: str, key: bytes, message: str) -> None:
    with pytest.raises(CryptoError, match=re.escape(message)) as info:
        crypto.open_secret(key, tenant, name, kv_value)
    assert f"tenant {tenant!r} secret {name!r}" in str(info.value), why
    _assert_clean(info.value, kv_value)


def test_seal_rejects_unencodable_and_non_string_input_without_echo() -> None:
    with pytest.raises(CryptoError, match="lone surrogate") as info:
        crypto.seal_secret(KEY, TENANT, "X", CANARY + "\ud800")
    _assert_clean(info.value)
    with pytest.raises(CryptoError, match="plaintext must be a string"):
        crypto.seal_secret(KEY, TENANT, "X", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(CryptoError, match="secret name"):
        crypto.seal_secret(KEY, TENANT, "", CANARY)


# --- signed config ----------------------------------------------------------------------------


def test_config_payload_text_is_canonical() -> None:
    text = crypto.config_payload_text(TENANT, 3, {"b": 1, "a": {"é": "ü", "c": [True, None]}})
    assert text == '{"config":{"a":{"c":[true,null],"é":"ü"},"b":1},"tenant":"acme","version":3}'


@pytest.mark.parametrize(
    ("version", "config", "message"),
    [
        (0, {}, "version must be an integer from 1 to 9007199254740991"),
        (True, {}, "version must be an integer from 1 to 9007199254740991"),
        ("2", {}, "version must be an integer from 1 to 9007199254740991"),
        (2**53, {}, "version must be an integer from 1 to 9007199254740991"),
        (1, [], "config must be an object"),
        (1, {"x": float("nan")}, "not representable as standard JSON"),
        (1, {"x": {1, 2}}, "not representable as standard JSON"),
        (1, {"x": "\udcff"}, "lone surrogate"),
    ],
)
def test_config_payload_text_rejects(version: Any, config: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        crypto.config_payload_text(TENANT, version, config)
    assert "tenant 'acme' config" in str(info.value)


def test_config_round_trip() -> None:
    text = crypto.config_payload_text(TENANT, 2, CANARY_CONFIG)
    signed = crypto.sign_config(KEY, TENANT, text)
    doc = json.loads(signed)
    assert list(doc) == ["v", "payload", "mac"] and doc["v"] == 1 and doc["payload"] == text
    assert len(base64.b64decode(doc["mac"])) == 32
    assert crypto.verify_config(KEY, TENANT, signed) == {
        "tenant": TENANT,
        "version": 2,
        "config": CANARY_CONFIG,
    }


@pytest.mark.parametrize(
    ("payload_text", "message"),
    [
        (crypto.config_payload_text("globex", 1, {}), "'tenant' does not match"),
        ('{"config":{},"tenant":"acme","version":0}', "'version' must be an integer"),
        ('{"config":[],"tenant":"acme","version":1}', "'config' must be an object"),
        ("not json", "not valid JSON"),
    ],
)
def test_sign_config_refuses_payloads_the_worker_would_refuse(payload_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        crypto.sign_config(KEY, TENANT, payload_text)


def _signed(version: int = 1) -> str:
    return crypto.sign_config(KEY, TENANT, crypto.config_payload_text(TENANT, version, CANARY_CONFIG))


def _forged(payload_text: str, key: bytes = KEY, tenant: str = TENANT) -> str:
    mac_key = crypto.derive_key(key, tenant, "config-mac")
    return json.dumps({"v": 1, "payload": payload_text, "mac": crypto.config_mac(mac_key, payload_text)})


@pytest.mark.parametrize(
    ("why", "kv_value", "key", "message"),
    [
        ("flipped mac", _flip_field(_signed(), "mac", 5), KEY, "MAC does not verify"),
        ("wrong relay key", _signed(), OTHER_KEY, "MAC does not verify"),
        (
            "payload edited",
            _with(_signed(), payload=json.loads(_signed())["payload"].replace('"version":1', '"version":7')),
            KEY,
            "MAC does not verify",
        ),
        (
            "signed by another tenant's derived key",
            _forged(crypto.config_payload_text(TENANT, 1, {}), tenant="globex"),
            KEY,
            "MAC does not verify",
        ),
        (
            "valid MAC over another tenant's payload",
            _forged(crypto.config_payload_text("globex", 1, {})),
            KEY,
            "'tenant' does not match",
        ),
        ("valid MAC, version 0", _forged('{"config":{},"tenant":"acme","version":0}'), KEY, "'version'"),
        ("valid MAC, version 1.0", _forged('{"config":{},"tenant":"acme","version":1.0}'), KEY, "'version'"),
        ("valid MAC, not JSON", _forged("{"), KEY, "payload: not valid JSON"),
        ("v", _with(_signed(), v=2), KEY, "'v' must be 1"),
        ("payload object", _with(_signed(), payload={}), KEY, "'payload' must be JSON text"),
        ("mac short", _with(_signed(), mac="AAAA"), KEY, "'mac' must be 32 bytes"),
        ("mac missing", json.dumps({"v": 1, "payload": "{}"}), KEY, "'mac': must be a base64"),
    ],
)
def test_config_tampering_detected(why: str, kv_value: str, key: bytes, message: str) -> None:
    with pytest.raises(CryptoError, match=re.escape(message)) as info:
        crypto.verify_config(key, TENANT, kv_value)
    assert "tenant 'acme' config" in str(info.value), why
    _assert_clean(info.value, "hint-canary-77", kv_value)


# --- health tokens and webhooks ---------------------------------------------------------------


def test_health_token_shape_and_determinism() -> None:
    token = crypto.health_token(KEY, TENANT, 1_700_000_000, "0123456789abcdef")
    ts, nonce, mac = token.split(".")
    assert (ts, nonce) == ("1700000000", "0123456789abcdef")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", mac)
    assert crypto.health_token(KEY, TENANT, 1_700_000_000, "0123456789abcdef") == token
    assert crypto.health_token(KEY, "globex", 1_700_000_000, "0123456789abcdef") != token
    fresh = {crypto.health_token(KEY, TENANT, 1_700_000_000).split(".")[1] for _ in range(5)}
    assert len(fresh) == 5 and all(re.fullmatch(r"[0-9a-f]{16}", n) for n in fresh)


@pytest.mark.parametrize(("now", "nonce"), [(-1, None), (1, "ABCDEF0123456789"), (1, "abc"), (1, "g" * 16)])
def test_health_token_rejects_bad_inputs(now: int, nonce: str | None) -> None:
    with pytest.raises(CryptoError, match="tenant 'acme' health token"):
        crypto.health_token(KEY, TENANT, now, nonce)


def test_webhook_signature_is_shopify_style() -> None:
    # Independent computation with the standard library as the reference.
    import hashlib
    import hmac

    body = b'{"id":"1"}'
    expected = base64.b64encode(hmac.new(b"sekret", body, hashlib.sha256).digest()).decode()
    assert crypto.webhook_signature("sekret", body) == expected
    assert crypto.webhook_signature("sekret", body + b" ") != expected
