"""Core commands: ``version``, ``serve``, ``db`` (migrations) and ``users`` (bootstrap an administrator)."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from signalos_core import ConfigurationError

__all__ = ["db", "secrets_group", "serve", "users", "version"]

EXIT_BAD_INPUT = 2


def _settings():  # type: ignore[no-untyped-def]  # imported lazily: keeps `signalos version` light
    from service.settings import Settings

    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        click.echo(json.dumps({"error": "configuration", "field": exc.field, "message": str(exc)}), err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def version(as_json: bool) -> None:
    """Print the SignalOS version (and Python / durable-rules availability with --json)."""
    import platform

    from signalos_core import __version__

    if as_json:
        click.echo(json.dumps({"signalos": __version__, "python": platform.python_version()}))
    else:
        click.echo(f"signalos {__version__}")


@click.command()
@click.option("--host", default=None, help="Interface to bind (default SIGNALOS_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default SIGNALOS_PORT or 8000).")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations before serving.")
def serve(host: str | None, port: int | None, migrate: bool) -> None:
    """Run the HTTP service (uvicorn) on the configured database."""
    import uvicorn

    from service.app import create_app
    from service.db.migrate import upgrade

    settings = _settings()
    if migrate:
        upgrade(settings.database_url)
    bind_host = host or settings.host
    bind_port = port if port is not None else settings.port
    click.echo(
        f"SignalOS API on http://{bind_host}:{bind_port}  (docs: http://{bind_host}:{bind_port}/schema, "
        f"OpenAPI: /schema/openapi.json)",
        err=True,
    )
    uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_config=None, access_log=False)


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Migrate the configured database up to REVISION."""
    from service.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    click.echo(json.dumps({"upgraded_to": revision}))


@db.command("current")
def db_current() -> None:
    """Print the database's current revision and the newest available one."""
    from service.db.engine import create_engine
    from service.db.migrate import current_revision, head_revision

    settings = _settings()

    async def read() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(current_revision)
        finally:
            await engine.dispose()

    current = asyncio.run(read())
    click.echo(json.dumps({"current": current, "head": head_revision(), "up_to_date": current == head_revision()}))


@click.group()
def users() -> None:
    """User administration from the command line."""


@users.command("create")
@click.option("--email", required=True, help="Email of the new user.")
@click.option(
    "--role", type=click.Choice(["trader", "firm_admin", "platform_admin"]), default="trader", show_default=True
)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Password (prompted).")
def users_create(email: str, role: str, password: str) -> None:
    """Create a user (the way to bootstrap the first platform admin)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from service.accounts.services import AccountService
    from service.db.engine import create_engine
    from service.problems import ProblemError
    from service.security.passwords import PasswordService

    settings = _settings()

    async def create() -> dict[str, str]:
        engine = create_engine(settings.database_url)
        passwords = PasswordService(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                service = AccountService(session, settings, passwords)
                user = await service.register(email, password, None)
                user.role = role
                await session.commit()
                return {"id": str(user.id), "email": user.email, "role": user.role}
        finally:
            await engine.dispose()

    try:
        click.echo(json.dumps(asyncio.run(create())))
    except ProblemError as exc:
        click.echo(json.dumps({"error": exc.code, "message": exc.detail}), err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.group("secrets")
def secrets_group() -> None:
    """Secrets for a new deployment."""


@secrets_group.command("generate")
def secrets_generate() -> None:
    """Print fresh random SIGNALOS_JWT_SECRET and SIGNALOS_DATA_KEY lines (an env file; keep it private)."""
    import base64
    import secrets

    click.echo(f"SIGNALOS_JWT_SECRET={secrets.token_urlsafe(48)}")
    click.echo(f"SIGNALOS_DATA_KEY={base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}")
