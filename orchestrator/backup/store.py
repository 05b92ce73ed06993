"""Object storage for backups: a tiny interface, and its S3/R2 implementation over boto3.

Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a
profile); they are never passed through this code, so they can never be logged by it. Errors
name the bucket and key, never the request signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.utils import is_valid_uri

from orchestrator.backup.errors import BackupError
from orchestrator.core.addresses import is_loopback

ENDPOINT_VARIABLE = "CLAWDBOT_R2_ENDPOINT"
"""Where Settings.r2_endpoint comes from (named in errors so the operator knows what to set)."""
ENDPOINT_EXAMPLE = "https://<account id>.r2.cloudflarestorage.com"


def checked_endpoint(endpoint_url: str | None) -> str:
    """The S3 endpoint backups use, refused unless it is an https URL (http only to loopback).

    Required: without one boto3 derives AWS's own `https://s3.<region>.amazonaws.com` from the
    region (R2's `auto` makes `s3.auto.amazonaws.com`, which does not resolve), and every call
    then fails as an EndpointConnectionError naming an AWS host. A malformed one would be a
    ValueError from botocore. Both become one line naming the variable.
    """
    if not endpoint_url:
        raise BackupError(
            f"{ENDPOINT_VARIABLE} is not set: set it to your R2 endpoint ({ENDPOINT_EXAMPLE}, "
            "in /etc/clawdbot/clawdbot.env on a VPS)"
        )
    parts = urlsplit(endpoint_url)
    if "@" in parts.netloc:  # never echo it: the part before @ is a credential
        raise BackupError(
            f"{ENDPOINT_VARIABLE} holds credentials (user:password@host): give it only the URL; the key pair "
            "goes to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/etc/clawdbot/r2.env on a VPS)"
        )
    if not is_valid_uri(endpoint_url) or parts.scheme not in ("https", "http"):
        raise BackupError(f"{ENDPOINT_VARIABLE}={endpoint_url!r} is not an endpoint URL like {ENDPOINT_EXAMPLE}")
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise BackupError(f"{ENDPOINT_VARIABLE}={endpoint_url!r}: plain http only to a loopback address; use https")
    return endpoint_url


class ObjectStore(Protocol):
    """The few operations backups need; S3 PUTs are atomic, which the upload order relies on."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under prefix."""
        ...

    def delete(self, key: str) -> None: ...


class S3Store:
    """A bucket on an S3-compatible endpoint (Cloudflare R2 in production, moto in tests)."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str = "auto") -> None:
        self.bucket = bucket
        endpoint_url = checked_endpoint(endpoint_url)
        # Bounded retries and timeouts: a backup timer should fail visibly rather than hang.
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        # A fresh session: boto3's default one caches credentials for the life of the process.
        session = boto3.session.Session()
        self._client = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    @property
    def client(self) -> Any:
        """The boto3 client (tests hook its events to inject faults)."""
        return self._client

    def put(self, key: str, data: bytes) -> None:
        self._call("upload", key, lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=data))

    def get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
            return body
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error("download", key, exc) from None
        except (BotoCoreError, NoCredentialsError) as exc:
            raise self._error("download", key, exc) from None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", prefix, exc) from None

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self._client.delete_object(Bucket=self.bucket, Key=key))

    def _call(self, action: str, key: str, fn: Any) -> None:
        try:
            fn()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(action, key, exc) from None

    def _error(self, action: str, key: str, exc: Exception) -> BackupError:
        if isinstance(exc, NoCredentialsError):
            return BackupError(
                f"cannot {action} s3://{self.bucket}/{key}: no storage credentials "
                "(set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to an R2 API token's key pair)"
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return BackupError(f"cannot {action} s3://{self.bucket}/{key}: {detail}")
