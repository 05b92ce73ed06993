"""Clawdbot edge control plane: the VPS side of a fleet of per-tenant Cloudflare edges.

Packages, by layer (dependencies point down only; `pyproject.toml` holds the contract):

- doors: `cli` (parse, call, print) and `server` (the control room's HTTP API and page, reached
  through `serve`); nothing imports a door but the CLI's `serve` command, which starts the server.
- the cluster engine: `cluster` (the fleet's rollout as a Temporal workflow, stack operations as
  activities on any node's worker), above the operations it drives; only the doors import it.
- operations: `ops` (doctor, demo, scratch projects) above `fleet` (change detection, rollout,
  health gate, audit), `local_edge` (the fleet in workerd), `backup` (state snapshots in R2) and
  `offline` (the program under provider-faithful mocks, the policy runner).
- adapters: `engine` (the Automation-API executor, work dirs, records, locks, the API throttle).
- config: `config` (stack files, passphrase provider, tenant registry, secret entry, settings).
- core: `core` (model, cron, contract, outputs, render, crypto formats, migrations, drift rules,
  errors): pure, imports nothing else of ours.

`program` is the Pulumi program (`__main__.py` at the repo root hands over to it); `__main__`
runs the CLI.
"""
