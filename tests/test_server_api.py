"""The control room's API in-process: authentication on every route, errors, bodies, no secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from server_env import ServerEnv, Template, bearer, client, env, examples_template

from orchestrator.cli import cli
from orchestrator.cli.fleet import FleetDeps
from orchestrator.server.serve import ServeConfig

# Every route that needs a token, with the status a valid token gets (no local edge runs here).
GUARDED = [
    ("GET", "/api/overview", 200),
    ("GET", "/api/tenants", 200),
    ("GET", "/api/tenants?q=acme", 200),
    ("GET", "/api/tenants/acme", 200),
    ("GET", "/api/status", 200),
    ("GET", "/api/health?mode=local", 503),
    ("GET", "/api/drift", 200),
    ("GET", "/api/audit", 200),
    ("GET", "/api/scheduler", 200),
    ("GET", "/api/jobs", 200),
    ("GET", "/api/jobs/000000000000", 404),
    ("GET", "/api/openapi.json", 200),
    ("GET", "/ui/overview", 200),
    ("GET", "/ui/overview?group=health", 200),
    ("GET", "/ui/boxes?tenant=acme", 200),
    ("GET", "/ui/scheduler", 200),
    ("GET", "/ui/tenants/acme", 200),
    ("GET", "/ui/jobs", 200),
    ("GET", "/ui/jobs/000000000000", 404),
    ("POST", "/api/jobs", 202),
    ("POST", "/api/jobs/000000000000/cancel", 404),
]
PUBLIC = ["/api/live", "/", "/jobs", "/tenants/acme", "/static/app.js", "/static/app.css"]
BODIES = {"/api/jobs": {"operation": "preview", "tenants": ["acme"]}, "/api/jobs/000000000000/cancel": {}}


__all__ = ["client", "env", "examples_template"]


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> object:
    if method == "POST":
        return client.post(path, headers=headers, json=BODIES[path.split("?")[0]])
    return client.get(path, headers=headers)


def assert_refused(response: object) -> None:
    assert getattr(response, "status_code") == 401  # noqa: B009
    assert getattr(response, "json")() == {"error": "unauthorized"}  # noqa: B009
    assert getattr(response, "headers")["www-authenticate"] == "Bearer"  # noqa: B009


@pytest.mark.parametrize(("method", "path", "expected"), GUARDED)
def test_every_guarded_route_needs_a_valid_token(
    env: ServerEnv, client: TestClient, method: str, path: str, expected: int
) -> None:
    token = env.token("ci")
    assert_refused(call(client, method, path, {}))
    assert_refused(call(client, method, path, bearer("cbt_" + "x" * 43)))
    assert_refused(call(client, method, path, bearer(token[:-1])))
    assert_refused(call(client, method, path, {"Authorization": f"Basic {token}"}))
    assert_refused(call(client, method, path, {"Authorization": "Bearer"}))
    assert_refused(call(client, method, path, bearer("a" * 5000)))
    response = call(client, method, path, bearer(token))
    assert getattr(response, "status_code") == expected, getattr(response, "text")  # noqa: B009
    env.state.tokens.remove("ci")  # removed while the server runs: refused from the next request on
    assert_refused(call(client, method, path, bearer(token)))


@pytest.mark.parametrize("path", PUBLIC)
def test_liveness_and_the_static_shell_need_no_token_and_hold_no_data(
    env: ServerEnv, client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "acme.example.com" not in response.text and "clawdbot-prod-acme" not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("bad", ["ACME", "a", "acme-", "x" * 40, "<script>"])
def test_the_shell_refuses_what_is_not_a_tenant_id(client: TestClient, bad: str) -> None:
    response = client.get(f"/tenants/{bad}")
    assert response.status_code == 404 and response.json() == {"error": f"{bad!r} is not a tenant id"}


def test_a_token_added_while_running_works_at_once(env: ServerEnv, client: TestClient) -> None:
    assert client.get("/api/tenants", headers=bearer("cbt_nothing")).status_code == 401
    first = env.token("first")
    assert client.get("/api/tenants", headers=bearer(first)).status_code == 200
    second = env.token("second")  # a second client, no restart
    assert client.get("/api/tenants", headers=bearer(second)).status_code == 200
    assert client.get("/api/tenants", headers=bearer(first)).status_code == 200


def test_an_unsafe_token_file_fails_closed(env: ServerEnv, client: TestClient) -> None:
    token = env.token("ci")
    env.state.tokens.path.chmod(0o644)
    assert_refused(client.get("/api/tenants", headers=bearer(token)))
    assert env.state.tokens.error is not None and "chmod 600" in env.state.tokens.error
    env.state.tokens.path.chmod(0o600)
    assert client.get("/api/tenants", headers=bearer(token)).status_code == 200


def test_state_changes_need_a_json_body(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    form = client.post("/api/jobs", headers=headers, data={"operation": "preview", "all": "true"})
    assert form.status_code == 415 and "JSON body" in form.json()["error"]
    text = client.post("/api/jobs", headers={**headers, "Content-Type": "text/plain"}, content=b"{}")
    assert text.status_code == 415
    broken = client.post("/api/jobs", headers={**headers, "Content-Type": "application/json"}, content=b"{")
    assert broken.status_code == 400 and list(broken.json()) == ["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"operation": "preview"}, "choose the tenants: tenants (a list of ids) or all: true"),
        ({"operation": "preview", "all": True, "tenants": ["acme"]}, "choose the tenants"),
        ({"operation": "destroy", "all": True}, "operation: Input should be 'preview', 'up', 'refresh' or 'drift'"),
        ({"operation": "preview", "tenants": ["../etc"]}, "tenants.0: String should match pattern"),
        ({"operation": "preview", "tenants": ["acme\n"]}, "tenants.0: String should match pattern"),
        ({"operation": "preview", "all": True, "extra": 1}, "extra: Extra inputs are not permitted"),
        ({"operation": "preview", "all": True, "concurrency": 0}, "concurrency: Input should be greater than"),
        ({"operation": "preview", "all": True, "canary": "acme"}, "canary applies to up only"),
        ({"operation": "up", "tenants": ["acme"], "canary": "globex"}, "canary globex is not among the selected"),
        (["preview"], "Input should be a valid dictionary"),
    ],
)
def test_bad_job_requests_are_one_line_json_errors(
    env: ServerEnv, client: TestClient, body: object, message: str
) -> None:
    response = client.post("/api/jobs", headers=bearer(env.token()), json=body)
    assert response.status_code == 400
    assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert "\n" not in response.json()["error"]
    assert not env.state.jobs.list()


def test_unknown_tenant_has_the_clis_message(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    api = client.post("/api/jobs", headers=headers, json={"operation": "preview", "tenants": ["ghost"]})
    result = CliRunner().invoke(cli, ["preview", "--tenant", "ghost"], obj=FleetDeps(settings=lambda: env.settings))
    assert result.exit_code == 2
    assert api.status_code == 400 and api.json()["error"] in result.output
    assert api.json()["error"].startswith("unknown tenant 'ghost': no stack file Pulumi.prod.ghost.yaml in ")
    assert api.json()["error"].endswith(" (registered: acme, globex)")
    detail = client.get("/api/tenants/ghost", headers=headers)
    assert detail.status_code == 404 and detail.json()["error"] == api.json()["error"]
    assert client.get("/api/drift?tenant=ghost", headers=headers).json() == api.json()


def test_status_is_the_same_document_as_the_cli(env: ServerEnv, client: TestClient) -> None:
    result = CliRunner().invoke(cli, ["status", "--json"], obj=FleetDeps(settings=lambda: env.settings))
    api = client.get("/api/status", headers=bearer(env.token()))
    assert api.status_code == 200 and api.json() == json.loads(result.stdout)
    assert api.headers["x-checked-at"]


def test_tenants_carry_the_architecture(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token())
    body = client.get("/api/tenants", headers=headers).json()
    acme = next(t for t in body["tenants"] if t["tenant"] == "acme")
    assert acme["worker"] == acme["kv_namespace"] == acme["d1_database"] == "clawdbot-prod-acme"
    assert acme["routes"] and acme["custom_domains"] == ["edge.acme.example.com"]
    assert acme["secret_names"] == ["WEBHOOK_SECRET", "STRIPE_KEY"] and acme["config_version"] == 3
    assert [t["tenant"] for t in client.get("/api/tenants?q=GLOBEX", headers=headers).json()["tenants"]] == ["globex"]


def test_a_broken_stack_file_is_reported_not_fatal(env: ServerEnv, client: TestClient) -> None:
    path = env.project_dir / "Pulumi.prod.acme.yaml"
    path.write_text(path.read_text().replace("config_version: 3", "config_version: -1"))
    env.state.watcher.refresh()
    acme = client.get("/api/tenants/acme", headers=bearer(env.token())).json()
    assert acme["config_error"].startswith("stack prod.acme: clawdbot:tenant.config_version:")


def test_audit_is_filtered_newest_first(env: ServerEnv, client: TestClient) -> None:
    headers = bearer(env.token("ci"))
    for tenant in ("acme", "globex"):
        started = client.post("/api/jobs", headers=headers, json={"operation": "preview", "tenants": [tenant]})
        env.wait_job(client, headers, started.json()["id"])
    everything = client.get("/api/audit", headers=headers).json()
    assert everything["total"] == len(everything["events"]) >= 6
    whens = [e["when"] for e in everything["events"]]
    assert whens == sorted(whens, reverse=True)
    acme = client.get("/api/audit?tenant=acme&operation=preview", headers=headers).json()
    assert acme["total"] == 1 and acme["events"][0]["result"] == "ok" and acme["events"][0]["who"] == "token:ci"
    assert client.get("/api/audit?limit=1", headers=headers).json()["total"] == everything["total"]
    assert len(client.get("/api/audit?limit=1", headers=headers).json()["events"]) == 1
    assert client.get("/api/audit?who=token:nobody", headers=headers).json()["total"] == 0
    assert client.get("/api/audit?limit=0", headers=headers).status_code == 400


def test_rate_limit_is_per_token_and_only_on_changes(tmp_path: Path, examples_template: Template) -> None:
    env = ServerEnv(
        tmp_path, examples_template, config=ServeConfig(watch_interval_s=3600, rate_per_minute=2, rate_burst=2)
    )
    with env.client() as client:
        ci, ops = bearer(env.token("ci")), bearer(env.token("ops"))
        for _ in range(2):
            assert client.post("/api/jobs/000000000000/cancel", headers=ci, json={}).status_code == 404
        limited = client.post("/api/jobs", headers=ci, json={"operation": "preview", "all": True})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"].startswith("rate limit: at most 2 state-changing requests per minute")
        assert client.post("/api/jobs/000000000000/cancel", headers=ops, json={}).status_code == 404
        for _ in range(20):
            assert client.get("/api/jobs", headers=ci).status_code == 200
        assert not env.state.jobs.list()


def test_openapi_describes_the_api(env: ServerEnv, client: TestClient) -> None:
    schema = client.get("/api/openapi.json", headers=bearer(env.token())).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert {"/api/jobs", "/api/jobs/{job_id}/cancel", "/api/status", "/api/health", "/api/audit"} <= set(
        schema["paths"]
    )
    request = schema["components"]["schemas"]["JobRequest"]["properties"]["operation"]
    assert request["enum"] == ["preview", "up", "refresh", "drift"]
    assert client.get("/openapi.json").status_code == 404 and client.get("/docs").status_code == 404


def test_no_answer_holds_a_secret(env: ServerEnv, client: TestClient) -> None:
    token = env.token("ci")
    headers = bearer(token)
    started = client.post("/api/jobs", headers=headers, json={"operation": "up", "all": True})
    env.wait_job(client, headers, started.json()["id"])
    secrets = [v for values in env.secrets.values() for v in values.values()]
    secure = [
        line.split("secure:", 1)[1].strip(" }")
        for line in env.project_dir.joinpath("Pulumi.prod.acme.yaml").read_text().splitlines()
        if "secure:" in line
    ]
    forbidden = [token, env.passphrase, *secrets, *secure]
    assert len(forbidden) >= 5
    bodies = [call(client, m, p, headers) for m, p, _ in GUARDED if m == "GET"]
    texts = [getattr(b, "text") for b in bodies] + [client.get(p).text for p in PUBLIC]  # noqa: B009
    for text in texts:
        for value in forbidden:
            assert value not in text
    log = env.settings.audit_log.read_text()
    assert all(value not in log for value in forbidden)
    assert oct(os.stat(env.state.tokens.path).st_mode & 0o777) == "0o600"
