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

import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.stack_file import load_stack_file, set_value
from orchestrator.config.tenant_config import load_platform_spec, tenant_stacks, validate_tenant
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.drift import IGNORED, ResourceStep, classify
from orchestrator.core.errors import ConfigError
from orchestrator.core.resource_types import D1, SCRIPT
from orchestrator.offline.session import run_offline


@pytest.mark.parametrize("stack", tenant_stacks(REPO_ROOT))
def test_d1_read_replication_is_always_explicit_and_disabled_unless_asked(stack: str) -> None:
    (database,) = run_offline(REPO_ROOT, stack).of_type(D1)
    assert database.inputs["readReplication"] == {"mode": "disabled"}


def test_a_tenant_may_ask_for_read_replicas(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.prod.acme.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    set_value(tmp_path / "Pulumi.prod.acme.yaml", "clawdbot:tenant.d1_read_replication", "auto")
    (database,) = run_offline(tmp_path, "prod.acme").of_type(D1)
    assert database.inputs["readReplication"] == {"mode": "auto"}


@pytest.mark.parametrize("value", ["enabled", "AUTO", "", 1, None])
def test_anything_but_the_schemas_two_modes_is_one_line_naming_the_field(value: object) -> None:
    # The schema (schema.go above): mode is one of "auto", "disabled".
    raw = {**_acme(), "d1_read_replication": value}
    with pytest.raises(ConfigError, match=r"^stack prod\.acme: clawdbot:tenant\.d1_read_replication: "):
        validate_tenant("prod.acme", raw, [], require_values=False)


def _acme() -> dict[str, Any]:
    config = load_stack_file(REPO_ROOT / "Pulumi.prod.acme.yaml").config
    tenant: dict[str, Any] = config["clawdbot:tenant"]
    return tenant


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
