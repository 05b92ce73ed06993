"""Validate cron expressions the way Cloudflare Cron Triggers accept them (5 fields, UTC).

Cloudflare rejects a bad schedule only at `up`, after other resources changed; checking here makes
the config fail before anything is registered.
"""

from __future__ import annotations

import re

_MONTHS = {
    m: i
    for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=0)}

# (name, low, high, names, extra tokens Cloudflare accepts in this field)
_FIELDS: tuple[tuple[str, int, int, dict[str, int], re.Pattern[str] | None], ...] = (
    ("minute", 0, 59, {}, None),
    ("hour", 0, 23, {}, None),
    ("day of month", 1, 31, {}, re.compile(r"^(L|\d{1,2}W|LW)$")),
    ("month", 1, 12, _MONTHS, None),
    ("day of week", 0, 7, _DAYS, re.compile(r"^([0-7]|[A-Z]{3})(L|#[1-5])$")),
)


def _value(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise ValueError(f"{field} value {token!r} is not a number")
    number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{field} value {number} is outside {low}-{high}")
    return number


def _check_part(part: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    base, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{field} step {step!r} must be a positive number")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    first = _value(start, field, low, high, names)
    if dash and _value(end, field, low, high, names) < first:
        raise ValueError(f"{field} range {base!r} runs backwards")


def validate_cron(expression: str) -> str:
    """Return the expression unchanged or raise ValueError saying which field is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} must have 5 fields (minute hour day month weekday), not {len(fields)}")
    for text, (field, low, high, names, extra) in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            if not part:
                raise ValueError(f"{expression!r}: empty list item in {field}")
            if extra is not None and extra.match(part.upper()):
                continue
            _check_part(part, field, low, high, names)
    return expression
