"""`python -m orchestrator.testing vectors [--check]`: (re)write or check contract/vectors.json;
`python -m orchestrator.testing cluster-worker SPEC.json`: a simulated cluster node, and
`cluster-rollout SPEC.json REQUEST.json`: one rollout on such nodes, any options (`testing.cluster`)."""

import sys

if sys.argv[1:2] == ["cluster-worker"]:
    from orchestrator.testing.cluster import main as cluster_main

    raise SystemExit(cluster_main(sys.argv[2:]))
if sys.argv[1:2] == ["cluster-rollout"]:
    from orchestrator.testing.cluster import rollout_main

    raise SystemExit(rollout_main(sys.argv[2:]))

from orchestrator.testing.vectors import main

raise SystemExit(main())
