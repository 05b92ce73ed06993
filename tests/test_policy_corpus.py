"""The bad-tenant corpus: every misuse is caught by the rule named for it, and only by the rules
it declares; the clean baseline and the example tenants pass.

Two kinds of fixtures (tests/fixtures/policy/):
- corpus/*.json: component misuses, as edits of what TenantEdge registers for acme
  (acme_resources.json), run through the same in-process analyzer path as `policy check`;
- configs/*.yaml: tenant stack files that pass TenantSpec and the provider mocks, registered next
  to the example tenants (acme, globex), run through the real program (orchestrator.offline.session)
  and then the pack; `# expect: error: ...` marks a file the stack-file check refuses first.
"""

from __future__ import annotations

import ast
import base64
import copy
import datetime as dt
import inspect
import json
import os
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core.contract import REPO_ROOT
from orchestrator.offline.analyzer import StaticResource, evaluate, resources_from_json
from orchestrator.offline.policy_runner import check_stack

FIXTURES = Path(__file__).parent / "fixtures" / "policy"
CORPUS = sorted((FIXTURES / "corpus").glob("*.json"))
CONFIGS = sorted((FIXTURES / "configs").glob("*.yaml"))


def _resolve_dates(value: Any) -> Any:
    """`@today-N` -> an ISO date N days ago, so the fixture never goes stale."""
    if isinstance(value, str) and (m := re.fullmatch(r"@today-(\d+)", value)):
        return (dt.date.today() - dt.timedelta(days=int(m.group(1)))).isoformat()
    if isinstance(value, dict):
        return {k: _resolve_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_dates(v) for v in value]
    return value


def baseline() -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    data = _resolve_dates(json.loads((FIXTURES / "acme_resources.json").read_text(encoding="utf-8")))
    return data["stack"], data["context"], data["resources"]


def _step(container: Any, segment: str) -> tuple[Any, Any]:
    """The (parent, key) a path segment addresses; `name=X` selects a list item by its name."""
    if "=" in segment:
        field, value = segment.split("=", 1)
        index = next(i for i, item in enumerate(container) if item.get(field) == value)
        return container, index
    return container, int(segment) if isinstance(container, list) else segment


def _locate(row: dict[str, Any], path: str) -> tuple[Any, Any]:
    target: Any = row["inputs"]
    segments = path.split(".")
    for segment in segments[:-1]:
        parent, key = _step(target, segment)
        target = parent[key]
    return _step(target, segments[-1])


def _big_module(row: dict[str, Any], size: int) -> None:
    # Incompressible bytes: gzip cannot bring them under the limit.
    row["inputs"].setdefault("files", {})["vendor.js"] = {
        "contentType": "application/javascript+module",
        "contentBase64": base64.b64encode(os.urandom(size)).decode(),
    }


