"""The Workers-for-Platforms REST calls `NamespacedScript` makes, and their errors in one line.

pulumi-cloudflare 6.23.1 cannot put a script into a dispatch namespace (no `dispatch_namespace` or
`tags` on `WorkersScript`, no namespace-script secret resource), so these go to the REST API:

- upload: `PUT …/workers/dispatch/namespaces/{ns}/scripts/{name}`, `multipart/form-data` with a
  `metadata` field (JSON: `main_module`, `bindings`, compatibility settings, `limits`, `tags`,
  `keep_bindings`) and one part per module, named by its file name, typed
  `application/javascript+module` (the form wrangler builds);
- secret: `PUT …/scripts/{name}/secrets` `{"name","text","type":"secret_text"}`;
- read: `GET …/scripts/{name}` (etag) and `GET …/scripts/{name}/settings` (bindings, tags, …);
- delete: `DELETE …/scripts/{name}?force=true`; sweep: `GET|DELETE …/scripts?tags=<tag>:yes`.

Sources are pinned in tests/test_namespaced_script.py. Endpoint: `CLOUDFLARE_BASE_URL` (the fleet's
throttling proxy, which also spends the 429 retries), token: `CLOUDFLARE_API_TOKEN`, both read from
the environment at call time so no credential is ever captured into state; a caller outside the
engine passes its endpoint instead (`NamespaceApi.endpoint`) and leaves the environment alone.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.cloudflare_http import TransportError, envelope, send
from orchestrator.core.cloudflare_api import api_base_url
from orchestrator.core.dispatch import MAX_TAGS, tag_problem
from orchestrator.core.masking import report_line

HTTP_TIMEOUT_SECONDS: float = 60
MODULE_CONTENT_TYPE = "application/javascript+module"
NO_ENTITLEMENT = 10121
SCRIPT_NOT_FOUND = 10007


class NamespaceApiError(Exception):
    """A Workers-for-Platforms API call failed; the message is one line naming the tenant."""


@dataclass(frozen=True)
class ModuleFile:
    name: str
    content: str
    content_type: str = MODULE_CONTENT_TYPE


def check_tags(tenant: str, tags: Sequence[str]) -> None:
    """Refuse tags Cloudflare would refuse, before any request is made."""
    problem = tag_problem(tags)
    if problem:
        raise NamespaceApiError(f"tenant {tenant}: {problem}")


def multipart_body(metadata: Mapping[str, Any], modules: Sequence[ModuleFile]) -> tuple[bytes, str]:
    """The upload form: `metadata` first, as a plain field, then each module as a named file part."""
    boundary = "----clawdbot" + secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'.encode()
        + json.dumps(metadata, separators=(",", ":")).encode()
        + b"\r\n"
    ]
    for module in modules:
        if '"' in module.name or "\r" in module.name or "\n" in module.name:
            raise ValueError(f"module name {module.name!r} cannot be sent in a form part")
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{module.name}"; filename="{module.name}"\r\nContent-Type: {module.content_type}\r\n\r\n'
        )
        parts.append(head.encode() + module.content.encode() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
        errors = data.get("errors") or []
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    except (ValueError, AttributeError):
        return []


@dataclass(frozen=True)
class NamespaceApi:
    """One tenant's view of one dispatch namespace; every error names the tenant."""

    account_id: str
    namespace: str
    tenant: str
    endpoint: str | None = None
    """The API's base URL when the caller has one (the offboarding sweep: its proxy); else the
    environment's `CLOUDFLARE_BASE_URL`, read at call time (the dynamic provider: no URL in state)."""

    @property
    def base_url(self) -> str:
        return (self.endpoint or api_base_url(os.environ)).rstrip("/")

    def _token(self) -> str:
        token = os.environ.get("CLOUDFLARE_API_TOKEN")
        if not token:
            raise NamespaceApiError(
                f"tenant {self.tenant}: no Cloudflare API token; set CLOUDFLARE_API_TOKEN for the deploy"
            )
        return token

    def _url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        ns = urllib.parse.quote(self.namespace, safe="")
        url = f"{self.base_url}/accounts/{self.account_id}/workers/dispatch/namespaces/{ns}/scripts{path}"
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def _call(
        self,
        what: str,
        method: str,
        url: str,
        body: bytes | None = None,
        content_type: str | None = None,
        hidden: Sequence[str] = (),
    ) -> dict[str, Any] | None:
        """The `result` of a successful call; None for 404 on a script that is not there."""
        token = self._token()
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        hide = (token, *hidden)
        where = f"tenant {self.tenant}: {what}"
        unsure = "it may have been applied: run `up` again (uploads and secrets are idempotent)"
        try:
            status, raw = send(
                request, timeout=HTTP_TIMEOUT_SECONDS, where=where, base_url=self.base_url, unsure=unsure
            )
            if not 200 <= status < 300:
                errors = _errors(raw)
                if status == 404 and any(e.get("code") == SCRIPT_NOT_FOUND for e in errors):
                    return None
                raise NamespaceApiError(self._explain(what, status, errors, hide))
            data = envelope(raw or b"{}", where)
        except TransportError as exc:
            raise NamespaceApiError(str(exc)) from None
        if data.get("success") is not True:
            raise NamespaceApiError(self._explain(what, 200, _errors(json.dumps(data).encode()), hide))
        result = data.get("result")
        return result if isinstance(result, dict) else {"items": result}

    def _explain(self, what: str, status: int, errors: list[dict[str, Any]], hidden: Sequence[str]) -> str:
        codes = {e.get("code") for e in errors}
        text = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors) or "no detail"
        detail = report_line(text, extra=hidden)
        where = f"tenant {self.tenant}: {what} in namespace {self.namespace}"
        if NO_ENTITLEMENT in codes:
            return (
                f"tenant {self.tenant}: this Cloudflare account has no Workers for Platforms ({detail}); "
                "subscribe to it or keep clawdbot:platform.isolation: workers"
            )
        if status == 429 or (status == 503 and "rate-limiting" in detail):
            return f"{where}: Cloudflare API rate limit hit even after the throttle's retries ({detail}); run it later"
        if any("tag" in str(e.get("message", "")).lower() for e in errors):
            return f"{where}: Cloudflare refused the script tags ({detail}); at most {MAX_TAGS}, no ',' or '&'"
        if status in (401, 403):
            return f"{where}: Cloudflare refused the API token (HTTP {status}: {detail})"
        return f"{where}: HTTP {status}: {detail}"

    def upload(self, script: str, metadata: Mapping[str, Any], modules: Sequence[ModuleFile]) -> dict[str, Any]:
        check_tags(self.tenant, metadata.get("tags", []))
        body, content_type = multipart_body(metadata, modules)
        path = "/" + urllib.parse.quote(script, safe="")
        result = self._call(f"upload of script {script}", "PUT", self._url(path), body, content_type)
        if result is None:
            raise NamespaceApiError(f"tenant {self.tenant}: upload of script {script}: Cloudflare answered not found")
        return result

    def put_secret(self, script: str, name: str, text: str) -> None:
        path = f"/{urllib.parse.quote(script, safe='')}/secrets"
        body = json.dumps({"name": name, "text": text, "type": "secret_text"}).encode()
        what = f"setting secret {name} on script {script}"
        if self._call(what, "PUT", self._url(path), body, "application/json", hidden=(text,)) is None:
            raise NamespaceApiError(f"tenant {self.tenant}: {what}: the script is not in the namespace")

    def script(self, script: str) -> dict[str, Any] | None:
        return self._call(f"reading script {script}", "GET", self._url("/" + urllib.parse.quote(script, safe="")))

    def settings(self, script: str) -> dict[str, Any] | None:
        path = f"/{urllib.parse.quote(script, safe='')}/settings"
        return self._call(f"reading settings of script {script}", "GET", self._url(path))

    def delete(self, script: str) -> None:
        # force: delete even when other Workers still reference it (cloudflare-python 5.9 scripts.delete).
        path = "/" + urllib.parse.quote(script, safe="")
        self._call(f"deleting script {script}", "DELETE", self._url(path, {"force": "true"}))

    def scripts_tagged(self, tag: str) -> list[str]:
        result = self._call(f"listing scripts tagged {tag}", "GET", self._url("", {"tags": f"{tag}:yes"}))
        items = (result or {}).get("items") or []
        return sorted(str(s.get("id")) for s in items if isinstance(s, dict) and s.get("id"))

    def delete_tagged(self, tag: str) -> None:
        self._call(f"deleting scripts tagged {tag}", "DELETE", self._url("", {"tags": f"{tag}:yes"}))
