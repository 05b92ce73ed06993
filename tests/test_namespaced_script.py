"""`NamespacedScript` against a loopback stand-in of the Workers-for-Platforms REST API.

Upstream facts this relies on (and the stand-in enforces):
- Upload: `PUT /accounts/{account_id}/workers/dispatch/namespaces/{dispatch_namespace}/scripts/{script_name}`,
  multipart, `metadata` with `main_module`, `bindings`, `compatibility_date`, `compatibility_flags`,
  `limits{cpu_ms, subrequests}`, `tags`, `keep_bindings` (cloudflare-python 5.9.0
  resources/workers_for_platforms/dispatch/namespaces/scripts/scripts.py `update`;
  types/.../namespaces/script_update_params.py `Metadata`, `MetadataLimits`).
- Form shape: `formData.set("metadata", JSON.stringify(metadata))`, then one `File` per module named by
  its file name with type `application/javascript+module`; D1 bindings as `{type:"d1", name, id}`;
  keeping secrets across uploads is `keep_bindings: ["secret_text", …]` (cloudflare/workers-sdk
  packages/wrangler/src/deployment-bundle/create-worker-upload-form.ts @cbf1de26).
- Binding shapes: kv_namespace `namespace_id`, plain_text/secret_text `text`, d1 `database_id`|`id`
  (script_update_params.py MetadataBindingWorkersBindingKind*); settings read back D1 as `database_id`
  (types/.../scripts/setting_get_response.py BindingWorkersBindingKindD1).
- Secret: `PUT …/scripts/{script_name}/secrets` `{name, text, type:"secret_text"}` (scripts/secrets.py `update`).
- Read: `GET …/scripts/{script_name}` (`script.etag`) and `GET …/scripts/{script_name}/settings`
  (scripts/settings.py `get`: bindings, compatibility_*, limits, tags); the upload answers an `etag`
  (script_update_response.py).
- Delete: `DELETE …/scripts/{script_name}?force=true` (scripts.py `delete`, `force`).
- Tags: at most 8 per script, no `,` or `&`; list/delete by `?tags=<tag>:yes`
  (cloudflare-docs workers-for-platforms/configuration/tags.mdx, platform/limits.mdx; not in the SDK).
- 10121 "You do not have access to dispatch namespaces" = no WfP entitlement (seen in deploy tooling
  handling that exact message; alchemy.run documents the entitlement error).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fake_wfp import FakeWfp, serve_fake_wfp
from pulumi.dynamic.dynamic import serialize_provider

from components import wfp_api
from components.namespaced_script import RELAY_KEY_SECRET, NamespacedScriptProvider, upload_metadata
from components.wfp_api import ModuleFile, NamespaceApi, NamespaceApiError
from orchestrator.core.contract import REPO_ROOT
from orchestrator.engine.budget import ThrottleConfig
from orchestrator.engine.throttle import ThrottleProxy

ACCOUNT = "0123456789abcdef0123456789abcdef"
NAMESPACE = "clawdbot-prod"
TOKEN = "cf-token-SECRET-123"
RELAY = "cmVsYXkta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"
SCRIPT = "clawdbot-prod-acme"


@pytest.fixture
def wfp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWfp]:
    with serve_fake_wfp(TOKEN, ACCOUNT, {NAMESPACE}) as (fake, base_url):
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", base_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        yield fake


def props(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_id": ACCOUNT,
        "namespace": NAMESPACE,
        "tenant": "acme",
        "script_name": SCRIPT,
        "main_module": "index.js",
        "modules": [
            {
                "name": "index.js",
                "content": "import './embedded.js'; export default {}",
                "content_type": "application/javascript+module",
            },
            {
                "name": "embedded.js",
                "content": "export const EMBEDDED = {};",
                "content_type": "application/javascript+module",
            },
        ],
        "bindings": [
            {"type": "kv_namespace", "name": "EDGE_KV", "namespace_id": "kv-1"},
            {"type": "d1", "name": "EDGE_DB", "id": "db-1"},
            {"type": "plain_text", "name": "TENANT_ID", "text": "acme"},
            {"type": "plain_text", "name": "EDGE_ISOLATION", "text": "dispatch"},
        ],
        "compatibility_date": "2026-04-01",
        "compatibility_flags": [],
        "limits": {"cpu_ms": 50, "subrequests": 50},
        "tags": ["tenant-acme", "plan-standard", "env-prod", "fleet-clawdbot-prod"],
        "relay_key": RELAY,
        "etag": None,
        "live": None,
    }
    return {**base, **overrides}


def uploads(fake: FakeWfp) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "PUT" and r["path"].endswith(f"/scripts/{SCRIPT}")]


def outs_of(result: object) -> dict[str, Any]:
    outs = getattr(result, "outs", None)
    assert isinstance(outs, dict)
    return outs


def test_create_uploads_the_bundle_as_a_form_and_sets_the_relay_key_as_a_secret(wfp: FakeWfp) -> None:
    created = NamespacedScriptProvider().create(props())
    assert created.id == f"{ACCOUNT}/{NAMESPACE}/{SCRIPT}"
    stored = wfp.script(NAMESPACE, SCRIPT)
    assert set(stored.modules) == {"index.js", "embedded.js"}
    assert stored.metadata["main_module"] == "index.js" and stored.metadata["keep_bindings"] == ["secret_text"]
    assert stored.metadata["tags"] == ["tenant-acme", "plan-standard", "env-prod", "fleet-clawdbot-prod"]
    assert stored.metadata["limits"] == {"cpu_ms": 50, "subrequests": 50}
    assert stored.secrets == {RELAY_KEY_SECRET: RELAY}
    (upload,) = uploads(wfp)
    assert upload["content_type"].startswith("multipart/form-data; boundary=")
    assert RELAY.encode() not in upload["body"], "the relay key never travels in the upload"
    secret_calls = [r for r in wfp.requests if r["path"].endswith("/secrets")]
    assert [json.loads(r["body"])["type"] for r in secret_calls] == ["secret_text"]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in wfp.requests)
    assert outs_of(created)["etag"] == stored.etag


def test_update_reuploads_code_and_keeps_the_secret_and_rotation_only_sets_the_secret(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    first = outs_of(provider.create(props()))
    changed = props(modules=[{**props()["modules"][0], "content": "export default { v: 2 }"}, props()["modules"][1]])
    assert provider.diff("id", first, changed).changes
    second = outs_of(provider.update("id", first, changed))
    assert len(uploads(wfp)) == 2
    assert wfp.script(NAMESPACE, SCRIPT).secrets == {RELAY_KEY_SECRET: RELAY}, "keep_bindings kept the secret"
    assert second["etag"] != first["etag"]
    wfp.requests.clear()
    rotated = {**changed, "relay_key": "bmV3LXJlbGF5LWtleQ=="}
    assert provider.diff("id", second, rotated).changes
    provider.update("id", second, rotated)
    assert uploads(wfp) == [], "a rotation is one secrets call, no upload"
    assert wfp.script(NAMESPACE, SCRIPT).secrets == {RELAY_KEY_SECRET: "bmV3LXJlbGF5LWtleQ=="}


def test_diff_replaces_on_a_new_identity_and_is_quiet_when_nothing_changed(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    outs = outs_of(provider.create(props()))
    assert not provider.diff("id", outs, props()).changes
    for key, value in (("script_name", "clawdbot-prod-other"), ("namespace", "clawdbot-staging")):
        result = provider.diff("id", outs, props(**{key: value}))
        assert result.changes and result.replaces == [key] and not result.delete_before_replace


def test_refresh_reads_back_and_a_clean_namespace_shows_no_drift(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    outs = outs_of(provider.create(props()))
    read = provider.read("id", outs)
    assert read.id == "id"
    assert not provider.diff("id", outs_of(read), props()).changes, "the D1 read-back shape is not drift"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s.metadata.update(tags=["tenant-acme"]),
        lambda s: s.metadata["bindings"].pop(0),
        lambda s: s.metadata.update(compatibility_date="2025-01-01"),
        lambda s: s.metadata.update(limits={"cpu_ms": 30000}),
        lambda s: s.secrets.clear(),
        lambda s: setattr(s, "etag", "someone-else-uploaded"),
    ],
    ids=["tags", "binding", "compat-date", "limits", "secret", "code"],
)
def test_refresh_sees_drift_and_the_next_update_repairs_it(wfp: FakeWfp, tamper: Any) -> None:
    provider = NamespacedScriptProvider()
    outs = outs_of(provider.create(props()))
    tamper(wfp.script(NAMESPACE, SCRIPT))
    refreshed = outs_of(provider.read("id", outs))
    assert provider.diff("id", refreshed, props()).changes
    provider.update("id", refreshed, props())
    repaired = outs_of(provider.read("id", outs_of(provider.update("id", refreshed, props()))))
    assert not provider.diff("id", repaired, props()).changes
    assert wfp.script(NAMESPACE, SCRIPT).secrets == {RELAY_KEY_SECRET: RELAY}


def test_refresh_of_a_script_deleted_out_of_band_reports_it_gone(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    outs = outs_of(provider.create(props()))
    del wfp.scripts[(NAMESPACE, SCRIPT)]
    assert provider.read("id", outs).id == ""


def test_delete_forces_and_tolerates_a_script_already_gone(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    outs = outs_of(provider.create(props()))
    provider.delete("id", outs)
    assert (NAMESPACE, SCRIPT) not in wfp.scripts
    deletes = [r for r in wfp.requests if r["method"] == "DELETE"]
    assert deletes[-1]["query"] == {"force": ["true"]}
    provider.delete("id", outs)


def test_sweep_by_tag_lists_and_deletes_only_that_tenant(wfp: FakeWfp) -> None:
    provider = NamespacedScriptProvider()
    provider.create(props())
    provider.create(props(script_name="clawdbot-prod-acme-old"))
    provider.create(props(tenant="globex", script_name="clawdbot-prod-globex", tags=["tenant-globex"]))
    api = NamespaceApi(ACCOUNT, NAMESPACE, "acme")
    assert api.scripts_tagged("tenant-acme") == ["clawdbot-prod-acme", "clawdbot-prod-acme-old"]
    api.delete_tagged("tenant-acme")
    assert set(wfp.scripts) == {(NAMESPACE, "clawdbot-prod-globex")}


def test_no_entitlement_is_one_line_naming_the_tenant(wfp: FakeWfp) -> None:
    wfp.entitled = False
    with pytest.raises(NamespaceApiError) as caught:
        NamespacedScriptProvider().create(props())
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        "tenant acme: this Cloudflare account has no Workers for Platforms"
    )
    assert "10121" in message and "isolation: workers" in message


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ([f"t{i}" for i in range(9)], "9 script tags; Workers for Platforms allows 8"),
        (["tenant-acme", "a,b"], "contains ',' or '&'"),
        (["a&b"], "contains ',' or '&'"),
        (["", "x"], "is empty"),
        (["x", "x"], "repeat"),
    ],
)
def test_bad_tags_are_refused_before_any_request(wfp: FakeWfp, tags: list[str], reason: str) -> None:
    provider = NamespacedScriptProvider()
    with pytest.raises(NamespaceApiError, match=f"tenant acme: .*{reason}"):
        provider.create(props(tags=tags))
    assert wfp.requests == []
    assert provider.check({}, props(tags=tags)).failures


def test_the_stand_in_refuses_what_cloudflare_refuses(wfp: FakeWfp) -> None:
    # The stand-in is only worth the tests above if it is strict: prove it with raw uploads.
    api = NamespaceApi(ACCOUNT, NAMESPACE, "acme")
    base = upload_metadata(props())
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "main_module": "missing.js"}, "main_module 'missing.js' is not one of the uploaded parts"),
        ({**base, "bindings": [{"type": "kv_namespace", "name": "K"}]}, "kv_namespace needs namespace_id"),
        ({**base, "bindings": [{"type": "d1", "name": "D"}]}, "d1 needs id or database_id"),
        ({**base, "bindings": [{"type": "r3_bucket", "name": "R"}]}, "unknown binding type"),
        ({**base, "limits": {"cpuMs": 5}}, "limits take cpu_ms and subrequests only"),
    ]
    module = [ModuleFile("index.js", "export default {}")]
    for metadata, reason in cases:
        with pytest.raises(NamespaceApiError, match=reason):
            api.upload(SCRIPT, metadata, module)
    with pytest.raises(NamespaceApiError, match="not an ES module"):
        api.upload(SCRIPT, base, [ModuleFile("index.js", "x", "text/plain")])
    assert (NAMESPACE, SCRIPT) not in wfp.scripts


def test_a_failed_secret_leaves_no_script_behind(wfp: FakeWfp, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise NamespaceApiError("tenant acme: setting secret RELAY_KEY: HTTP 500")

    monkeypatch.setattr(NamespaceApi, "put_secret", refuse)
    with pytest.raises(NamespaceApiError, match="setting secret"):
        NamespacedScriptProvider().create(props())
    assert (NAMESPACE, SCRIPT) not in wfp.scripts


def test_errors_never_carry_the_token_or_the_relay_key(wfp: FakeWfp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(NamespaceApiError) as caught:
        NamespacedScriptProvider().create(props())
    assert "refused the API token (HTTP 403" in str(caught.value)
    assert TOKEN not in str(caught.value) and RELAY not in str(caught.value)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(NamespaceApiError, match="tenant acme: no Cloudflare API token; set CLOUDFLARE_API_TOKEN"):
        NamespacedScriptProvider().create(props())
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/client/v4")
    with pytest.raises(NamespaceApiError, match=r"tenant acme: upload of script clawdbot-prod-acme: cannot reach"):
        NamespacedScriptProvider().create(props())


def test_429s_are_absorbed_by_the_throttle_proxy_and_exhaustion_is_one_clear_line(
    wfp: FakeWfp, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = os.environ["CLOUDFLARE_BASE_URL"]
    config = ThrottleConfig(requests=1000, window_s=10, time_scale=0.001, max_attempts=3, default_retry_after_s=0.01)
    with ThrottleProxy(upstream, config) as proxy:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", proxy.base_url)
        wfp.rate_limit_next = 2
        NamespacedScriptProvider().create(props())
        assert (NAMESPACE, SCRIPT) in wfp.scripts and proxy.stats.snapshot()["upstream_429"] == 2
        wfp.rate_limit_next = 100
        with pytest.raises(NamespaceApiError) as caught:
            NamespacedScriptProvider().create(props(script_name="clawdbot-prod-acme-2"))
    message = str(caught.value)
    assert message.startswith("tenant acme: upload of script clawdbot-prod-acme-2 in namespace clawdbot-prod:")
    assert "rate limit" in message and "\n" not in message


def test_the_provider_captures_nothing_and_is_not_a_forced_secret() -> None:
    provider = NamespacedScriptProvider()
    assert provider.serialize_as_secret_always is False
    assert vars(provider) == {}
    assert TOKEN.encode() not in serialize_provider(provider).encode()


PROVIDER_HOST = """
import base64, json, os, sys
import dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
props = json.loads(os.environ["PROPS"])
print(json.dumps(provider.create(props).outs["etag"]))
"""


def test_provider_survives_pulumis_serialization_into_a_fresh_process(wfp: FakeWfp) -> None:
    # Pulumi pickles the provider (dill) into state and loads it in a separate provider process
    # started in the project directory, with the deploy's environment: the round trip uploads for real.
    blob = serialize_provider(NamespacedScriptProvider())
    env = {
        "PATH": "/usr/bin:/bin",
        "CLOUDFLARE_BASE_URL": os.environ["CLOUDFLARE_BASE_URL"],
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "PROPS": json.dumps(props()),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROVIDER_HOST], input=blob, cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == wfp.script(NAMESPACE, SCRIPT).etag
    assert wfp.script(NAMESPACE, SCRIPT).secrets == {RELAY_KEY_SECRET: RELAY}


class _Hostile(BaseHTTPRequestHandler):
    mode = "reset"

    def log_message(self, *_: Any) -> None:
        pass

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.mode == "reset":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.mode == "hang":
            time.sleep(1.0)
            return
        body = b"<html>gateway</html>" if self.mode == "html" else b"[1, 2]"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("reset", "connection to .* broke|cannot reach"),
        ("hang", "no answer from .* within 0.3 s; it may have been applied"),
        ("html", "the API answered with something that is not JSON"),
        ("list", "the API answered with JSON that is not an object"),
    ],
)
def test_a_hostile_api_is_one_line_naming_the_tenant_never_a_traceback(
    monkeypatch: pytest.MonkeyPatch, mode: str, reason: str
) -> None:
    handler = type("Handler", (_Hostile,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/client/v4")
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
        monkeypatch.setattr(wfp_api, "HTTP_TIMEOUT_SECONDS", 0.3)
        with pytest.raises(NamespaceApiError, match=f"^tenant acme: upload of script {SCRIPT}: ({reason})"):
            NamespacedScriptProvider().create(props())
    finally:
        server.shutdown()
        server.server_close()
