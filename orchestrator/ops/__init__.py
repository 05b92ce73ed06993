"""Operations a person runs on the VPS or a laptop, built from the other packages.

- `doctor`: is this VPS safe and ready to run the fleet (one verdict per check);
- `health`: every tenant's health endpoint probed, local or remote, and the table it prints;
- `demo`: the example tenants on a local edge, end to end, in a scratch directory;
- `scratch`: scratch projects (fresh passphrase, fresh secrets) for the demo, tests and benchmarks.
"""
