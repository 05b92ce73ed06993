"""`python -m orchestrator.testing vectors [--check]`: (re)write or check contract/vectors.json."""

from orchestrator.testing.vectors import main

raise SystemExit(main())
