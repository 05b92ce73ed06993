-- Orchestrator tables for one tenant's edge. Timestamps are ISO-8601 UTC text written by the Worker,
-- so they sort lexicographically and prune with a plain comparison.

-- Config versions this edge accepted from KV (first time seen), for the orchestrator's rollout view.
CREATE TABLE applied_config_versions (
	version INTEGER PRIMARY KEY CHECK (version >= 1),
	first_seen_at TEXT NOT NULL,
	bundle_hash TEXT NOT NULL
);

-- One row per cron run: proof of life plus what was being served.
CREATE TABLE heartbeats (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at TEXT NOT NULL,
	cron TEXT NOT NULL,
	config_version INTEGER NOT NULL,
	config_source TEXT NOT NULL CHECK (config_source IN ('kv', 'cache', 'embedded')),
	status TEXT NOT NULL CHECK (status IN ('ok', 'degraded')),
	bundle_hash TEXT NOT NULL
);
CREATE INDEX heartbeats_at ON heartbeats (at);

-- Verified webhook deliveries; the sender's id is the idempotency key.
CREATE TABLE webhook_events (
	webhook_id TEXT PRIMARY KEY,
	topic TEXT,
	body TEXT NOT NULL,
	received_at TEXT NOT NULL
);
CREATE INDEX webhook_events_received_at ON webhook_events (received_at);
