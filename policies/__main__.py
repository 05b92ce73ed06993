"""The Clawdbot edge CrossGuard pack: `pulumi preview --policy-pack policies`.

Only constructs the pack (the constructor serves gRPC and blocks); the rules live in the
importable `clawdbot_policies` package so tests and `python -m orchestrator policy check` run
the very same functions in-process.
"""

from clawdbot_policies.pack import PACK_ENFORCEMENT, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, enforcement_level=PACK_ENFORCEMENT, policies=POLICIES)
