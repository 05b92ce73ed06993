"""The adapter to the Pulumi engine: what runs stacks for real. Imports `core` and `config`.

- `stacks`: the Automation-API executor, one tenant stack at a time (the fleet's `StackExecutor`);
- `setup`: is this VPS able to run stacks (the pinned CLI, the one install hint, the passphrase file);
- `plugins`: the provider plugins of the installed SDKs, exact versions, installed once per run;
- `workdirs`: each stack's persistent work dir and the stack file synced into it;
- `records`: what was deployed, read without the engine (the fleet's `DeployedStore`);
- `kept`: what `destroy` keeps on purpose, and the commands that remove it;
- `errors`: engine failures mapped to one-line domain errors (transient ones retried);
- `locks`: crash recovery (stale stack locks, pending operations) and the fleet run lease;
- `state_store`: the DIY backend's files read without the engine, in a directory or an R2 bucket;
- `throttle`: the one Cloudflare API budget, a throttling reverse proxy on loopback;
- `budget`: the token bucket and window guard that budget is spent from.
"""
