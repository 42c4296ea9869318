"""RFC 6238 vectors, encryption at rest, key rotation, and a scan of the whole database and logs for secrets."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import select

from service.cli.main import cli
from service.db.engine import create_engine
from service.db.models import metadata
from service.settings import Settings
from service.twofactor import backup, totp
from service.twofactor.crypto import DecryptionError, SecretBox
from tests.service.conftest import TEST_PASSWORD
from tests.service.twofactor.conftest import (
    Authenticator,
    Clock,
    Outbox,
    build_app,
    enrolled_user,
    password_step,
    tf_settings,
    verify,
)

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
RFC6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("moment", "expected"), RFC6238_SHA1)
def test_rfc6238_appendix_b_sha1_vectors(moment: int, expected: str) -> None:
    assert RFC_SECRET == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(moment) == expected
    # Our production setting, 6 digits, is the same value mod 10^6, and our matcher finds its step.
    six = expected[-6:]
    assert pyotp.TOTP(RFC_SECRET).at(moment) == six
    assert totp.matching_step(RFC_SECRET, six, for_time=moment) == moment // 30
    # ±1 step is accepted, 2 steps away is not.
    assert totp.matching_step(RFC_SECRET, six, for_time=moment + 30) == moment // 30
    assert totp.matching_step(RFC_SECRET, six, for_time=moment + 60) is None
    if moment >= 90:  # pyotp refuses steps before the epoch
        assert totp.matching_step(RFC_SECRET, six, for_time=moment - 30) == moment // 30
        assert totp.matching_step(RFC_SECRET, six, for_time=moment - 60) is None


def test_matcher_refuses_non_ascii_and_malformed_codes() -> None:
    moment = 1111111111
    code = pyotp.TOTP(RFC_SECRET).at(moment)
    assert totp.matching_step(RFC_SECRET, code, for_time=moment) is not None
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert pyotp.TOTP(RFC_SECRET).verify(full_width, for_time=moment)  # the pitfall we guard against
    for bad in (full_width, code + "\n", " " + code, code[:5], "1" * 1025, 123456):
        assert totp.matching_step(RFC_SECRET, bad, for_time=moment) is None  # type: ignore[arg-type]


def test_new_secret_is_160_bits_and_provisioning() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    uri, qr = totp.provisioning(secret, "alice@example.com", "Trade Desk")
    assert uri.startswith("otpauth://totp/Trade%20Desk:alice%40example.com?secret=")
    assert qr.startswith("data:image/svg+xml")


def test_aes_gcm_binds_the_secret_to_its_user_and_rotates() -> None:
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    old_box = SecretBox([old_key])
    blob = old_box.encrypt(alice, "JBSWY3DPEHPK3PXP")
    assert b"JBSWY3DPEHPK3PXP" not in blob
    assert old_box.decrypt(alice, blob) == "JBSWY3DPEHPK3PXP"
    assert blob != old_box.encrypt(alice, "JBSWY3DPEHPK3PXP")  # random nonce
    with pytest.raises(DecryptionError):
        old_box.decrypt(bob, blob)  # AAD totp:{user_id}: a row moved to another account does not decrypt
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        old_box.decrypt(alice, tampered)
    rotated_box = SecretBox([new_key, old_key])
    assert rotated_box.decrypt(alice, blob) == "JBSWY3DPEHPK3PXP"
    assert not rotated_box.is_current(blob)
    assert rotated_box.is_current(rotated_box.encrypt(alice, "x"))
    with pytest.raises(DecryptionError):
        SecretBox([new_key]).decrypt(alice, blob)  # old key removed
    assert rotated_box.code_mac("ffff", "a") == ""
    with pytest.raises(ValueError, match="data key"):
        SecretBox([])


@hypothesis_settings(max_examples=50, deadline=None)
@given(count=st.integers(min_value=1, max_value=12))
def test_backup_codes_format(count: int) -> None:
    codes = backup.generate_codes(count)
    assert len(codes) == count
    assert len({backup.split_code(c)[0] for c in codes}) == count  # type: ignore[index]
    for code in codes:
        assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", code)
        assert backup.split_code(code.lower().replace("-", "  ")) == backup.split_code(code)
    assert backup.split_code("IIII-0000-1111-OOOO") is None
    assert backup.split_code("x" * 100) is None


async def _all_text(db_url: str) -> list[tuple[str, str, Any]]:
    engine = create_engine(db_url)
    found: list[tuple[str, str, Any]] = []
    try:
        async with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in (await connection.execute(select(table))).mappings():
                    for column, value in row.items():
                        if isinstance(value, str | bytes | dict | list):
                            found.append((table.name, column, value))
    finally:
        await engine.dispose()
    return found


def test_no_secret_in_any_table_or_log(
    db_url: str, tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tf_settings(db_url, tmp_path, SIGNALOS_LOG_LEVEL="DEBUG")
    outbox = Outbox(settings.outbox_path)  # type: ignore[arg-type]
    with TestClient(app=build_app(settings)) as client:
        user = enrolled_user(client, clock)
        token = password_step(client, user["email"])
        client.post("/api/auth/2fa/send-code", json={"channel": "email"}, headers={"Authorization": f"Bearer {token}"})
        email_code = outbox.last_code(user["email"])
        used_backup = user["backup_codes"][0]
        assert verify(client, token, "backup", used_backup).status_code == 200
        # A pending re-setup secret must not leak either.
        pending = client.post(
            "/api/2fa/totp/setup", json={"code": user["authenticator"].code()}, headers=user["headers"]
        )
        pending_secret = pending.json()["secret"]
        client.post(
            "/api/me/contact/phone",
            json={"phone": "+447911123456", "password": TEST_PASSWORD, "code": user["authenticator"].code()},
            headers=user["headers"],
        )
        sms_code = outbox.last_code("+447911123456", channel="sms")
    needles: list[str | bytes] = [user["secret"], pending_secret, email_code, sms_code, TEST_PASSWORD]
    needles += [base64.b32decode(user["secret"]), base64.b32decode(pending_secret)]
    for code in user["backup_codes"]:
        raw = code.replace("-", "")
        needles += [code, raw, raw[4:]]
    rows = asyncio.run(_all_text(db_url))
    assert any(table == "mfa_totp" for table, _, _ in rows)  # the scan sees the secrets' table
    for table, column, value in rows:
        haystack = value if isinstance(value, bytes) else str(value)
        for needle in needles:
            if isinstance(needle, bytes) and isinstance(haystack, str):
                continue
            if isinstance(needle, str) and isinstance(haystack, bytes):
                assert needle.encode() not in haystack, (table, column)
                continue
            assert needle not in haystack, (table, column)  # type: ignore[operator]
    logs = capsys.readouterr()
    for needle in needles:
        if isinstance(needle, str):
            assert needle not in logs.out + logs.err


def test_keys_rotate_reencrypts_every_secret(db_url: str, tmp_path: Path, clock: Clock) -> None:
    old_key = secrets.token_bytes(32)
    new_key = secrets.token_bytes(32)
    encode = lambda key: base64.urlsafe_b64encode(key).decode()  # noqa: E731
    common = {
        "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
    }
    before = tf_settings(db_url, tmp_path, SIGNALOS_DATA_KEY=encode(old_key), **common)
    with TestClient(app=build_app(before)) as client:
        user = enrolled_user(client, clock)
        app_: Authenticator = user["authenticator"]
    env = {**common, "SIGNALOS_DATABASE_URL": db_url, "SIGNALOS_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    result = runner.invoke(
        cli, ["keys", "rotate"], env={**env, "SIGNALOS_DATA_KEY": f"{encode(new_key)},{encode(old_key)}"}
    )
    assert result.exit_code == 0, result.output
    assert '"rotated": 1' in result.output
    again = runner.invoke(
        cli, ["keys", "rotate"], env={**env, "SIGNALOS_DATA_KEY": f"{encode(new_key)},{encode(old_key)}"}
    )
    assert '"already_current": 1' in again.output
    # The old key can go: the service works with the new key alone.
    after = tf_settings(db_url, tmp_path, SIGNALOS_DATA_KEY=encode(new_key), **common)
    with TestClient(app=build_app(after)) as client:
        assert verify(client, password_step(client, user["email"]), "totp", app_.code()).status_code == 200
    # Without the key that encrypted a secret, rotation reports it and exits 3.
    lost = runner.invoke(cli, ["keys", "rotate"], env={**env, "SIGNALOS_DATA_KEY": encode(secrets.token_bytes(32))})
    assert lost.exit_code == 3
    assert '"failed": 1' in lost.output
    bad = runner.invoke(cli, ["keys", "rotate"], env={**env, "SIGNALOS_DATA_KEY": "short"})
    assert bad.exit_code == 2
    assert "SIGNALOS_DATA_KEY" in bad.output


def test_settings_validate_the_twofactor_variables() -> None:
    from signalos_core import ConfigurationError

    base = {"SIGNALOS_DEV": "1"}
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**base, "SIGNALOS_OTP_TTL": "601"})
    assert info.value.field == "SIGNALOS_OTP_TTL"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**base, "SIGNALOS_SMTP_TLS": "maybe"})
    assert info.value.field == "SIGNALOS_SMTP_TLS"
    settings = Settings.from_env(
        {
            **base,
            "SIGNALOS_MFA_LOCKOUT_SECONDS": "900",
            "SIGNALOS_MFA_LOCKOUT_MAX_SECONDS": "60",
            "SIGNALOS_SMTP_PASSWORD": "pw-secret",
        }
    )
    assert settings.mfa_lockout_max.total_seconds() == 900  # the cap is never below the first lockout
    assert "pw-secret" not in repr(settings)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    threshold=st.integers(min_value=1, max_value=10),
    base=st.integers(min_value=1, max_value=3600),
    cap=st.integers(min_value=1, max_value=86400),
    failures=st.integers(min_value=0, max_value=10_000),
)
def test_lockout_schedule(threshold: int, base: int, cap: int, failures: int) -> None:
    from service.twofactor.verifier import lockout_duration

    settings = Settings.from_env(
        {
            "SIGNALOS_DEV": "1",
            "SIGNALOS_MFA_LOCKOUT_THRESHOLD": str(threshold),
            "SIGNALOS_MFA_LOCKOUT_SECONDS": str(base),
            "SIGNALOS_MFA_LOCKOUT_MAX_SECONDS": str(cap),
        }
    )
    duration = lockout_duration(settings, failures)
    if failures < threshold:
        assert duration is None
        return
    assert duration is not None
    seconds = duration.total_seconds()
    assert base <= seconds <= max(base, cap)  # at least the first lock, never beyond the cap
    following = lockout_duration(settings, failures + 1)
    assert following is not None
    assert following >= duration  # escalates (or stays at the cap)
    if failures == threshold:
        assert seconds == base