def apply(resources: list[dict[str, Any]], mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = copy.deepcopy(resources)
    by_name = {r["name"]: r for r in rows}
    for mutation in mutations:
        op = mutation["op"]
        if op == "add":
            rows.append(copy.deepcopy(mutation["value"]))
            by_name[rows[-1]["name"]] = rows[-1]
            continue
        row = by_name[mutation["resource"]]
        if op == "set":
            parent, key = _locate(row, mutation["path"])
            parent[key] = copy.deepcopy(mutation["value"])
        elif op == "delete":
            parent, key = _locate(row, mutation["path"])
            del parent[key]
        elif op == "append":
            parent, key = _locate(row, mutation["path"])
            parent[key].append(copy.deepcopy(mutation["value"]))
        elif op == "protect":
            row["protect"] = mutation["value"]
        elif op == "big_module":
            _big_module(row, mutation["bytes"])
        elif op == "depend":
            # A dependency as the engine records it (depends_on or an input from the other resource).
            row.setdefault("dependencies", []).append(by_name[mutation["on"]]["urn"])
        else:
            raise AssertionError(f"unknown corpus op {op!r}")
    return rows


def violated(resources: list[StaticResource], stack: str, context: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in evaluate(resources, stack=stack, context=context):
        found.setdefault(violation.policy, []).append(violation.message)
    return found


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) + len([c for c in CONFIGS if "(none)" not in c.read_text()]) >= 15


def test_baseline_passes_every_policy() -> None:
    stack, context, rows = baseline()
    assert violated(resources_from_json(rows), stack, context) == {}


@pytest.mark.parametrize("case", CORPUS, ids=[c.stem for c in CORPUS])
def test_corpus_case_is_caught_by_its_rule(case: Path) -> None:
    fixture = json.loads(case.read_text(encoding="utf-8"))
    stack, context, rows = baseline()
    # A case may change what the pack knows of the stack (null removes a key, as an unset config).
    for key, value in fixture.get("context", {}).items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    found = violated(resources_from_json(apply(rows, fixture["mutations"])), stack, context)
    assert fixture["expect"] in found, f"{case.stem}: {fixture['expect']} missed it; got {sorted(found)}"
    assert set(found) == {fixture["expect"], *fixture["also"]}, f"{case.stem}: unexpected {found}"
    for messages in found.values():
        for message in messages:
            # No secret value may reach the output, whatever the rule found.
            assert "sk_live_" not in message and "Du2G5tSi" not in message


def _project_with(tmp_path: Path, tenant_file: Path) -> tuple[Path, str]:
    # The example tenants are registered too: every case is checked against a fleet.
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.prod.acme.yaml", "Pulumi.prod.globex.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    document = yaml.safe_load(tenant_file.read_text(encoding="utf-8"))
    tenant = document["config"]["clawdbot:tenant"]
    # The platform default date ages; only a fixture about dates pins its own.
    tenant.setdefault("compatibility_date", (dt.date.today() - dt.timedelta(days=30)).isoformat())
    stack = f"prod.{tenant['id']}"
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return tmp_path, stack


def _expected(tenant_file: Path) -> str | None:
    match = re.search(r"^# expect: (.+)$", tenant_file.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{tenant_file.name} needs an '# expect:' line"
    return None if match.group(1) == "(none)" else match.group(1).strip()


@pytest.mark.parametrize("tenant_file", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_bad_tenant_config_is_caught_by_its_rule(tmp_path: Path, tenant_file: Path) -> None:
    project, stack = _project_with(tmp_path, tenant_file)
    result, _ = check_stack(project, stack)
    expected = _expected(tenant_file)
    if expected is not None and expected.startswith("error: "):
        # What the pack cannot see (a stack file's `secure:` markers): `policy check` fails the
        # stack with the stack-file check's one line, before the program registers anything.
        assert result.failed and result.error is not None and result.resources == 0, result
        assert result.error.startswith(f"stack {stack}: ") and expected.removeprefix("error: ") in result.error
        assert "\n" not in result.error and not any(v in result.error for v in ("whsec_", "sk_live_", "12345"))
        for words in re.findall(r"^# says: (.+)$", tenant_file.read_text(encoding="utf-8"), re.MULTILINE):
            assert words.strip() in result.error, result.error
        return
    assert result.error is None, result.error
    policies = {v.policy for v in result.violations}
    assert policies == ({expected} if expected else set()), f"{stack}: {[v.line() for v in result.violations]}"


def _example_stacks() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO_ROOT.glob("Pulumi.prod.*.yaml"))


@pytest.mark.parametrize("stack", _example_stacks())
def test_example_tenant_passes_the_pack(stack: str) -> None:
    result, resources = check_stack(REPO_ROOT, stack)
    assert result.error is None, result.error
    assert resources, f"{stack}: the program registered nothing"
    assert not result.failed, [v.line() for v in result.violations]
    # The example tenants may lag on the advisory compatibility date, nothing else.
    assert {v.policy for v in result.violations} <= {"compatibility-date-fresh"}


def test_the_pack_cannot_see_which_secret_value_was_plaintext() -> None:
    """Why no policy refuses a plaintext `clawdbot:secrets` value (the stack-file check does).

    Upstream, the pack never learns which config value was `secure:` - pulumi/pulumi (1b5949891b):
    pkg/engine/update.go decrypts the stack config for the analyzer (`target.Config.Decrypt`) and
    flags secrecy per top-level key only (`ConfigSecretKeys: target.Config.SecureKeys()`);
    sdk/python/cmd/pulumi-language-python/main.go `RunPlugin` hands a Python pack that config as
    PULUMI_CONFIG, decrypted, with no secret keys. And the installed pulumi_policy keeps nothing
    of `ConfigureStack` but the stack tags, pinned here; the program wraps every value in
    `Output.secret`, so resource props look the same either way.
    """
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    tree = ast.parse(textwrap.dedent(inspect.getsource(_PolicyAnalyzerServicer.ConfigureStack)))
    read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "request"}
    assert read == {"tags"}
