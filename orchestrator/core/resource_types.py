"""Resource type tokens, as the engine names them (pulumi-cloudflare 6.23.1, pulumi-random 4.21.4).

One place for the strings the drift rules, the offline provider stand-in and the policy runner
match on; the tests pin them against the installed providers' own type tokens.
"""

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
KV_NAMESPACE = "cloudflare:index/workersKvNamespace:WorkersKvNamespace"
KV = "cloudflare:index/workersKv:WorkersKv"
D1 = "cloudflare:index/d1Database:D1Database"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"
CRON = "cloudflare:index/workersCronTrigger:WorkersCronTrigger"
DISPATCH_NAMESPACE = "cloudflare:index/workersForPlatformsDispatchNamespace:WorkersForPlatformsDispatchNamespace"
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"
DYNAMIC = "pulumi-python:dynamic:Resource"
CUSTOM_HOSTNAME = "cloudflare:index/customHostname:CustomHostname"
FALLBACK_ORIGIN = "cloudflare:index/customHostnameFallbackOrigin:CustomHostnameFallbackOrigin"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
