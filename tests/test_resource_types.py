"""The resource type tokens the drift rules, the mock provider and the policy runner match on.

Pinned against the installed providers: each class carries its token from `@pulumi.type_token`
(pulumi_cloudflare 6.23.1 and pulumi_random 4.21.4, e.g. pulumi_cloudflare/workers_script.py:
`@pulumi.type_token("cloudflare:index/workersScript:WorkersScript")`; the decorator sets
`pulumi_type`, pulumi/type_token.py).
"""

from __future__ import annotations

import pulumi_cloudflare as cloudflare
import pulumi_random as random
import pytest

from orchestrator.core import resource_types


@pytest.mark.parametrize(
    ("token", "cls"),
    [
        (resource_types.SCRIPT, cloudflare.WorkersScript),
        (resource_types.KV_NAMESPACE, cloudflare.WorkersKvNamespace),
        (resource_types.KV, cloudflare.WorkersKv),
        (resource_types.D1, cloudflare.D1Database),
        (resource_types.ROUTE, cloudflare.WorkersRoute),
        (resource_types.CUSTOM_DOMAIN, cloudflare.WorkersCustomDomain),
        (resource_types.CRON, cloudflare.WorkersCronTrigger),
        (resource_types.DISPATCH_NAMESPACE, cloudflare.WorkersForPlatformsDispatchNamespace),
        (resource_types.RANDOM_BYTES, random.RandomBytes),
    ],
)
def test_tokens_are_the_providers_own(token: str, cls: type) -> None:
    assert getattr(cls, "pulumi_type") == token  # noqa: B009 - set by a decorator mypy cannot see


def test_the_core_tokens_load_without_pulumi() -> None:
    # The drift rules are core: judging a plan must not need the SDK or the mock provider.
    import subprocess
    import sys

    code = (
        "import sys, orchestrator.core.drift, orchestrator.core.resource_types; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi', 'pulumi_cloudflare'}), "
        "'orchestrator.offline' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"
