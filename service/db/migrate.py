"""Alembic migrations driven from Python (``signalos db upgrade``, the app's readiness check, tests).

The migration scripts live in ``service/db/migrations`` and ship inside the package; nothing depends on an
``alembic.ini`` in the working directory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from service.db.engine import ensure_sqlite_directory

__all__ = ["alembic_config", "compare_type", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    """An alembic configuration pointing at the packaged scripts and ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def compare_type(
    context: MigrationContext, _inspected_column: Any, _metadata_column: Any, _inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic type comparison that knows SQLite cannot round-trip custom column types.

    SQLite keeps only a type *affinity*, so a reflected ``BINARY(16)`` (advanced-alchemy's GUID) or
    ``DATETIME`` (DateTimeUTC) comes back as a different type name: comparing those would report drift that
    does not exist. On SQLite, TypeDecorator columns are therefore considered unchanged; every other case (and
    every type on PostgreSQL) uses alembic's default comparison (``None``).
    """
    if context.dialect.name == "sqlite" and isinstance(metadata_type, TypeDecorator):
        return False
    return None


def head_revision() -> str | None:
    """The newest revision among the packaged scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the connected database is at (``None`` if never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` up to ``revision`` (blocking; runs its own event loop)."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """:func:`upgrade` from async code (alembic's env.py starts its own loop, so use a thread)."""
    await asyncio.to_thread(upgrade, database_url, revision)
