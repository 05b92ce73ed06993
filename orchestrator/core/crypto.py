"""The secret relay: what Python writes to KV and the Worker reads back (formats v1).

The byte-level formats are specified in docs/contract.md and their names and constants in
contract/edge-contract.json; this module implements them and nothing else. In short:

- ``derive_key``: ``HKDF-SHA256(relay_key, salt="clawdbot-edge/v1",
  info="clawdbot-edge/v1/<purpose>/<tenant>", L=32)``, one key per purpose.
- ``seal_secret`` / ``open_secret`` (KV ``secret:<NAME>``):
  ``{"v":1,"alg":"A256GCM","tenant","name","iv","ct"}``, AES-256-GCM with
  ``AAD = "clawdbot-edge/v1/secret/<tenant>/<name>"`` and a deterministic (SIV-style) iv.
- ``sign_config`` / ``verify_config`` (KV ``config``): ``{"v":1,"payload":"<JSON text>","mac"}``,
  HMAC-SHA256 over the payload text's exact UTF-8 bytes.
- ``health_token``: ``<ts>.<nonce>.<base64url-no-pad HMAC>``; ``webhook_signature``: base64 HMAC.

Pure: no Pulumi, no network. Errors are ``CryptoError`` (or ``ConfigError`` for a payload that
cannot be signed) and name the tenant, secret name or field at fault, never a key, a plaintext
or the value being checked.

The test vectors the Worker's suite decrypts and verifies (contract/vectors.json) are written by
``python -m orchestrator.testing vectors`` (orchestrator/testing/vectors.py), outside the program.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.core.contract import contract
from orchestrator.core.errors import ConfigError, CryptoError

FORMAT_VERSION = 1
RELAY_KEY_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
MAC_BYTES = 32
HEALTH_NONCE_RE = re.compile(r"[0-9a-f]{16}")

COMPACT_JSON = (",", ":")
"""`json.dumps` separators of every document here (and of the test vectors written from them)."""


# --- keys -------------------------------------------------------------------------------------


def relay_key_from_b64(value: str) -> bytes:
    """Decode a relay key (standard base64, padded, as `RandomBytes.base64` gives it)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        # The value is a secret even when malformed: never echo it.
        raise CryptoError("relay key: not valid standard base64") from None
    if len(raw) != RELAY_KEY_BYTES:
        raise CryptoError(f"relay key: must decode to {RELAY_KEY_BYTES} bytes, got {len(raw)}")
    return raw


def derive_key(relay_key: bytes, tenant: str, purpose: str) -> bytes:
    """The 32-byte key for one purpose (see contract `hkdf.purposes`) of one tenant."""
    _check_relay_key(relay_key)
    _check_tenant(tenant)
    hkdf_contract = contract()["hkdf"]
    if purpose not in hkdf_contract["purposes"].values():
        known = ", ".join(sorted(hkdf_contract["purposes"].values()))
        raise CryptoError(f"unknown key purpose {purpose!r} (known: {known})")
    info = f"{hkdf_contract['info_prefix']}{purpose}/{tenant}".encode()
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hkdf_contract["salt"].encode(),
        info=info,
    ).derive(relay_key)


def purpose_info(role: str) -> str:
    """The HKDF purpose of a role (`config_mac` → `config-mac`), from the contract."""
    value: str = contract()["hkdf"]["purposes"][role]
    return value


def _check_relay_key(relay_key: bytes) -> None:
    if not isinstance(relay_key, bytes | bytearray) or len(relay_key) != RELAY_KEY_BYTES:
        raise CryptoError(f"relay key must be {RELAY_KEY_BYTES} bytes")


def _check_tenant(tenant: str) -> None:
    # A "/" would make "<tenant>/<name>" in the AAD and HKDF info ambiguous between tenants.
    if not isinstance(tenant, str) or not tenant or "/" in tenant:
        raise CryptoError(f"tenant id {tenant!r} is not usable in key derivation (empty or contains '/')")


# --- secret envelopes -------------------------------------------------------------------------


def _aad(tenant: str, name: str) -> bytes:
    prefix: str = contract()["envelope"]["aad_prefix"]
    return f"{prefix}{tenant}/{name}".encode()


