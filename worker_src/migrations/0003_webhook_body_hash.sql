-- Webhook idempotency bound to what is signed: the SHA-256 (hex) of the exact body bytes the signature
-- covers. The id and topic headers are not signed, so a captured delivery resent under another id or
-- topic is a duplicate, not a new event (docs/contract.md, "Webhooks").
ALTER TABLE webhook_events ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX webhook_events_body_sha256 ON webhook_events (body_sha256);
-- Rows stored before this migration have no hash; until the cron prunes them, a new delivery is also
-- compared with their bodies. This partial index keeps that lookup to those rows only.
CREATE INDEX webhook_events_unhashed ON webhook_events (received_at) WHERE body_sha256 IS NULL;
