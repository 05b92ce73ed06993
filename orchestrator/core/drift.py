"""Decide drift from structured engine events, never from exit codes (pulumi#8992).

`preview --expect-no-changes` and `refresh --preview-only` make the CLI exit non-zero for both
"something changed" and "something broke", so we run them without that flag, collect the engine's
step events, and classify each resource step here. Properties that change on their own at
Cloudflare or that the provider never reads back would report drift forever; they are listed in
`IGNORED` with the reason, and only ever ignored for in-place updates and refreshes: a create,
delete or replacement is always drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.core.resource_types import CUSTOM_DOMAIN, D1, KV_NAMESPACE, SCRIPT


@dataclass(frozen=True)
class IgnoreRule:
    """A known perpetual diff: `property` (engine camelCase, top level) of resources of `type`."""

    type: str
    property: str
    reason: str


IGNORED: tuple[IgnoreRule, ...] = (
    *(
        IgnoreRule(SCRIPT, prop, "computed by Cloudflare on every upload (TF#5522, #7326)")
        for prop in (
            "startupTimeMs",
            "modifiedOn",
            "createdOn",
            "etag",
            "handlers",
            "namedHandlers",
            "hasModules",
            "hasAssets",
            "lastDeployedFrom",
            "migrationTag",
            "placementStatus",
            "placementMode",
        )
    ),
    IgnoreRule(SCRIPT, "migrations", "write-only since TF PR #5775; never read back"),
    IgnoreRule(D1, "primaryLocationHint", "no_refresh in the provider: never read back"),
    IgnoreRule(D1, "fileSize", "grows with the tenant's data"),
    IgnoreRule(D1, "numTables", "changes with migrations applied by the D1 migration step"),
    IgnoreRule(KV_NAMESPACE, "supportsUrlEncoding", "computed by Cloudflare"),
    IgnoreRule(CUSTOM_DOMAIN, "certId", "Cloudflare re-issues edge certificates on its own"),
)
"""The documented ignore list (also printed by `python -m orchestrator drift --help`)."""

NO_CHANGE_OPS = frozenset({"same", "read", "refresh"})
IGNORABLE_OPS = frozenset({"update", "refresh"})
SKIPPED_TYPES = ("pulumi:pulumi:Stack",)
_TOP = re.compile(r"^[^.\[]+")


@dataclass(frozen=True)
class ResourceStep:
    """What the engine plans (or found, for refresh) for one resource."""

    urn: str
    type: str
    op: str
    diffs: tuple[str, ...] = ()
    """Changed property paths as the engine reports them (`bindings[0].text`)."""
    gone: bool = False
    """Refresh found the resource deleted outside Pulumi."""


@dataclass(frozen=True)
class DriftFinding:
    urn: str
    type: str
    op: str
    properties: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class DriftReport:
    """Drift of one stack. `drifted` is what decides the exit code."""

    findings: tuple[DriftFinding, ...] = ()
    ignored: tuple[DriftFinding, ...] = ()
    summary: Mapping[str, int] | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    def describe(self) -> str:
        if not self.findings:
            extra = f" ({len(self.ignored)} known perpetual diffs ignored)" if self.ignored else ""
            return "no drift" + extra
        parts = [f"{f.name}: {f.op} {', '.join(f.properties) or ''}".strip() for f in self.findings[:5]]
        more = f" and {len(self.findings) - 5} more" if len(self.findings) > 5 else ""
        return "; ".join(parts) + more


def _top(path: str) -> str:
    match = _TOP.match(path)
    return match.group(0) if match else path


def _ignored(type_: str, path: str, rules: Iterable[IgnoreRule]) -> bool:
    top = _top(path)
    return any(rule.type == type_ and rule.property == top for rule in rules)


def classify(
    steps: Iterable[ResourceStep],
    summary: Mapping[str, int] | None = None,
    ignore: Iterable[IgnoreRule] = IGNORED,
) -> DriftReport:
    """Turn resource steps (and the engine's change summary as a cross-check) into a report."""
    rules = tuple(ignore)
    findings: list[DriftFinding] = []
    ignored: list[DriftFinding] = []
    seen_change = False
    for step in steps:
        if step.type.startswith(SKIPPED_TYPES):
            continue
        if step.gone:
            findings.append(DriftFinding(step.urn, step.type, "deleted-outside-pulumi", ()))
            seen_change = True
            continue
        if step.op in NO_CHANGE_OPS and not step.diffs:
            continue
        seen_change = True
        if step.op in IGNORABLE_OPS and step.diffs:
            real = tuple(p for p in step.diffs if not _ignored(step.type, p, rules))
            noise = tuple(p for p in step.diffs if _ignored(step.type, p, rules))
            if noise:
                ignored.append(DriftFinding(step.urn, step.type, step.op, noise))
            if real:
                findings.append(DriftFinding(step.urn, step.type, step.op, real))
            continue
        # Creates, deletes, replacements, or an update the engine gave no property list for.
        findings.append(DriftFinding(step.urn, step.type, step.op, step.diffs))
    changed_in_summary = {op: n for op, n in (summary or {}).items() if op not in NO_CHANGE_OPS and n}
    if changed_in_summary and not seen_change:
        # The summary says something changes but no step told us what: never call that clean.
        detail = tuple(f"{op}={n}" for op, n in sorted(changed_in_summary.items()))
        findings.append(DriftFinding("<summary>", "<unknown>", "unclassified", detail))
    return DriftReport(tuple(findings), tuple(ignored), dict(summary) if summary else None)


def _changed_keys(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[str, ...]:
    old, new = old or {}, new or {}
    return tuple(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)))


def step_from_event(event: Any) -> ResourceStep | None:
    """Adapt a `pulumi.automation.EngineEvent` (pre or outputs event) to a `ResourceStep`.

    Refresh steps often carry no `diffs`; then the changed keys come from comparing the old and
    new outputs the event carries.
    """
    pre = getattr(event, "resource_pre_event", None)
    outputs = getattr(event, "res_outputs_event", None)
    source = outputs or pre
    if source is None or source.metadata is None:
        return None
    meta = source.metadata
    op = getattr(meta.op, "value", meta.op)
    diffs = tuple(meta.diffs or ())
    gone = False
    # Only the outputs event of a refresh knows what was found; its pre event has no `new` yet.
    if op == "refresh" and outputs is not None and not diffs and meta.old is not None:
        gone = meta.new is None
        diffs = () if gone else _changed_keys(meta.old.outputs, meta.new.outputs)
    return ResourceStep(urn=meta.urn, type=meta.type, op=str(op), diffs=diffs, gone=gone)


class StepCollector:
    """`on_event` callback that keeps the last step seen per URN (outputs events win over pre events)."""

    def __init__(self) -> None:
        self._steps: dict[str, ResourceStep] = {}

    def __call__(self, event: Any) -> None:
        step = step_from_event(event)
        if step is None:
            return
        if getattr(event, "res_outputs_event", None) is not None or step.urn not in self._steps:
            self._steps[step.urn] = step

    @property
    def steps(self) -> list[ResourceStep]:
        return list(self._steps.values())
