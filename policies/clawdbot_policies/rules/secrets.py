"""Business secrets reach Cloudflare only as `secret_text` bindings or encrypted KV envelopes."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .. import constants as c
from ..common import config_strings, tenant_context
from ..context import CONTEXT_SCHEMA
from ..props import get_list, get_str, maps
from ..secretlike import DEFAULT_SECRET_WORDS, find_secret, name_looks_secret

PLAIN_BINDING_TYPES = ("plain_text", "json")
_ENVELOPE_FIELDS = frozenset({"v", "alg", "tenant", "name", "iv", "ct"})

SECRET_HEURISTICS_SCHEMA: dict[str, dict[str, Any]] = {
    "secretWords": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(DEFAULT_SECRET_WORDS),
        "description": "Words that make a binding, KV key or JSON field name look like a secret.",
    },
    "allowedNames": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Exact binding, KV key or JSON field names that look secret but are known not to be.",
    },
}


def _looks_secret(name: str, config: Mapping[str, Any]) -> bool:
    if name in config_strings(config, "allowedNames", ()):
        return False
    return name_looks_secret(name, config_strings(config, "secretWords", DEFAULT_SECRET_WORDS))


def _document_secret(value: Any, config: Mapping[str, Any], path: str = "") -> str | None:
    """Why a JSON document (config, json binding) holds a secret: by value, not by field names alone."""
    return find_secret(
        value,
        config_strings(config, "secretWords", DEFAULT_SECRET_WORDS),
        path,
        allowed_names=config_strings(config, "allowedNames", ()),
    )


def no_plaintext_secret_bindings_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.SCRIPT:
        return
    config = args.get_config()
    script = get_str(args.props, "scriptName") or args.name
    for binding in maps(get_list(args.props, "bindings")):
        kind, name = get_str(binding, "type"), get_str(binding, "name") or "?"
        if kind not in PLAIN_BINDING_TYPES:
            continue
        if _looks_secret(name, config):
            report_violation(
                f"Worker {script}: binding {name} is a {kind} binding but is named like a secret; bind it "
                f"as secret_text or store it encrypted in KV under {c.SECRET_KV_PREFIX}{name} "
                "(add it to clawdbot:tenant.secret_names).",
                None,
            )
            continue
        content = get_str(binding, "text" if kind == "plain_text" else "json")
        reason = _document_secret(content, config, name)
        if content is not None and reason:
            report_violation(
                f"Worker {script}: {kind} binding {reason}; move the secret to clawdbot:secrets so it "
                "reaches the Worker as an encrypted KV envelope.",
                None,
            )


no_plaintext_secret_bindings = ResourceValidationPolicy(
    name="no-plaintext-secret-bindings",
    description="Prohibits plain_text and json Worker bindings that are named like, or carry, a secret.",
    validate=no_plaintext_secret_bindings_validator,
    config_schema=PolicyConfigSchema(properties=dict(SECRET_HEURISTICS_SCHEMA)),
)


def _b64_len(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def envelope_problem(text: str | None, tenant: str | None, name: str) -> str | None:
    """What is wrong with a `secret:<NAME>` KV value, or None for a well-formed envelope."""
    try:
        doc = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        return "the value is not a JSON envelope (plaintext?)"
    extra = sorted(set(doc) - _ENVELOPE_FIELDS)
    if extra:
        return f"the envelope has unexpected fields {', '.join(extra)}"
    if doc.get("v") != c.ENVELOPE_VERSION or doc.get("alg") != c.ENVELOPE_ALG:
        return f"the envelope is not v={c.ENVELOPE_VERSION}, alg={c.ENVELOPE_ALG}"
    if doc.get("name") != name:
        return f"the envelope is sealed for another secret name, not {name}"
    if tenant is not None and doc.get("tenant") != tenant:
        return f"the envelope is sealed for another tenant, not {tenant}"
    if _b64_len(doc.get("iv")) != c.ENVELOPE_IV_BYTES:
        return f"iv is not {c.ENVELOPE_IV_BYTES} bytes of standard base64"
    ct_len = _b64_len(doc.get("ct"))
    if ct_len is None or ct_len < c.GCM_TAG_BYTES:
        return "ct is not base64 AES-GCM ciphertext with its 16-byte tag"
    return None


def kv_secrets_encrypted_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.KV_ENTRY:
        return
    config = args.get_config()
    key = get_str(args.props, "keyName") or ""
    if key.startswith(c.SECRET_KV_PREFIX):
        name = key[len(c.SECRET_KV_PREFIX) :]
        problem = envelope_problem(get_str(args.props, "value"), tenant_context(args).tenant_id, name)
        if problem:
            report_violation(
                f"KV entry {key} ({args.name}) must hold an encrypted envelope, but {problem}; write it "
                "with orchestrator.core.crypto.seal_secret (TenantEdge does this from clawdbot:secrets).",
                None,
            )
        return
    if _looks_secret(key, config):
        report_violation(
            f"KV entry {key} ({args.name}) is named like a secret but is not an envelope; store it as "
            f"{c.SECRET_KV_PREFIX}{key} through clawdbot:secrets.",
            None,
        )
        return
    reason = _document_secret(get_str(args.props, "value"), config)
    if reason:
        report_violation(
            f"KV entry {key} ({args.name}): {reason}; keep secrets out of config and put them in clawdbot:secrets.",
            None,
        )


kv_secrets_encrypted = ResourceValidationPolicy(
    name="kv-secrets-encrypted",
    description="Checks that KV secret entries are AES-GCM envelopes and no other KV value holds a secret.",
    validate=kv_secrets_encrypted_validator,
    config_schema=PolicyConfigSchema(properties={**SECRET_HEURISTICS_SCHEMA, **CONTEXT_SCHEMA}),
)
