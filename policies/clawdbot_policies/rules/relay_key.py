"""Every Worker gets its tenant's relay key as the one `secret_text` binding RELAY_KEY.

The engine hands the analyzer secrets already unwrapped, so Pulumi-side secretness cannot be
seen here; what can be checked is the Cloudflare side (secret_text: write-only, never shown in
the dashboard) and that the key material is generated at the contract's size (RandomBytes).
"""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .. import constants as c
from ..props import as_int, get_list, get_str, has_key, maps

RELAY_KEY_BYTES = 32
"""docs/contract.md: the relay key is 32 random bytes."""


def relay_key_binding_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == c.RANDOM_BYTES and args.name.endswith("-relay-key"):
        length = as_int(args.props["length"], 0) if has_key(args.props, "length") else 0
        if length != RELAY_KEY_BYTES:
            report_violation(
                f"Relay key {args.name} is {length} bytes; the contract requires RandomBytes(length="
                f"{RELAY_KEY_BYTES}).",
                None,
            )
        return
    if args.resource_type != c.SCRIPT:
        return
    script = get_str(args.props, "scriptName") or args.name
    if re.match(c.PLATFORM_SCRIPT_RE, script):
        return  # the platform's dispatch and outbound Workers serve no tenant
    relay = [b for b in maps(get_list(args.props, "bindings")) if get_str(b, "name") == c.RELAY_KEY_BINDING]
    if not relay:
        report_violation(
            f"Worker {script} has no {c.RELAY_KEY_BINDING} binding; bind the tenant's relay key as "
            f'{{"name": "{c.RELAY_KEY_BINDING}", "type": "secret_text", "text": <RandomBytes.base64>}}.',
            None,
        )
        return
    if len(relay) > 1:
        report_violation(f"Worker {script} binds {c.RELAY_KEY_BINDING} {len(relay)} times; keep exactly one.", None)
    for binding in relay:
        kind = get_str(binding, "type")
        if kind != "secret_text":
            report_violation(
                f"Worker {script}: {c.RELAY_KEY_BINDING} is bound as {kind or 'an untyped binding'}; it must "
                "be type secret_text so Cloudflare stores it write-only.",
                None,
            )
        elif not has_key(binding, "text"):
            report_violation(f"Worker {script}: {c.RELAY_KEY_BINDING} has no text; bind the relay key's base64.", None)


relay_key_binding = ResourceValidationPolicy(
    name="relay-key-binding",
    description="Checks that every Worker binds exactly one 32-byte relay key RELAY_KEY as secret_text.",
    validate=relay_key_binding_validator,
)
