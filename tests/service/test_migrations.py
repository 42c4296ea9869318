"""Migrations: a fresh database migrates to head, autogenerate finds no drift, downgrade works (both DBs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from service.db.engine import create_engine
from service.db.migrate import compare_type, current_revision, downgrade, head_revision, upgrade
from service.db.models import metadata
from tests.service.conftest import create_postgres_database, drop_postgres_database, postgres_admin_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        if postgres_admin_url() is None:
            pytest.skip("SIGNALOS_TEST_POSTGRES_URL is not set")
        url = create_postgres_database()
        yield url
        drop_postgres_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


def _inspect(url: str, fn: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": compare_type})
    return list(compare_metadata(context, metadata))


def test_upgrade_to_head_has_no_autogenerate_diff(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert _inspect(fresh_url, current_revision) == head_revision()
    assert _inspect(fresh_url, _diff) == []


def test_downgrade_to_base_and_back(fresh_url: str) -> None:
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    assert _inspect(fresh_url, current_revision) is None
    upgrade(fresh_url)
    assert _inspect(fresh_url, current_revision) == head_revision()


def test_migrations_form_one_line() -> None:
    from alembic.script import ScriptDirectory

    from service.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "several migration heads: chain the new revision after the current head"
