"""A loopback stand-in for the Workers-for-Platforms REST API, strict where Cloudflare is strict.

What it enforces (sources in tests/test_namespaced_script.py): a bearer token; the account's WfP
entitlement (error 10121); a namespace that exists; the upload as `multipart/form-data` with a
JSON `metadata` field naming a `main_module` that is one of the uploaded module parts (each with a
file name and an ES-module content type); binding shapes per type; at most 8 tags, none with ','
or '&'; secrets only through the secrets API, kept across uploads only with `keep_bindings`;
listing and deleting by tag; injected 429s with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

BASE = re.compile(
    r"^/client/v4/accounts/(?P<account>[0-9a-f]{32})/workers/dispatch/namespaces/(?P<ns>[^/]+)/scripts"
    r"(?:/(?P<script>[^/]+)(?P<rest>/settings|/secrets)?)?$"
)
BINDING_FIELDS: dict[str, tuple[str, ...]] = {
    "kv_namespace": ("namespace_id",),
    "plain_text": ("text",),
    "secret_text": ("text",),
}
MODULE_TYPES = {"application/javascript+module", "text/javascript+module"}
MAX_TAGS = 8
# Not a documented code: the stand-in's own, for the one refusal whose real code we could not verify.
TAG_ERROR_CODE = 10999


class Refused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Script:
    modules: dict[str, tuple[str, bytes]]
    metadata: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    etag: str = ""


@dataclass
class FakeWfp:
    token: str
    account: str
    namespaces: set[str]
    entitled: bool = True
    scripts: dict[tuple[str, str], Script] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, ns: str, name: str) -> Script:
        return self.scripts[(ns, name)]


def _check_binding(b: Any, index: int) -> None:
    if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b["name"]:
        raise Refused(400, 10021, f"bindings[{index}]: a binding needs a name")
    kind = b.get("type")
    if kind == "d1":
        if not isinstance(b.get("id") or b.get("database_id"), str):
            raise Refused(400, 10021, f"bindings[{index}] ({b['name']}): d1 needs id or database_id")
        return
    if kind not in BINDING_FIELDS:
        raise Refused(400, 10021, f"bindings[{index}] ({b['name']}): unknown binding type {kind!r}")
    for key in BINDING_FIELDS[kind]:
        if not isinstance(b.get(key), str):
            raise Refused(400, 10021, f"bindings[{index}] ({b['name']}): {kind} needs {key}")


def _check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Refused(400, TAG_ERROR_CODE, "tags must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise Refused(400, TAG_ERROR_CODE, f"too many tags: {len(tags)} (limit {MAX_TAGS})")
    if any("," in t or "&" in t for t in tags):
        raise Refused(400, TAG_ERROR_CODE, "tags may not contain ',' or '&'")
    return tags


def parse_upload(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        raise Refused(400, 10021, "upload must be multipart/form-data with a boundary")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise Refused(400, 10021, "upload is not a multipart body")
    metadata: dict[str, Any] | None = None
    modules: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if name == "metadata":
            try:
                metadata = json.loads(payload)
            except ValueError:
                raise Refused(400, 10021, "metadata is not JSON") from None
            continue
        filename = part.get_filename()
        if not isinstance(name, str) or not filename:
            raise Refused(400, 10021, "every module part needs a name and a filename")
        modules[str(name)] = (part.get_content_type(), payload)
    if not isinstance(metadata, dict):
        raise Refused(400, 10021, "no metadata part")
    main = metadata.get("main_module")
    if not isinstance(main, str) or main not in modules:
        raise Refused(400, 10021, f"main_module {main!r} is not one of the uploaded parts")
    for module_name, (ctype, _) in modules.items():
        if ctype not in MODULE_TYPES:
            raise Refused(400, 10021, f"module {module_name}: content type {ctype} is not an ES module")
    bindings = metadata.get("bindings", [])
    if not isinstance(bindings, list):
        raise Refused(400, 10021, "bindings must be a list")
    for index, b in enumerate(bindings):
        _check_binding(b, index)
    if len({b["name"] for b in bindings}) != len(bindings):
        raise Refused(400, 10021, "binding names repeat")
    _check_tags(metadata.get("tags", []))
    limits = metadata.get("limits", {})
    if not isinstance(limits, dict) or not set(limits) <= {"cpu_ms", "subrequests"}:
        raise Refused(400, 10021, "limits take cpu_ms and subrequests only")
    return metadata, modules


def _settings(script: Script) -> dict[str, Any]:
    bindings: list[dict[str, Any]] = []
    for b in script.metadata.get("bindings", []):
        # Read back the way cloudflare-python 5.9 models it: D1 as database_id.
        bindings.append(
            {"type": "d1", "name": b["name"], "database_id": b.get("id") or b.get("database_id")}
            if b["type"] == "d1"
            else dict(b)
        )
    bindings += [{"type": "secret_text", "name": n} for n in script.secrets]
    return {
        "bindings": bindings,
        "compatibility_date": script.metadata.get("compatibility_date"),
        "compatibility_flags": script.metadata.get("compatibility_flags", []),
        "limits": script.metadata.get("limits"),
        "tags": script.metadata.get("tags", []),
    }


def _handler(fake: FakeWfp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, result: Any = None, errors: list[dict[str, Any]] | None = None) -> None:
            data = json.dumps(
                {"success": not errors, "errors": errors or [], "messages": [], "result": result}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            fake.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "body": body,
                    "auth": self.headers.get("Authorization"),
                    "content_type": self.headers.get("Content-Type", ""),
                    # What this process's environment said while serving it: the API's caller must not
                    # change it (tests/test_offboard.py, no global state).
                    "env_base_url": os.environ.get("CLOUDFLARE_BASE_URL"),
                }
            )
            with fake.lock:
                if fake.rate_limit_next:
                    fake.rate_limit_next -= 1
                    return self._reply(
                        429, errors=[{"code": 971, "message": "Please wait and consider throttling your request speed"}]
                    )
                try:
                    status, result = self._route(url.path, parse_qs(url.query), body)
                except Refused as exc:
                    return self._reply(exc.status, errors=[{"code": exc.code, "message": exc.message}])
            self._reply(status, result)

        def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                raise Refused(403, 10000, "Authentication error")
            match = BASE.match(path)
            if not match or match["account"] != fake.account:
                raise Refused(404, 7003, "Could not route to this path")
            if not fake.entitled:
                raise Refused(403, 10121, "You do not have access to dispatch namespaces.")
            ns = unquote(match["ns"])
            if ns not in fake.namespaces:
                raise Refused(404, 100119, f"dispatch namespace {ns} not found")
            name = unquote(match["script"]) if match["script"] else None
            if name is None:
                return self._by_tag(ns, query)
            key = (ns, name)
            rest = match["rest"]
            if rest is None and self.command == "PUT":
                metadata, modules = parse_upload(self.headers.get("Content-Type", ""), body)
                old = fake.scripts.get(key)
                keep = "secret_text" in metadata.get("keep_bindings", [])
                etag = hashlib.sha256(b"".join(n.encode() + m[1] for n, m in sorted(modules.items()))).hexdigest()
                fake.scripts[key] = Script(modules, metadata, dict(old.secrets) if old and keep else {}, etag)
                return 200, {"id": name, "etag": etag, "tags": metadata.get("tags", [])}
            if key not in fake.scripts:
                raise Refused(404, 10007, "This Worker does not exist on your account.")
            script = fake.scripts[key]
            if rest is None and self.command == "GET":
                return 200, {"dispatch_namespace": ns, "script": {"id": name, "etag": script.etag}}
            if rest is None and self.command == "DELETE":
                if query.get("force") != ["true"]:
                    raise Refused(400, 10064, "script is referenced; delete with force")
                del fake.scripts[key]
                return 200, None
            if rest == "/settings" and self.command == "GET":
                return 200, _settings(script)
            if rest == "/secrets" and self.command == "PUT":
                secret = json.loads(body)
                if secret.get("type") != "secret_text" or not isinstance(secret.get("text"), str):
                    raise Refused(400, 10021, "secret needs type secret_text and text")
                script.secrets[secret["name"]] = secret["text"]
                return 200, {"name": secret["name"], "type": "secret_text"}
            raise Refused(405, 10000, "method not allowed")

        def _by_tag(self, ns: str, query: dict[str, list[str]]) -> tuple[int, Any]:
            (wanted,) = query.get("tags", [""])
            tag, _, flag = wanted.partition(":")
            if flag != "yes" or not tag:
                raise Refused(400, 10021, "tags filter must be <tag>:yes")
            names = [s for (n, s), v in fake.scripts.items() if n == ns and tag in v.metadata.get("tags", [])]
            if self.command == "DELETE":
                for s in names:
                    del fake.scripts[(ns, s)]
                return 200, None
            return 200, [{"id": s} for s in sorted(names)]

        do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = _serve

    return Handler


@contextmanager
def serve_fake_wfp(token: str, account: str, namespaces: set[str]) -> Iterator[tuple[FakeWfp, str]]:
    fake = FakeWfp(token=token, account=account, namespaces=namespaces)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/client/v4"
    finally:
        server.shutdown()
        server.server_close()