def _check_name(tenant: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise CryptoError(f"tenant {tenant!r}: secret name must be a non-empty string")


def b64(data: bytes) -> str:
    """Standard base64 with padding, as text: how every binary field of the formats is written."""
    return base64.b64encode(data).decode("ascii")


def _b64_field(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise CryptoError(f"{what}: must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{what}: not valid standard base64") from None


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: WebCrypto/TextEncoder would silently replace them, so refuse here.
        raise CryptoError(f"{what}: not encodable as UTF-8 (lone surrogate)") from None


def _seal_with(enc_key: bytes, nonce_key: bytes, tenant: str, name: str, plaintext: str) -> str:
    aad = _aad(tenant, name)
    data = _utf8(plaintext, f"tenant {tenant!r} secret {name!r}")
    # Deterministic iv (docs/contract.md): same secret -> same envelope -> no perpetual diff.
    iv = hmac.new(nonce_key, aad + b"\x00" + data, hashlib.sha256).digest()[:IV_BYTES]
    ct = AESGCM(enc_key).encrypt(iv, data, aad)
    envelope = {
        "v": FORMAT_VERSION,
        "alg": contract()["envelope"]["alg"],
        "tenant": tenant,
        "name": name,
        "iv": b64(iv),
        "ct": b64(ct),
    }
    return json.dumps(envelope, separators=COMPACT_JSON, ensure_ascii=False)


def seal_secret(relay_key: bytes, tenant: str, name: str, plaintext: str) -> str:
    """Encrypt one business secret into the KV value text of `secret:<name>`."""
    _check_name(tenant, name)
    if not isinstance(plaintext, str):
        raise CryptoError(f"tenant {tenant!r} secret {name!r}: plaintext must be a string")
    return _seal_with(
        derive_key(relay_key, tenant, purpose_info("secret_envelope")),
        derive_key(relay_key, tenant, purpose_info("envelope_nonce")),
        tenant,
        name,
        plaintext,
    )


def open_secret(relay_key: bytes, tenant: str, name: str, kv_value: str) -> str:
    """Decrypt a KV envelope, checking it was sealed for exactly this tenant and name."""
    _check_name(tenant, name)
    where = f"tenant {tenant!r} secret {name!r}"
    doc = _parse_json_object(kv_value, f"{where}: envelope")
    _expect_version(doc, f"{where}: envelope")
    if doc.get("alg") != contract()["envelope"]["alg"]:
        raise CryptoError(f"{where}: envelope field 'alg' is not {contract()['envelope']['alg']}")
    # Fields are compared before decrypting so a misplaced envelope gets a precise message; the
    # AAD below is built from the expected tenant/name, so the fields alone prove nothing.
    if doc.get("tenant") != tenant:
        raise CryptoError(f"{where}: envelope field 'tenant' does not match")
    if doc.get("name") != name:
        raise CryptoError(f"{where}: envelope field 'name' does not match")
    iv = _b64_field(doc.get("iv"), f"{where}: envelope field 'iv'")
    if len(iv) != IV_BYTES:
        raise CryptoError(f"{where}: envelope field 'iv' must be {IV_BYTES} bytes")
    ct = _b64_field(doc.get("ct"), f"{where}: envelope field 'ct'")
    if len(ct) < TAG_BYTES:
        raise CryptoError(f"{where}: envelope field 'ct' is shorter than the GCM tag")
    key = derive_key(relay_key, tenant, purpose_info("secret_envelope"))
    try:
        data = AESGCM(key).decrypt(iv, ct, _aad(tenant, name))
    except InvalidTag:
        raise CryptoError(
            f"{where}: envelope does not authenticate (wrong relay key, tenant or name, or tampered)"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptoError(f"{where}: decrypted value is not UTF-8") from None


# --- signed config ----------------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    # JSON.parse in the Worker refuses NaN/Infinity; refuse them here too.
    raise ValueError(f"non-standard JSON constant {token}")


def _parse_json_object(text: object, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise CryptoError(f"{what}: must be JSON text")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise CryptoError(f"{what}: not valid JSON") from None
    if not isinstance(value, dict):
        raise CryptoError(f"{what}: must be a JSON object")
    return value


def _expect_version(doc: dict[str, Any], what: str) -> None:
    v = doc.get("v")
    if type(v) is not int or v != FORMAT_VERSION:
        raise CryptoError(f"{what}: field 'v' must be {FORMAT_VERSION}")


MAX_CONFIG_VERSION = 2**53 - 1
"""The Worker holds versions as JS numbers (Number.isSafeInteger); never sign one it would refuse."""


def _check_payload(payload: dict[str, Any], tenant: str, what: str) -> None:
    if payload.get("tenant") != tenant:
        raise CryptoError(f"{what}: payload field 'tenant' does not match tenant {tenant!r}")
    version = payload.get("version")
    if type(version) is not int or not 1 <= version <= MAX_CONFIG_VERSION:
        raise CryptoError(f"{what}: payload field 'version' must be an integer from 1 to {MAX_CONFIG_VERSION}")
    if not isinstance(payload.get("config"), dict):
        raise CryptoError(f"{what}: payload field 'config' must be an object")


def config_payload_text(tenant: str, version: int, config: dict[str, Any]) -> str:
    """The canonical payload JSON text that `sign_config` signs (the Worker never re-serialises it)."""
    where = f"tenant {tenant!r} config"
    if type(version) is not int or not 1 <= version <= MAX_CONFIG_VERSION:
        raise ConfigError(f"{where}: version must be an integer from 1 to {MAX_CONFIG_VERSION}, got {version!r}")
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: config must be an object, got {type(config).__name__}")
    try:
        text = json.dumps(
            {"tenant": tenant, "version": version, "config": config},
            separators=COMPACT_JSON,
            sort_keys=True,
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        # json's message names the offending type or constant, never the surrounding data.
        raise ConfigError(f"{where}: not representable as standard JSON ({exc})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where}: contains a lone surrogate, not encodable as UTF-8") from None
    return text


def config_mac(mac_key: bytes, payload_text: str) -> str:
    """base64 HMAC-SHA256 over the payload text's exact UTF-8 bytes (docs/contract.md)."""
    return b64(hmac.new(mac_key, payload_text.encode("utf-8"), hashlib.sha256).digest())


def config_document(payload_text: str, mac: str) -> str:
    """The KV `config` document around a payload text and its MAC (any MAC: the vectors forge some)."""
    doc = {"v": FORMAT_VERSION, "payload": payload_text, "mac": mac}
    return json.dumps(doc, separators=COMPACT_JSON, ensure_ascii=False)


def sign_config(relay_key: bytes, tenant: str, payload_text: str) -> str:
    """Sign a payload (from `config_payload_text`) into the KV value text of `config`."""
    where = f"tenant {tenant!r} config"
    try:
        _check_payload(_parse_json_object(payload_text, f"{where}: payload"), tenant, where)
        _utf8(payload_text, f"{where}: payload")
    except CryptoError as exc:
        # Signing a payload the Worker would refuse is a caller bug, reported as bad config.
        raise ConfigError(str(exc)) from None
    mac_key = derive_key(relay_key, tenant, purpose_info("config_mac"))
    return config_document(payload_text, config_mac(mac_key, payload_text))


def verify_config(relay_key: bytes, tenant: str, kv_value: str) -> dict[str, Any]:
    """Verify a signed config document and return its payload object."""
    where = f"tenant {tenant!r} config"
    doc = _parse_json_object(kv_value, f"{where}: document")
    _expect_version(doc, f"{where}: document")
    payload_text = doc.get("payload")
    if not isinstance(payload_text, str):
        raise CryptoError(f"{where}: document field 'payload' must be JSON text")
    mac = _b64_field(doc.get("mac"), f"{where}: document field 'mac'")
    if len(mac) != MAC_BYTES:
        raise CryptoError(f"{where}: document field 'mac' must be {MAC_BYTES} bytes")
    mac_key = derive_key(relay_key, tenant, purpose_info("config_mac"))
    expected = hmac.new(mac_key, _utf8(payload_text, f"{where}: payload"), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise CryptoError(f"{where}: MAC does not verify (wrong relay key or tenant, or tampered)")
    payload = _parse_json_object(payload_text, f"{where}: payload")
    _check_payload(payload, tenant, where)
    return payload


# --- health tokens and webhooks ---------------------------------------------------------------


def health_token(relay_key: bytes, tenant: str, now: int, nonce: str | None = None) -> str:
    """An `X-Edge-Health-Token` valid around `now` (unix seconds); a fresh nonce unless given."""
    if type(now) is not int or now < 0:
        raise CryptoError(f"tenant {tenant!r} health token: 'now' must be a non-negative integer")
    if nonce is None:
        nonce = secrets.token_hex(8)
    elif not HEALTH_NONCE_RE.fullmatch(nonce):
        raise CryptoError(f"tenant {tenant!r} health token: nonce must be 16 lowercase hex characters")
    key = derive_key(relay_key, tenant, purpose_info("health_token"))
    message = f"health:{tenant}:{now}:{nonce}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=")
    return f"{now}.{nonce}.{mac.decode('ascii')}"


def webhook_signature(secret: str, body: bytes) -> str:
    """`X-Webhook-Hmac-Sha256` for a raw request body (Shopify-style, standard base64)."""
    key = _utf8(secret, "webhook secret")
    return b64(hmac.new(key, body, hashlib.sha256).digest())
