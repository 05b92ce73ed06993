"""The local edge: every tenant's `EdgeBundle` running in one workerd (Miniflare) on loopback.

One bundle, two targets: the same bundle `TenantEdge` deploys to Cloudflare runs here, with the
same bindings, KV entries (signed config, sealed secrets) and D1 migrations, each tenant with its
own persisted KV namespace and D1 database, routed by hostname. Modules:

- `plan`: bundle → the runner's per-tenant input (pure);
- `deploy`: stack files → bundles, relay keys and KV values (decrypts `secure:` values);
- `runtime`: `LocalEdge` (up/down/status) around the node runner (`runner.mjs`);
- `sizing`: how much memory N tenants need, what the machine has, the refusal before start;
- `client`, `ops`: requests by hostname, the control worker (`control.mjs`), push-config, health probes;
- `keys`: relay keys and the control token, generated once and kept 0600;
- `layout`: where the local edge keeps its files (one private state directory);
- `process`: the runtime's processes, found through /proc and checked before any signal;
- `listen`: can the edge listen on host:port, asked before anything is rendered or spawned;
- `errors`: the local edge's failures. (`readonly_sql.mjs`: the control worker's read-only SQL check.)
"""

from orchestrator.local_edge.deploy import PreparedTenant, prepare_tenants
from orchestrator.local_edge.errors import LocalEdgeError, NotRunningError
from orchestrator.local_edge.ops import PushResult, probe_local, push_config, tenant_request
from orchestrator.local_edge.runtime import LocalEdge, RuntimeInfo, Status, TenantInfo

__all__ = [
    "LocalEdge",
    "LocalEdgeError",
    "NotRunningError",
    "PreparedTenant",
    "PushResult",
    "RuntimeInfo",
    "Status",
    "TenantInfo",
    "prepare_tenants",
    "probe_local",
    "push_config",
    "tenant_request",
]
