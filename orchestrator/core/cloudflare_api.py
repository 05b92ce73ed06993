"""Where the Cloudflare API is: the provider's rule, for every client of ours that calls it.

The Cloudflare provider reads its endpoint from `CLOUDFLARE_BASE_URL` when set, else the public API
(TF provider.go's environment fallbacks, ../shared/reference/cloudflare-pulumi.md §3: the SDK
docstring's "`base_url` environment variable" is wrong; cloudflare-python's client does the same,
src/cloudflare/_client.py). The fleet points it at its throttling proxy
(orchestrator/engine/throttle.py), and our own REST clients (the D1 migrations, the
Workers-for-Platforms calls) follow the same variable, so every request of a run spends the one
API budget. An empty value counts as unset here, as it did in each of those clients.
"""

from __future__ import annotations

from collections.abc import Mapping

PUBLIC_API_URL = "https://api.cloudflare.com/client/v4"
BASE_URL_VARIABLE = "CLOUDFLARE_BASE_URL"


def api_base_url(environ: Mapping[str, str]) -> str:
    """`CLOUDFLARE_BASE_URL` from `environ` when set and not empty, else the public API."""
    return environ.get(BASE_URL_VARIABLE) or PUBLIC_API_URL
