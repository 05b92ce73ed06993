"""Test tooling shipped with the package, never imported by the program (precedent: `click.testing`).

- `vectors`: the shared Python↔Worker test vectors (`python -m orchestrator.testing vectors`);
- `simulated`: a `StackExecutor` with latency and failure models, for tests, benches and rehearsals;
- `cluster`: a simulated cluster node (the real worker over the simulated executor, with a ledger that
  proves no stack ran twice at once) and one rollout on such nodes (`cluster-worker`, `cluster-rollout`);
- `__main__`: `python -m orchestrator.testing`, the entry point of the tooling above.
"""
