"""Where the Pulumi state lives: the DIY backend on this machine (`file://`) or on R2 (`s3://`).

One VPS keeps its state in a directory (`file://<state_dir>`, the default). Several nodes share
one state in an R2 bucket through the Pulumi CLI's S3 driver (gocloud.dev s3blob), with the URL
shape `s3://<bucket>[/<prefix>]?endpoint=https://<account>.r2.cloudflarestorage.com&region=auto
&s3ForcePathStyle=true` (docs/cluster.md). The URL is checked here, before any CLI runs, so a typo
is one error naming the setting rather than a CLI failure halfway through a rollout:

- the R2 endpoint is `https://<32 hex account id>[.<jurisdiction>].r2.cloudflarestorage.com`; R2
  signs with region `auto` and is addressed path-style, so both are required for an R2 host;
- any other endpoint must be https (plain http only on loopback, for a local S3 stand-in);
- no credentials in the URL: it is written into every work dir's Pulumi.yaml and shown by
  `doctor`; the CLI reads the R2 key pair from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.

Pure: no I/O, so the settings model can validate with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from orchestrator.core.addresses import is_loopback

R2_HOST = re.compile(r"[0-9a-f]{32}(\.(eu|fedramp|us))?\.r2\.cloudflarestorage\.com")
"""R2's S3 endpoint, global or jurisdiction-specific (developers.cloudflare.com/r2/api/s3/tokens/;
the `us` jurisdiction: developers.cloudflare.com/changelog/post/2026-08-17-r2-us-jurisdiction/)."""
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
"""R2 bucket names: 3-63 characters, lowercase letters, digits and hyphens, alphanumeric at both ends."""
CREDENTIAL_WORDS = re.compile(r"secret|password|token|access.?key|credential|session", re.IGNORECASE)
MIN_CLI_FOR_R2 = (3, 258, 0)
"""Pulumi 3.256/3.257 fail every R2 write with `InvalidDigest` (pulumi/pulumi#24219); the gocloud.dev
update that fixes it (#24292) is first in v3.258.0."""
TRUE_WORDS = frozenset({"1", "t", "true"})
"""What Go's strconv.ParseBool reads as true (lowercase forms; gocloud parses its flags with it)."""


@dataclass(frozen=True)
class StateBackend:
    """A checked backend URL and what it means for the fleet."""

    url: str
    kind: Literal["file", "s3"]
    path: str
    """file: the state directory; s3: the bucket name."""
    prefix: str = ""
    """s3: the folder inside the bucket ('' for the bucket root)."""
    endpoint: str | None = None
    """s3: the S3 API endpoint (`https://<account>.r2.cloudflarestorage.com` for R2)."""

    @property
    def shared(self) -> bool:
        """Several nodes can reach this state (an object store), not only this machine."""
        return self.kind == "s3"

    @property
    def is_r2(self) -> bool:
        host = urlsplit(self.endpoint).hostname if self.endpoint else None
        return bool(host and R2_HOST.fullmatch(host))

    def describe(self) -> str:
        """One line for `doctor` and logs: where the state is (no credentials ever appear in the URL)."""
        if self.kind == "file":
            return f"file backend {self.path} (this machine only)"
        where = f"s3://{self.path}/{self.prefix}" if self.prefix else f"s3://{self.path}"
        store = "R2" if self.is_r2 else "S3-compatible store"
        return f"{store} backend {where} at {self.endpoint} (shared by every node with its key pair)"


def file_backend(state_dir: str) -> StateBackend:
    return StateBackend(url=f"file://{state_dir}", kind="file", path=state_dir)


def _single(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    if values is None:
        return None
    if len(values) != 1:
        raise ValueError(f"query parameter {key} is given {len(values)} times")
    return values[0]


def _check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if "@" in parts.netloc:
        raise ValueError(
            "endpoint must not carry credentials: give the R2 key pair as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(
            f"endpoint must be https://<host> (R2: https://<account id>.r2.cloudflarestorage.com), got {endpoint!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"endpoint must be a bare https://<host>, without a path or query, got {endpoint!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"endpoint {endpoint!r} is plain http: the state and its lock files would cross the network "
            "unencrypted; use https"
        )
    if host.endswith(".r2.cloudflarestorage.com") and not R2_HOST.fullmatch(host):
        raise ValueError(
            f"endpoint host {host!r} is not an R2 endpoint: expected <32 hex account id>.r2.cloudflarestorage.com "
            "(or <account id>.eu|fedramp|us.r2.cloudflarestorage.com for a jurisdiction's bucket)"
        )
    return endpoint.rstrip("/")


def _parse_s3(url: str) -> StateBackend:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(
            "the URL must not carry credentials: give the R2 key pair as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    bucket = parts.netloc
    if not BUCKET_NAME.fullmatch(bucket):
        raise ValueError(f"bucket {bucket!r} is not a valid R2 bucket name (3-63 of a-z, 0-9, -)")
    prefix = parts.path.removeprefix("/").removesuffix("/")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise ValueError(f"folder {prefix!r} in the bucket must be plain names separated by single slashes")
    if parts.fragment:
        raise ValueError("the URL must not have a #fragment")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    for key in query:
        if CREDENTIAL_WORDS.search(key):
            raise ValueError(
                f"query parameter {key} looks like a credential: give the R2 key pair as "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, never in the URL (it is written to Pulumi.yaml)"
            )
    endpoint = _single(query, "endpoint")
    if not endpoint:
        raise ValueError(
            "endpoint= is required: the fleet keeps shared state on R2 "
            "(endpoint=https://<account id>.r2.cloudflarestorage.com&region=auto&s3ForcePathStyle=true)"
        )
    endpoint = _check_endpoint(endpoint)
    for insecure in ("disableSSL", "disable_https"):
        value = _single(query, insecure)
        if value is not None and value.lower() in TRUE_WORDS and urlsplit(endpoint).scheme == "https":
            raise ValueError(f"{insecure}={value} would send the state unencrypted; drop it")
    backend = StateBackend(url=url, kind="s3", path=bucket, prefix=prefix, endpoint=endpoint)
    if backend.is_r2:
        if _single(query, "region") != "auto":
            raise ValueError("region=auto is required for R2 (R2 signs every request with region auto)")
        if (_single(query, "s3ForcePathStyle") or "").lower() not in TRUE_WORDS:
            raise ValueError("s3ForcePathStyle=true is required for R2 (bucket in the path, not in the host name)")
    return backend


def parse_state_backend(url: str) -> StateBackend:
    """Check a Pulumi backend URL for this fleet; ValueError says what is wrong (never echoes a query value)."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        path = url[len("file://") :] if url.startswith("file://") else ""
        path = path.split("?", 1)[0]
        if not path.startswith("/"):
            raise ValueError(f"a file backend must be file:///<absolute directory>, got {url!r}")
        return file_backend(path)
    if scheme == "s3":
        return _parse_s3(url)
    raise ValueError(
        f"backend scheme {scheme or '(none)'!r} is not supported here: use file:///<dir> on one VPS or "
        "s3://<bucket>/<folder>?endpoint=https://<account id>.r2.cloudflarestorage.com&region=auto"
        "&s3ForcePathStyle=true for state shared by several nodes"
    )
