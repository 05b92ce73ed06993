"""Operations a person runs on the VPS or a laptop, built from the other packages.

- `doctor`: is this VPS safe and ready to run the fleet (one verdict per check);
- `fleet_run`: one fleet run as every door makes it (preflight and lock recovery, lease, API budget);
- `status`: the fleet status rows and verdict, wired to the records on disk and one health probe;
- `health`: every tenant's health endpoint probed, local or remote, and the table it prints;
- `demo`: the example tenants on a local edge, end to end, in a scratch directory;
- `state_backup`: a state backup as `backup create` and the cluster's backup schedule make it;
- `alerts`: the one alert hook (scripts/alert-hook.sh) run for a failed job, e.g. a scheduled run;
- `tenants`: registering and unregistering tenants, and the rule for removal;
- `offboard`: dispatch mode's sweep of a departed tenant's user Workers by tag (after destroy, or by hand);
- `scratch`: scratch projects (fresh passphrase, fresh secrets) for the demo, tests and benchmarks.
"""
