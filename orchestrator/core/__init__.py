"""The pure core: what a tenant is and what its edge is made of. Imports nothing else of ours.

- `model`: `TenantSpec`, `PlatformSpec`, the naming and validation rules (tenant ids, secret names);
- `names`: stack names and stack files (`prod.<tenant>`, `Pulumi.<stack>.yaml`), both ways;
- `cron`: Cloudflare's cron-trigger grammar; `contract`: the Python↔Worker contract file;
- `outputs`: stack output names; `render`: `TenantSpec` → `EdgeBundle`;
- `esm_link`: the Worker's modules linked into the one module a bundle uploads; `js_tokens`: its tokenizer;
- `crypto`: the secret-relay formats (sealed secrets, signed config, health tokens, webhooks);
- `config_match`: whether two config payloads are the same, as the Worker's `sameJson` decides;
- `migrations`: which D1 migrations exist and which are pending;
- `drift`: drift decided from engine events; `resource_types`: the providers' type tokens;
- `health`: the health answer and the verdict on it; `masking`: the one `[secret]` mask, redaction;
- `hostnames`: who owns a hostname across the fleet; `pack`: where the policy pack lives;
- `addresses`: whether a host is loopback (where plain http may be allowed);
- `cloudflare_api`: where the Cloudflare API is (`CLOUDFLARE_BASE_URL`, else the public API);
- `dispatch`: dispatch mode (Workers for Platforms) as plain data: names, tags, routing entries;
- `errors`: the domain errors every layer shares.
"""
