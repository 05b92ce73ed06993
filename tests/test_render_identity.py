"""Change detection's `bundle_identity` is `render_bundle`'s hash, by one plain formula.

The bundle hash is recorded for every deployed tenant and is the Worker's `script.version`: a
different formula redeploys the whole fleet once (linking the Worker into one module did, on
purpose: what is uploaded changed). So the faster path (static half encoded once per process, no
template render) is held to the plain formula byte for byte, over tenants that exercise every part
of the document: non-ASCII and HTML-ish config, no secrets, many secrets, limits, crons, dispatch
mode with a plan.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from tenant_fixtures import tenant

from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core import render
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.esm_link import link
from orchestrator.core.model import PlatformSpec, TenantSpec

WORKERS = load_platform_spec(REPO_ROOT)
DISPATCH = PlatformSpec.model_validate(
    WORKERS.model_dump(mode="json")
    | {
        "isolation": "dispatch",
        "plans": {"standard": {"cpu_ms": 50, "subrequests": 50}},
        "saas_zone": {"id": "ffeeddccbbaa99887766554433221100", "name": "edge-platform.example.net"},
        "fallback_origin": "fallback.edge-platform.example.net",
    }
)

TENANTS: dict[str, dict[str, Any]] = {
    "fixture": tenant(),
    "no secrets, no crons": tenant(secret_names=[], crons=[]),
    "many secrets": tenant(secret_names=[f"S{i}" for i in range(12)]),
    "limits and hints": tenant(limits={"cpu_ms": 30, "subrequests": 5}, d1_location_hint="weur"),
    "unicode and html": tenant(config={"k": 'ü </script> \u2028 \\ "', "n": [1, 2.5, None, True]}),
}


def original_hash(spec: TenantSpec, platform: PlatformSpec) -> str:
    """The plain formula: one canonical JSON of the whole document, the bundle's text linked afresh
    with the embedded module as its template."""
    fields, embedded = render._inputs(spec, platform)
    sources = {m.name: m.content for m in render._static_modules()}
    linked = link({**sources, render.EMBEDDED_MODULE: render._template_source()}, render.MAIN_MODULE)
    document = {"fields": render._jsonable(fields), "embedded": embedded, "linked": linked.text()}
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


CASES = [(name, platform) for name in TENANTS for platform in ("workers", "dispatch")]


@pytest.mark.parametrize(("name", "isolation"), CASES)
def test_identity_is_the_rendered_hash_by_the_original_formula(name: str, isolation: str) -> None:
    spec = TenantSpec.model_validate(TENANTS[name])
    platform = WORKERS if isolation == "workers" else DISPATCH
    bundle = render.render_bundle(spec, platform)
    assert render.bundle_identity(spec, platform) == (bundle.bundle_hash, bundle.config_version)
    assert bundle.bundle_hash == original_hash(spec, platform)
    assert bundle.isolation == isolation


@pytest.mark.parametrize("stack", ["prod.acme", "prod.globex"])
def test_example_stacks_keep_their_hash(stack: str) -> None:
    spec = load_tenant_spec(REPO_ROOT, stack)
    assert render.bundle_identity(spec, WORKERS)[0] == original_hash(spec, WORKERS)


def test_identity_moves_with_every_input_as_the_render_does() -> None:
    base = TenantSpec.model_validate(tenant())
    variants = [
        base.model_copy(update={"config": {"greeting": "other"}}),
        base.model_copy(update={"crons": ["0 * * * *"]}),
        base.model_copy(update={"relay_key_generation": 2}),
    ]
    hashes = {render.bundle_identity(s, WORKERS)[0] for s in [base, *variants]}
    assert len(hashes) == 4
    assert render.bundle_identity(base, WORKERS) != render.bundle_identity(base, DISPATCH)


def test_identity_moves_with_the_linked_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is uploaded is the linked module: a change to any source module, the template or the
    linker's output is a change to deploy, and the embedded module's rendered text is not hashed."""
    spec = TenantSpec.model_validate(tenant())
    before = render.bundle_identity(spec, WORKERS)[0]
    original = render._static_tail()
    render._static_tail.cache_clear()
    render._linked.cache_clear()
    try:
        monkeypatch.setattr(render, "_template_source", lambda: original_template() + "// changed\n")
        assert render.bundle_identity(spec, WORKERS)[0] != before
    finally:
        render._static_tail.cache_clear()
        render._linked.cache_clear()
        monkeypatch.undo()
    assert render._static_tail() == original


def original_template() -> str:
    return (REPO_ROOT / "worker_src" / "src" / render.EMBEDDED_TEMPLATE).read_text(encoding="utf-8")
