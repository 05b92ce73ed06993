"""Test tooling shipped with the package, never imported by the program (precedent: `click.testing`).

- `vectors`: the shared Python↔Worker test vectors (`python -m orchestrator.testing vectors`);
- `simulated`: a `StackExecutor` with latency and failure models, for tests, benches and rehearsals;
- `__main__`: `python -m orchestrator.testing`, the entry point of the tooling above.
"""
