"""Many tenant stacks at once: what changed, in which order, and whether it came up healthy.

- `ports`: what the fleet asks of the outside world, and the types that cross (the engine implements them);
- `changes`: change detection from digests, without the engine;
- `runner`: one operation on many stacks (preflight, retries, bounded concurrency, audit);
- `rollout`: `up` in waves with a canary, the health gate and rollback;
- `report`: the run's options and its per-tenant report;
- `sizing`: how many stacks at once and tenants per wave, computed from the API budget;
- `preflight`: may an operation run on a stack, given what a killed run left behind;
- `status`: the fleet at a glance (last deploy, drift, health) and its verdict;
- `health`: the `/_edge/health` poller and the gate (the verdict is `orchestrator.core.health`);
- `audit`: the append-only audit log of fleet operations (never a secret).
"""
