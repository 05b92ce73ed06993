"""`python -m orchestrator` and the `clawdbot-edge` console script.

The import of the CLI sits inside `run` so that Ctrl-C while Python is still loading it exits 130
like any other interrupt, not with a KeyboardInterrupt traceback.
"""

from __future__ import annotations


def run() -> None:
    try:
        from orchestrator.cli import main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    main()


if __name__ == "__main__":
    run()
