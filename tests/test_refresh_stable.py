"""No perpetual diff after a refresh: every optional attribute the provider reads back is set.

The trap (issue 11, item 4): an attribute that is Optional but not Computed in the Terraform schema
behind pulumi-cloudflare, left unset by the program, while the provider's Read copies the API's value
into state. The next preview compares "unset" with that value and reports a change after every
refresh. Sources (details in /work/notes/upstream-11.md):

- terraform-provider-cloudflare v5.22.0 internal/services/d1_database/schema.go:73-76
  (`read_replication` Optional only) and model.go:22 (`json:"read_replication,optional"`, no
  `no_refresh`); Read unmarshals the GET answer into the model.
- same tag, internal/services/workers_script/schema.go:684-687 (`observability.logs.head_sampling_rate`
  Optional only, "Default is 1"); Read copies `GET .../scripts/<name>/settings` into the model.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.tenant_edge import READ_REPLICATION_DEFAULT
from orchestrator.config.tenant_config import load_platform_spec, tenant_stacks
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.drift import IGNORED, ResourceStep, classify
from orchestrator.core.resource_types import D1, SCRIPT
from orchestrator.offline.session import run_offline


@pytest.mark.parametrize("stack", tenant_stacks(REPO_ROOT))
def test_d1_read_replication_is_always_explicit(stack: str) -> None:
    (database,) = run_offline(REPO_ROOT, stack).of_type(D1)
    assert database.inputs["readReplication"] == {"mode": READ_REPLICATION_DEFAULT}
    assert READ_REPLICATION_DEFAULT in ("auto", "disabled")  # the schema's only values


@pytest.mark.parametrize("stack", tenant_stacks(REPO_ROOT))
def test_worker_log_sampling_rate_is_always_explicit(stack: str) -> None:
    (script,) = run_offline(REPO_ROOT, stack).of_type(SCRIPT)
    observability: dict[str, Any] = script.inputs["observability"]
    rate = load_platform_spec(REPO_ROOT).logs_sampling_rate
    assert observability["headSamplingRate"] == rate
    assert observability["logs"]["headSamplingRate"] == rate


def test_a_read_replication_diff_is_drift_not_a_known_perpetual_diff() -> None:
    # Fixed by setting the attribute, never by hiding it: a real change of mode must still show.
    assert not any(rule.type == D1 and rule.property == "readReplication" for rule in IGNORED)
    for op in ("update", "refresh"):
        step = ResourceStep(
            urn="urn:pulumi:prod.acme::clawdbot::x$cloudflare:index/d1Database:D1Database::acme-db",
            type=D1,
            op=op,
            diffs=("readReplication.mode",),
        )
        report = classify([step])
        assert report.drifted, op
        assert report.findings[0].properties == ("readReplication.mode",)
