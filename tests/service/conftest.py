"""Service test fixtures: a real database (SQLite file always, PostgreSQL when configured) and an app client.

Every database test runs against both backends through the ``db_url`` fixture: SQLite always, PostgreSQL when
``SIGNALOS_TEST_POSTGRES_URL`` is set (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``). Each test
run gets its own database (a fresh SQLite file; a ``signalos_test_<random>`` database on PostgreSQL, dropped
at the end), migrated once; tables are emptied between tests, so parallel or repeated runs never collide.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from service.accounts.models import User
from service.app import create_app
from service.db.engine import create_engine
from service.db.migrate import upgrade
from service.db.models import metadata
from service.settings import Settings

POSTGRES_ENV = "SIGNALOS_TEST_POSTGRES_URL"
TEST_PASSWORD = "correct horse battery staple"


def _backends() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def postgres_admin_url() -> str | None:
    """The PostgreSQL URL given to the test run, or None."""
    return os.environ.get(POSTGRES_ENV) or None


def create_postgres_database() -> str:
    """Create a fresh, uniquely named PostgreSQL database and return its URL."""
    admin = postgres_admin_url()
    assert admin is not None
    name = f"signalos_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(admin, f'CREATE DATABASE "{name}"'))
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`."""
    admin = postgres_admin_url()
    assert admin is not None
    name = make_url(url).database
    asyncio.run(_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=_backends())
def migrated_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole run, one per backend."""
    if request.param == "postgres":
        if postgres_admin_url() is None:
            pytest.skip(f"{POSTGRES_ENV} is not set")
        url = create_postgres_database()
        upgrade(url)
        yield url
        drop_postgres_database(url)
    else:
        path: Path = tmp_path_factory.mktemp("db") / "signalos.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
def db_url(migrated_db_url: str) -> Iterator[str]:
    """The run's database, emptied after the test."""
    yield migrated_db_url
    asyncio.run(_truncate(migrated_db_url))


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: explicit random secrets, cheap argon2, no flood guard."""
    env = {
        "SIGNALOS_DATABASE_URL": db_url,
        "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_DATA_KEY": __import__("base64").urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_RATE_LIMIT_PER_MINUTE": "0",
        "SIGNALOS_LOG_LEVEL": "WARNING",
        "SIGNALOS_VAR_DIR": str(tmp_path / "var"),
        "SIGNALOS_COMPLIANCE_CLOCK_INTERVAL": "0",  # tests drive clock ticks themselves
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return Settings.from_env(env)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Test settings on the run's database."""
    return make_settings(db_url, tmp_path)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The application under test."""
    return create_app(settings)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A test client with the app's lifespan running."""
    with TestClient(app=app) as test_client:
        yield test_client


def register_and_login(
    client: TestClient[Litestar], email: str | None = None, password: str = TEST_PASSWORD, **login_extra: Any
) -> dict[str, Any]:
    """Register a trader and log in; returns the token pair plus ``email`` and ``headers``."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = client.post("/api/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    response = client.post("/api/auth/login", json={"email": email, "password": password, **login_extra})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    tokens["email"] = email
    tokens["user_id"] = client.get("/api/me", headers=bearer(tokens)).json()["id"]
    tokens["headers"] = bearer(tokens)
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """Authorization header for a token pair."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def promote(db_url: str, user_id: str, role: str, firm_id: str | None = None) -> None:
    """Set a user's role directly in the database (test bootstrap of admins)."""

    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(User)
                    .where(User.id == uuid.UUID(user_id))
                    .values(role=role, firm_id=uuid.UUID(firm_id) if firm_id else None)
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def live_server(app: Litestar) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port (for CLI and load tests); yields its URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
