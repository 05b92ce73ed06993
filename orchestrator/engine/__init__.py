"""The adapter to the Pulumi engine: what runs stacks for real. Imports `core` and `config`.

- `stacks`: one tenant stack through the Automation API (VPS checks, work dirs, the deployed
  records, kept resources, error mapping, the executor the fleet's ports ask for);
- `locks`: crash recovery (stale stack locks, pending operations) and the fleet run lease;
- `throttle`: the one Cloudflare API budget, a throttling reverse proxy on loopback.
"""
