"""The pure core: what a tenant is and what its edge is made of. Imports nothing else of ours.

- `model`: `TenantSpec`, `PlatformSpec` and the naming rules (resource prefix, hosts);
- `cron`: Cloudflare's cron-trigger grammar; `contract`: the Python↔Worker contract file;
- `outputs`: stack output names; `render`: `TenantSpec` → `EdgeBundle`;
- `crypto`: the secret-relay formats (sealed secrets, signed config, webhook signatures);
- `migrations`: which D1 migrations exist and which are pending;
- `drift`: drift decided from engine events; `errors`: the domain errors.
"""
