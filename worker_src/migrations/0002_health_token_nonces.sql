-- Health-token nonces already used, so a token replayed to another isolate is refused too.
-- expires_at is unix seconds; the cron prunes rows past it.
CREATE TABLE health_token_nonces (
	nonce TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
