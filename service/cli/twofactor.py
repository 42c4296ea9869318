"""``signalos keys rotate`` (re-encrypt TOTP secrets under the newest data key) and ``signalos twofactor reset``.

Exit codes: 0 success; 2 bad input or configuration (the JSON error names the variable); 3 some secrets could not
be decrypted with any configured key (``keys rotate``) or no such user (``twofactor reset``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

__all__ = ["keys", "twofactor"]

EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
_T = TypeVar("_T")


def _settings() -> Any:
    from service.settings import Settings
    from signalos_core import ConfigurationError

    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        click.echo(json.dumps({"error": "configuration", "field": exc.field, "message": str(exc)}), err=True)
        sys.exit(EXIT_BAD_INPUT)


def _run(settings: Any, work: Callable[[Any], Awaitable[_T]]) -> _T:
    """Run ``work(service)`` on one database transaction (committed on success)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from service.db.engine import create_engine
    from service.security.passwords import PasswordService
    from service.twofactor.crypto import SecretBox
    from service.twofactor.senders import build_senders
    from service.twofactor.services import TwoFactorService

    async def main() -> _T:
        engine = create_engine(settings.database_url)
        passwords = PasswordService(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as db:
                service = TwoFactorService(
                    db, settings, passwords, SecretBox(settings.data_keys), build_senders(settings)
                )
                result = await work(service)
                await db.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


@click.group()
def keys() -> None:
    """Data-encryption keys (SIGNALOS_DATA_KEY / SIGNALOS_DATA_KEY_FILE)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every TOTP secret under the newest data key.

    Put the new key first and keep the old one after it (SIGNALOS_DATA_KEY="NEW,OLD"), run this, and remove the
    old key once it reports "failed": 0 and at least SIGNALOS_OTP_TTL seconds have passed (emailed/texted codes
    in flight are keyed with the old key). Prints JSON counts; exit 3 if any secret did not decrypt.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    settings = _settings()
    with Progress(
        SpinnerColumn(), TextColumn("re-encrypting TOTP secrets"), console=Console(stderr=True), transient=True
    ) as progress:
        progress.add_task("rotate", total=None)
        counts = _run(settings, lambda service: service.rotate_keys())
    click.echo(json.dumps({**counts, "keys_configured": len(settings.data_keys)}))
    if counts["failed"]:
        sys.exit(EXIT_INCOMPLETE)


@click.group()
def twofactor() -> None:
    """Two-factor administration for operators and support."""


@twofactor.command("reset")
@click.option("--email", required=True, help="Email of the user who lost every second factor.")
@click.option("--yes", is_flag=True, help="Confirm: the identity of the requester was verified out of band.")
def twofactor_reset(email: str, yes: bool) -> None:
    """Turn 2FA off for a user who lost their authenticator AND backup codes (after an identity check).

    Revokes every session, notifies the user by email, records a totp_reset event and puts trading on hold for
    SIGNALOS_RECOVERY_TRADING_HOLD seconds: the user can log in with the password and re-enrol at once, but
    cannot trade until the hold ends.
    """
    from service.problems import ProblemError

    if not yes:
        click.echo(
            json.dumps({"error": "confirmation_required", "message": "pass --yes after verifying identity"}), err=True
        )
        sys.exit(EXIT_BAD_INPUT)
    settings = _settings()

    async def reset(service: Any) -> dict[str, str]:
        user = await service.operator_reset(email)
        state = await service.state(user.id)
        return {"user_id": str(user.id), "trading_hold_until": state.trading_hold_until.isoformat()}

    try:
        click.echo(json.dumps(_run(settings, reset)))
    except ProblemError as exc:
        click.echo(json.dumps({"error": exc.code, "message": exc.detail}), err=True)
        sys.exit(EXIT_BAD_INPUT if exc.code == "validation_error" else EXIT_INCOMPLETE)
