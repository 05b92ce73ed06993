"""D1 migrations: which files exist, which are pending, and how one is applied.

Same rules as wrangler (`d1_migrations` table, file-name order, each exactly once) so an operator
can inspect a tenant database with `wrangler d1 migrations list`. The SQL is read from
`worker_src/migrations/`, the very files the Worker's own tests and the local edge apply.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from orchestrator.core.contract import MIGRATIONS_DIR, contract
from orchestrator.core.errors import MigrationError

MIGRATION_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class Migration(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    """File name, e.g. `0001_init.sql` (wrangler records the file name)."""
    sql: str
    sha256: str


def migrations_table() -> str:
    table: str = contract()["migrations_table"]
    return table


def create_table_sql() -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {migrations_table()} ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL, "
        "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )


def apply_sql(migration: Migration) -> str:
    """One query string: the bookkeeping row, then the migration, so D1 commits both or neither.

    The row goes first: appended after the file's text it could be swallowed by what the file ends
    with (a last statement without `;` followed by a `--` comment, an unterminated `/*`). The
    trailing newline ends a final `--` comment. (wrangler appends after a newline instead,
    packages/wrangler/src/d1/migrations/helpers.ts `buildMigrationQuery`; the order within the one
    request does not matter for atomicity.)
    """
    # The name is constrained by MIGRATION_FILE_RE, so inlining it cannot inject SQL.
    return f"INSERT INTO {migrations_table()} (name) VALUES ('{migration.name}');\n{migration.sql}\n"


def load_migrations(directory: Path) -> tuple[Migration, ...]:
    found: list[Migration] = []
    numbers: set[str] = set()
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files must be named NNNN_snake_name.sql")
        if match.group(1) in numbers:
            raise MigrationError(f"{path}: migration number {match.group(1)} is used twice")
        numbers.add(match.group(1))
        sql = path.read_text(encoding="utf-8")
        found.append(Migration(name=path.name, sql=sql, sha256=hashlib.sha256(sql.encode()).hexdigest()))
    return tuple(found)


@cache
def bundled_migrations() -> tuple[Migration, ...]:
    return load_migrations(MIGRATIONS_DIR)


def pending(applied: Sequence[str], migrations: Sequence[Migration], database: str) -> list[Migration]:
    """Migrations still to apply; refuses any history that is not a prefix of the files."""
    names = [m.name for m in migrations]
    if list(applied) != names[: len(applied)]:
        raise MigrationError(
            f"D1 database {database}: applied migrations {list(applied)} are not a prefix of "
            f"{names}; a migration was renamed, removed or applied out of order — fix by hand, never guess"
        )
    return list(migrations[len(applied) :])


class SqlExecutor(Protocol):
    """Runs SQL against one database: the D1 HTTP API in production, sqlite3 in tests."""

    def query(self, sql: str) -> list[dict[str, object]]: ...


def apply_migrations(executor: SqlExecutor, migrations: Sequence[Migration], database: str) -> list[str]:
    """Apply what is pending, in order; returns the names applied now (empty when up to date)."""
    executor.query(create_table_sql())
    rows = executor.query(f"SELECT name FROM {migrations_table()} ORDER BY id")
    todo = pending([str(r["name"]) for r in rows], migrations, database)
    for migration in todo:
        executor.query(apply_sql(migration))
    return [m.name for m in todo]
