"""Many tenant stacks at once: what changed, in which order, and whether it came up healthy.

- `rollout`: change detection, waves with a canary and a health gate, the report;
- `health`: the `/_edge/health` probe and the gate's verdict;
- `audit`: the append-only audit log of fleet operations (never a secret).
"""
