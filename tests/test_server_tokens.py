"""Control-room tokens: hashed at rest in a 0600 file, named, compared in constant time, hot-reloaded."""

from __future__ import annotations

import hmac
import json
import os
import threading
from pathlib import Path

import pytest

from orchestrator.server.errors import TokenError
from orchestrator.server.security import RateLimited, RateLimiter
from orchestrator.server.tokens import TokenStore, digest


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(tmp_path / "home" / "serve-tokens.json")


def test_add_keeps_only_a_hash_in_a_private_file(store: TokenStore) -> None:
    token = store.add("ci")
    assert token.startswith("cbt_") and len(token) >= 40
    text = store.path.read_text()
    assert token not in text and digest(token) in text
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.path.parent.stat().st_mode & 0o077 == 0
    assert [t.name for t in store.list()] == ["ci"]
    assert store.verify(token) == "ci"


def test_tokens_are_distinct_and_each_resolves_to_its_name(store: TokenStore) -> None:
    issued = {name: store.add(name) for name in ("ci", "ops", "phone")}
    assert len(set(issued.values())) == 3
    for name, token in issued.items():
        assert store.verify(token) == name
    assert store.verify(issued["ci"] + "x") is None
    assert store.verify("") is None and store.verify("cbt_") is None


def test_names_are_checked(store: TokenStore) -> None:
    store.add("ci")
    with pytest.raises(TokenError, match="token 'ci' exists already; remove it first"):
        store.add("ci")
    for bad in ("", "CI", "-x", "a b", "x" * 65, "../etc", "ci\n"):
        with pytest.raises(TokenError, match="use 1-64 characters"):
            store.add(bad)
    with pytest.raises(TokenError, match=r"no token named 'nope' \(tokens: ci\)"):
        store.remove("nope")


def test_remove_and_add_take_effect_without_a_restart(store: TokenStore, tmp_path: Path) -> None:
    server_view = TokenStore(store.path)  # a second process: the running server
    assert server_view.verify("cbt_anything") is None
    ci = store.add("ci")
    assert server_view.verify(ci) == "ci"
    ops = store.add("ops")
    assert server_view.verify(ops) == "ops"
    store.remove("ci")
    assert server_view.verify(ci) is None and server_view.verify(ops) == "ops"


def test_every_stored_hash_is_compared_whichever_matches(store: TokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = [store.add(f"t{i}") for i in range(5)]
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for token in (issued[0], issued[4], "cbt_wrong"):
        calls.clear()
        store.verify(token)
        assert len(calls) == 5  # no early exit: timing does not say which token nearly matched


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666, 0o700])
def test_a_file_others_can_read_is_refused(store: TokenStore, mode: int) -> None:
    token = store.add("ci")
    store.path.chmod(mode)
    assert store.verify(token) is None
    # The one owner-only rule's message (config/private_files.py), as for every secret file.
    assert (
        store.error == f"token file {store.path} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {store.path})"
    )
    with pytest.raises(TokenError, match="it must be 0600 or 0400"):
        store.add("other")


def test_a_symlink_or_damaged_file_is_refused(store: TokenStore, tmp_path: Path) -> None:
    real = TokenStore(tmp_path / "elsewhere.json")
    token = real.add("ci")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.symlink_to(real.path)
    assert store.verify(token) is None and store.error is not None and "cannot open" in store.error
    store.path.unlink()
    fd = os.open(store.path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b'{"version": 1, "tokens": [{"name": "ci", "sha256": "nothex", "created": "2026-01-01T00:00:00Z"}]}')
    os.close(fd)
    assert store.verify(token) is None
    assert store.error is not None and store.error.startswith(f"token file {store.path}: tokens.0.sha256:")
    store.path.write_text(json.dumps({"version": 1, "tokens": [], "extra": True}))
    assert store.verify(token) is None and store.error is not None and "extra" in store.error


def test_concurrent_adds_lose_no_token(store: TokenStore) -> None:
    results: dict[str, str] = {}

    def add(name: str) -> None:
        results[name] = TokenStore(store.path).add(name)

    threads = [threading.Thread(target=add, args=(f"c{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.name for t in store.list()) == sorted(results)
    assert all(store.verify(token) == name for name, token in results.items())


def test_rate_limiter_refuses_past_the_burst_and_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    limiter.take("ci")
    limiter.take("ci")
    with pytest.raises(RateLimited) as refused:
        limiter.take("ci")
    assert refused.value.retry_after_s == pytest.approx(10.0)
    limiter.take("ops")  # per token
    now[0] = 10.0
    limiter.take("ci")
    with pytest.raises(RateLimited):
        limiter.take("ci")
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, burst=1)
