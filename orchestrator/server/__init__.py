"""The control room: `python -m orchestrator serve`, an HTTP API and a live page (a door, like `cli/`).

Nothing imports this package; it imports the library only through `library`.

- `library`: the one adapter to the rest of the orchestrator (status, health, drift, audit, fleet runs);
- `tokens`: named bearer tokens, hashed in a 0600 file, reloaded when it changes;
- `security`: actor per request, JSON-only state changes, per-token rate limit, response headers;
- `jobs`: background fleet jobs (one at a time, one per stack, cancellable);
- `watcher`, `events`: the picture kept fresh, and pushed to pages over Server-Sent Events;
- `scheduler`: the systemd timers' last and next runs;
- `schemas`, `api`, `pages` (+ `templates/`, `static/`), `state`, `app`: the FastAPI app;
- `serve`: binding rules and uvicorn;
- `errors`: the control room's own failures (token, job, not found, unavailable).
"""
