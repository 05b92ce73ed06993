"""Cloudflare platform limits and freshness, checked before an `up` hits them half-way through.

Defaults follow Cloudflare's published limits (Free plan: 3 MB compressed script, 5 cron
triggers); a paid account raises them through policy config.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from .. import constants as c
from ..common import config_int
from ..props import get_list, get_map, get_str, maps

DEFAULT_MAX_COMPAT_AGE_DAYS = 365
DEFAULT_MAX_SCRIPT_BYTES = 3 * 1024 * 1024
DEFAULT_MAX_CRON_SCHEDULES = 5


def compatibility_date_fresh_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.SCRIPT:
        return
    script = get_str(args.props, "scriptName") or args.name
    raw = get_str(args.props, "compatibilityDate")
    if not raw:
        report_violation(f"Worker {script} has no compatibilityDate; pin one (e.g. the platform default).", None)
        return
    try:
        date = dt.date.fromisoformat(raw)
    except ValueError:
        report_violation(f"Worker {script}: compatibilityDate {raw!r} is not YYYY-MM-DD.", None)
        return
    max_age = config_int(args.get_config(), "maxAgeDays", DEFAULT_MAX_COMPAT_AGE_DAYS)
    age = (dt.date.today() - date).days
    if age < 0:
        report_violation(f"Worker {script}: compatibilityDate {raw} is in the future; Cloudflare rejects it.", None)
    elif age > max_age:
        report_violation(
            f"Worker {script}: compatibilityDate {raw} is {age} days old (limit {max_age}); move it forward "
            "after testing the Worker against the newer runtime behaviour.",
            None,
        )


compatibility_date_fresh = ResourceValidationPolicy(
    name="compatibility-date-fresh",
    description="Checks that every Worker pins a compatibility date that is not older than the configured age.",
    validate=compatibility_date_fresh_validator,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={
            "maxAgeDays": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_COMPAT_AGE_DAYS,
                "description": "Oldest acceptable compatibility date, in days before today.",
            }
        }
    ),
)


def script_bytes(args: ResourceValidationArgs) -> bytes:
    """The script's modules as uploaded: `content` plus every inline `files` module."""
    parts = [(get_str(args.props, "content") or "").encode()]
    files = get_map(args.props, "files")
    for name in sorted(files):
        module = files[name]
        encoded = get_str(module, "contentBase64") if hasattr(module, "keys") else None
        if encoded:
            try:
                parts.append(base64.b64decode(encoded))
            except (binascii.Error, ValueError):
                parts.append(encoded.encode())
    return b"".join(parts)


def script_size_limit_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.SCRIPT:
        return
    limit = config_int(args.get_config(), "maxCompressedBytes", DEFAULT_MAX_SCRIPT_BYTES)
    # Cloudflare measures the limit after gzip compression.
    size = len(gzip.compress(script_bytes(args), mtime=0))
    if size > limit:
        script = get_str(args.props, "scriptName") or args.name
        report_violation(
            f"Worker {script} is {size} bytes gzip-compressed, over the plan limit of {limit}; shrink "
            "the embedded config or raise maxCompressedBytes for a paid plan.",
            None,
        )


script_size_limit = ResourceValidationPolicy(
    name="script-size-limit",
    description="Checks that a Worker's modules fit the plan's compressed script size limit.",
    validate=script_size_limit_validator,
    config_schema=PolicyConfigSchema(
        properties={
            "maxCompressedBytes": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_SCRIPT_BYTES,
                "description": "Largest gzip-compressed script (3 MiB Free, 10 MiB Paid).",
            }
        }
    ),
)


def cron_schedules_limit_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != c.CRON_TRIGGER:
        return
    schedules = [get_str(s, "cron") for s in maps(get_list(args.props, "schedules"))]
    limit = config_int(args.get_config(), "maxSchedules", DEFAULT_MAX_CRON_SCHEDULES)
    if len(schedules) > limit:
        script = get_str(args.props, "scriptName") or args.name
        report_violation(
            f"Cron trigger {args.name} gives {script} {len(schedules)} schedules, over the limit of {limit}; "
            "merge schedules or raise maxSchedules for a paid plan.",
            None,
        )
    if len(set(schedules)) != len(schedules):
        report_violation(f"Cron trigger {args.name} lists the same schedule twice; each counts toward the limit.", None)


cron_schedules_limit = ResourceValidationPolicy(
    name="cron-schedules-limit",
    description="Checks that a Worker's cron schedules stay under the configured limit.",
    validate=cron_schedules_limit_validator,
    config_schema=PolicyConfigSchema(
        properties={
            "maxSchedules": {
                "type": "integer",
                "minimum": 0,
                "default": DEFAULT_MAX_CRON_SCHEDULES,
                "description": "Most cron schedules one Worker may have (Cloudflare: 5 per account on Free).",
            }
        }
    ),
)
