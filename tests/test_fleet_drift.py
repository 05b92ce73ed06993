"""Drift is decided from structured engine events (as the CLI's event log shapes them), with the
documented ignore list applied only where it is safe."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.automation import EngineEvent

from orchestrator.core.drift import (
    IGNORED,
    ResourceStep,
    StepCollector,
    classify,
    step_from_event,
)
from orchestrator.core.resource_types import D1, SCRIPT

URN = f"urn:pulumi:prod.acme::clawdbot::clawdbot:index:TenantEdge${SCRIPT}::acme-worker"
D1_URN = f"urn:pulumi:prod.acme::clawdbot::clawdbot:index:TenantEdge${D1}::acme-db"


def state(urn: str, type_: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "urn": urn, "id": "x", "parent": "", "provider": "", "outputs": outputs}


def event(kind: str, op: str, urn: str = URN, type_: str = SCRIPT, **meta: Any) -> EngineEvent:
    metadata = {"op": op, "urn": urn, "type": type_, "provider": "", **meta}
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": metadata}})


def test_a_real_property_change_is_drift() -> None:
    report = classify([step_from_event(event("resOutputsEvent", "update", diffs=["content", "startupTimeMs"]))])  # type: ignore[list-item]
    assert report.drifted
    assert report.findings[0].properties == ("content",)
    assert report.ignored[0].properties == ("startupTimeMs",)
    assert "acme-worker: update content" in report.describe()


def test_only_known_perpetual_diffs_is_not_drift() -> None:
    step = ResourceStep(URN, SCRIPT, "update", ("modifiedOn", "etag", "migrations[0].tag"))
    report = classify([step])
    assert not report.drifted
    assert len(report.ignored) == 1 and "3 known" not in report.describe()
    assert report.describe() == "no drift (1 known perpetual diffs ignored)"


def test_ignore_list_never_hides_a_replacement() -> None:
    report = classify([ResourceStep(D1_URN, D1, "replace", ("primaryLocationHint",))])
    assert report.drifted and report.findings[0].op == "replace"


def test_ignore_rules_are_per_type() -> None:
    # fileSize is noise on D1, but the same name on the script would be real.
    assert not classify([ResourceStep(D1_URN, D1, "update", ("fileSize",))]).drifted
    assert classify([ResourceStep(URN, SCRIPT, "update", ("fileSize",))]).drifted


def test_update_without_property_list_is_drift() -> None:
    assert classify([ResourceStep(URN, SCRIPT, "update", ())]).drifted


def test_same_and_stack_resource_are_not_drift() -> None:
    steps = [
        ResourceStep(URN, SCRIPT, "same"),
        ResourceStep(
            "urn:pulumi:prod.acme::clawdbot::pulumi:pulumi:Stack::clawdbot-prod.acme",
            "pulumi:pulumi:Stack",
            "update",
            ("outputs",),
        ),
    ]
    assert not classify(steps, summary={"same": 7}).drifted


def test_summary_with_changes_but_no_steps_is_never_clean() -> None:
    report = classify([], summary={"same": 5, "update": 1})
    assert report.drifted and report.findings[0].op == "unclassified"
    assert report.findings[0].properties == ("update=1",)


def test_refresh_compares_old_and_new_outputs_when_no_diffs_are_given() -> None:
    ev = event(
        "resOutputsEvent",
        "refresh",
        old=state(URN, SCRIPT, {"content": "a", "etag": "1"}),
        new=state(URN, SCRIPT, {"content": "b", "etag": "2"}),
    )
    step = step_from_event(ev)
    assert step is not None and step.diffs == ("content", "etag")
    report = classify([step])
    assert report.findings[0].properties == ("content",)


def test_refresh_that_found_the_resource_gone_is_drift() -> None:
    ev = event("resOutputsEvent", "refresh", old=state(URN, SCRIPT, {"content": "a"}))
    report = classify([step_from_event(ev)])  # type: ignore[list-item]
    assert report.drifted and report.findings[0].op == "deleted-outside-pulumi"


def test_refresh_pre_event_alone_is_not_mistaken_for_a_deletion() -> None:
    ev = event("resourcePreEvent", "refresh", old=state(URN, SCRIPT, {"content": "a"}))
    step = step_from_event(ev)
    assert step is not None and not step.gone
    assert not classify([step]).drifted


def test_collector_keeps_the_outputs_event_over_the_pre_event() -> None:
    collect = StepCollector()
    collect(event("resourcePreEvent", "update", diffs=["content"]))
    collect(event("resOutputsEvent", "update", diffs=["etag"]))
    collect(EngineEvent.from_json({"sequence": 3, "timestamp": 0, "stdoutEvent": {"message": "x", "color": ""}}))
    assert [s.diffs for s in collect.steps] == [("etag",)]


@pytest.mark.parametrize("rule", IGNORED)
def test_every_ignore_rule_has_a_reason(rule: Any) -> None:
    assert rule.reason and rule.type.startswith("cloudflare:") and rule.property[0].islower()
