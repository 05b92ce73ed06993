"""D1 migrations: ordered, exactly once, atomic, over the real HTTP API shape."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_d1 import FakeD1, serve_fake_d1
from pulumi.dynamic.dynamic import serialize_provider

from components.d1_migrations import D1HttpExecutor, D1MigrationsProvider
from orchestrator.core.contract import REPO_ROOT
from orchestrator.core.errors import MigrationError
from orchestrator.core.migrations import Migration, apply_migrations, bundled_migrations, load_migrations, pending

ACCOUNT = "0123456789abcdef0123456789abcdef"
DB = "f46de935-c91b-5b1b-b357-3cbca3d9465c"


def _migration(name: str, sql: str) -> Migration:
    return Migration(name=name, sql=sql, sha256=hashlib.sha256(sql.encode()).hexdigest())


class SqliteExecutor:
    def __init__(self) -> None:
        self.fake = FakeD1("unused")

    def query(self, sql: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = self.fake.execute("db", sql)[-1]["results"]
        return rows

    def tables(self) -> set[str]:
        rows = self.fake.connection("db").execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        return {r[0] for r in rows}


def test_bundled_migrations_are_ordered_and_named_like_wrangler() -> None:
    names = [m.name for m in bundled_migrations()]
    assert names == sorted(names) and names[0].startswith("0001_")


def test_loader_refuses_badly_named_or_duplicate_files(tmp_path: Path) -> None:
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE a (x);")
    (tmp_path / "init.sql").write_text("CREATE TABLE b (x);")
    with pytest.raises(MigrationError, match=r"init\.sql: migration files must be named NNNN_snake_name\.sql"):
        load_migrations(tmp_path)
    (tmp_path / "init.sql").unlink()
    (tmp_path / "0001_again.sql").write_text("CREATE TABLE c (x);")
    with pytest.raises(MigrationError, match="number 0001 is used twice"):
        load_migrations(tmp_path)


def test_pending_refuses_any_history_that_is_not_a_prefix() -> None:
    files = [_migration("0001_a.sql", "x"), _migration("0002_b.sql", "y")]
    assert [m.name for m in pending(["0001_a.sql"], files, "db1")] == ["0002_b.sql"]
    assert pending(["0001_a.sql", "0002_b.sql"], files, "db1") == []
    for history in (["0002_b.sql"], ["0001_a.sql", "0003_c.sql"], ["0001_renamed.sql"]):
        with pytest.raises(MigrationError, match=r"D1 database db1: applied migrations .* are not a prefix"):
            pending(history, files, "db1")


def test_fresh_database_gets_every_migration_once() -> None:
    executor = SqliteExecutor()
    applied = apply_migrations(executor, bundled_migrations(), "db")
    assert applied == [m.name for m in bundled_migrations()]
    assert {"d1_migrations", "webhook_events"} <= executor.tables()
    assert apply_migrations(executor, bundled_migrations(), "db") == []
    rows = executor.query("SELECT name FROM d1_migrations ORDER BY id")
    assert [r["name"] for r in rows] == applied


def test_failed_migration_leaves_neither_schema_nor_bookkeeping() -> None:
    executor = SqliteExecutor()
    good = _migration("0001_a.sql", "CREATE TABLE a (x INTEGER);")
    bad = _migration("0002_b.sql", "CREATE TABLE b (x INTEGER);\nINSERT INTO missing_table VALUES (1);")
    with pytest.raises(sqlite3.Error):
        apply_migrations(executor, [good, bad], "db")
    assert "b" not in executor.tables()
    assert [r["name"] for r in executor.query("SELECT name FROM d1_migrations")] == ["0001_a.sql"]


@pytest.fixture
def d1(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeD1, str]]:
    with serve_fake_d1() as (fake, base_url):
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", base_url)
        monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
        yield fake, base_url


def _outs(result: object) -> dict[str, Any]:
    outs = getattr(result, "outs", None)
    assert isinstance(outs, dict)
    return outs


def _props(migrations: list[Migration], token: str | None = "good-token") -> dict[str, object]:
    return {
        "account_id": ACCOUNT,
        "database_id": DB,
        "migrations": [m.model_dump() for m in migrations],
        "api_token": token,
    }


def test_provider_create_then_update_applies_only_new_migrations(d1: tuple[FakeD1, str]) -> None:
    fake, _ = d1
    provider = D1MigrationsProvider()
    first = [_migration("0001_a.sql", "CREATE TABLE a (x INTEGER);")]
    created = provider.create(_props(first))
    assert created.id == f"{ACCOUNT}/{DB}" and _outs(created)["applied_now"] == ["0001_a.sql"]
    second = [*first, _migration("0002_b.sql", "CREATE TABLE b (x INTEGER);")]
    updated = provider.update(created.id, _outs(created), _props(second))
    assert _outs(updated)["applied_now"] == ["0002_b.sql"]
    again = provider.update(created.id, _outs(updated), _props(second))
    assert _outs(again)["applied_now"] == []
    assert all(r["auth"] == "Bearer good-token" for r in fake.requests)
    assert all(r["path"] == f"/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/query" for r in fake.requests)


def test_provider_applies_the_real_migration_files(d1: tuple[FakeD1, str]) -> None:
    fake, _ = d1
    created = D1MigrationsProvider().create(_props(list(bundled_migrations())))
    assert _outs(created)["applied_now"] == [m.name for m in bundled_migrations()]
    tables = {r[0] for r in fake.connection(DB).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "webhook_events" in tables


def test_editing_an_applied_migration_is_refused(d1: tuple[FakeD1, str]) -> None:
    provider = D1MigrationsProvider()
    created = provider.create(_props([_migration("0001_a.sql", "CREATE TABLE a (x INTEGER);")]))
    edited = [_migration("0001_a.sql", "CREATE TABLE a (x INTEGER, y TEXT);")]
    with pytest.raises(MigrationError, match=r"migration 0001_a\.sql was edited after it was applied"):
        provider.update(created.id, _outs(created), _props(edited))


def test_token_from_environment_and_clear_error_without_one(
    d1: tuple[FakeD1, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = [_migration("0001_a.sql", "CREATE TABLE a (x INTEGER);")]
    with pytest.raises(MigrationError, match=f"D1 database {DB}: no API token.*CLOUDFLARE_API_TOKEN"):
        D1MigrationsProvider().create(_props(migrations, token=None))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "good-token")
    assert _outs(D1MigrationsProvider().create(_props(migrations, token=None)))["applied_now"] == ["0001_a.sql"]


def test_api_errors_are_reported_without_the_token(d1: tuple[FakeD1, str]) -> None:
    with pytest.raises(MigrationError) as caught:
        D1MigrationsProvider().create(_props([_migration("0001_a.sql", "SELECT 1;")], token="wrong-token-XYZ"))
    assert "HTTP 401: Authentication error" in str(caught.value)
    assert "wrong-token-XYZ" not in str(caught.value)


def test_unreachable_api_names_the_endpoint() -> None:
    executor = D1HttpExecutor(ACCOUNT, DB, "t", base_url="http://127.0.0.1:9/client/v4")
    with pytest.raises(MigrationError, match=re.escape("cannot reach http://127.0.0.1:9/client/v4")):
        executor.query("SELECT 1")


def test_diff_ignores_token_rotation_and_replaces_on_new_database() -> None:
    provider = D1MigrationsProvider()
    migrations = [_migration("0001_a.sql", "x")]
    olds = _props(migrations, token="old")
    assert not provider.diff("id", olds, _props(migrations, token="new")).changes
    moved = {**_props(migrations), "database_id": "other"}
    result = provider.diff("id", olds, moved)
    assert result.changes and result.replaces == ["database_id"]
    grown = _props([*migrations, _migration("0002_b.sql", "y")])
    assert provider.diff("id", olds, grown).changes


PROVIDER_HOST = """
import base64, json, os, sys
import dill
provider = dill.loads(base64.b64decode(sys.stdin.read()))
props = json.loads(os.environ["PROPS"])
print(json.dumps(provider.create(props).outs["applied_now"]))
"""


def test_provider_survives_pulumis_serialization_into_a_fresh_process(d1: tuple[FakeD1, str]) -> None:
    # Pulumi pickles the provider (dill) into state and loads it in a separate provider process
    # started in the project directory; prove that round trip applies migrations for real.
    fake, base_url = d1
    blob = serialize_provider(D1MigrationsProvider())
    props = _props([_migration("0001_a.sql", "CREATE TABLE a (x INTEGER);")])
    env = {"PATH": "/usr/bin:/bin", "CLOUDFLARE_BASE_URL": base_url, "PROPS": json.dumps(props)}
    done = subprocess.run(
        [sys.executable, "-c", PROVIDER_HOST], input=blob, cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == ["0001_a.sql"]
    assert "a" in {r[0] for r in fake.connection(DB).execute("SELECT name FROM sqlite_master WHERE type='table'")}


TRAILING = {
    "statement without ; then a -- comment": "CREATE TABLE a (x INTEGER) -- the end, no semicolon",
    "-- comment on the last line, no newline": "CREATE TABLE a (x INTEGER);\n-- the end",
    "-- comment after ; on the same line": "CREATE TABLE a (x INTEGER); -- the end",
    "-- comment line holding a ;": "CREATE TABLE a (x INTEGER);\n-- the end; really",
    "CRLF and a trailing comment": "CREATE TABLE a (x INTEGER);\r\n-- the end\r\n",
    "block comment last": "CREATE TABLE a (x INTEGER);\n/* the end */",
}


@pytest.mark.parametrize("case", sorted(TRAILING))
def test_a_file_ending_in_a_comment_keeps_its_bookkeeping_row(case: str, d1: tuple[FakeD1, str]) -> None:
    # Issue 11, item 7: the row used to be appended after the file with a `;`; what the file ends
    # with could swallow or break it. Through the real HTTP shape, then recorded exactly once.
    fake, _ = d1
    migration = _migration("0001_a.sql", TRAILING[case])
    created = D1MigrationsProvider().create(_props([migration]))
    assert _outs(created)["applied_now"] == ["0001_a.sql"]
    conn = fake.connection(DB)
    assert [r[0] for r in conn.execute("SELECT name FROM d1_migrations")] == ["0001_a.sql"]
    assert "a" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    sent = fake.requests[-1]["body"]["sql"]
    assert sent.startswith("INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');\n"), sent
    again = D1MigrationsProvider().update(created.id, _outs(created), _props([migration]))
    assert _outs(again)["applied_now"] == []


def test_a_failing_migration_leaves_no_bookkeeping_row_even_though_the_row_goes_first() -> None:
    executor = SqliteExecutor()
    bad = _migration("0001_a.sql", "CREATE TABLE a (x INTEGER);\nINSERT INTO missing_table VALUES (1);")
    with pytest.raises(sqlite3.Error):
        apply_migrations(executor, [bad], "db")
    assert executor.query("SELECT name FROM d1_migrations") == []
    assert "a" not in executor.tables()
