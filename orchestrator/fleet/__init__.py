"""Many tenant stacks at once: what changed, in which order, and whether it came up healthy.

- `ports`: what the fleet asks of the outside world, and the types that cross (the engine implements them);
- `changes`: change detection from digests, without the engine;
- `rollout`: the one rollout definition (waves, canary, gate verdicts, halt, rollback), pure, over the
  steps port; `Fleet`, the embedded engine that runs it in this process;
- `steps`: the steps port a rollout awaits, and the values that cross it (both engines implement it);
- `runner`: one operation on many stacks (preflight, retries, bounded concurrency, audit);
- `local_steps`: the rest of the steps done in this process (change detection, probes, records, rollback);
- `report`: the run's options and its per-tenant report;
- `sizing`: how many stacks at once and tenants per wave, computed from the API budget;
- `preflight`: may an operation run on a stack, given what a killed run left behind;
- `status`: the fleet at a glance (last deploy, drift, health) and its verdict;
- `health`: the `/_edge/health` poller and the gate (the verdict is `orchestrator.core.health`);
- `audit`: the append-only audit log of fleet operations (never a secret).
"""
