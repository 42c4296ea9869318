"""Two-factor costs, each beside a baseline measured in the same run.

Run: .venv/bin/python benchmarks/bench_twofactor.py   (about 20 s; numbers go to docs/performance.md)

1. TOTP check (strict format + pyotp verify_and_get_timecode over 3 steps) vs one raw HMAC-SHA1 HOTP.
2. Decrypting a TOTP secret (SecretBox: key-id lookup + AES-256-GCM with AAD) vs a bare AESGCM.decrypt.
3. Checking a backup code with production argon2id parameters: ours (id prefix, one hash) vs a design without
   the prefix that must try all 10 stored hashes.
4. HTTP on SQLite: password login + TOTP verify (the 2FA login) vs a password-only login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import statistics
import struct
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyotp
import time_machine
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.twofactor import backup, totp
from service.twofactor.crypto import SecretBox


def per_call(function: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over 5 rounds of ``repeat`` calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        rounds.append((time.perf_counter() - start) / repeat)
    return statistics.median(rounds)


def show(name: str, ours: float, baseline: float, baseline_name: str) -> None:
    print(
        f"{name:<34} {ours * 1e6:>12.1f} us   baseline ({baseline_name}) {baseline * 1e6:>12.1f} us   ratio {ours / baseline:6.2f}"
    )


def bench_totp() -> None:
    secret = pyotp.random_base32(32)
    code = pyotp.TOTP(secret).now()
    key = base64.b32decode(secret)
    counter = struct.pack(">Q", int(time.time()) // 30)
    ours = per_call(lambda: totp.matching_step(secret, code), 2000)
    baseline = per_call(lambda: hmac.new(key, counter, hashlib.sha1).digest(), 2000)
    show("TOTP check (window +-1)", ours, baseline, "one HMAC-SHA1")


def bench_decrypt() -> None:
    root = secrets.token_bytes(32)
    box = SecretBox([root])
    user = uuid.uuid4()
    blob = box.encrypt(user, pyotp.random_base32(32))
    raw = AESGCM(secrets.token_bytes(32))
    nonce = secrets.token_bytes(12)
    sealed = raw.encrypt(nonce, b"A" * 32, b"aad")
    ours = per_call(lambda: box.decrypt(user, blob), 5000)
    baseline = per_call(lambda: raw.decrypt(nonce, sealed, b"aad"), 5000)
    show("TOTP secret decrypt", ours, baseline, "bare AES-GCM")


def bench_backup() -> None:
    hasher = PasswordHasher()  # production parameters: t=3, m=64 MiB, p=4
    codes = backup.generate_codes()
    stored = {backup.split_code(c)[0]: hasher.hash(backup.split_code(c)[1]) for c in codes}  # type: ignore[index]
    probe = backup.split_code(codes[-1])
    assert probe is not None

    def ours() -> None:
        hasher.verify(stored[probe[0]], probe[1])

    def without_prefix() -> None:
        for encoded in stored.values():
            try:
                hasher.verify(encoded, probe[1])
            except Exception:  # noqa: S112 - a mismatch is the expected outcome for 9 of 10
                continue

    show("backup code check (argon2id)", per_call(ours, 2), per_call(without_prefix, 1), "no id: 10 hashes")


def bench_http() -> None:
    from litestar.testing import TestClient

    from service.app import create_app
    from service.db.migrate import upgrade
    from service.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    env = {
        "SIGNALOS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_DATA_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_RATE_LIMIT_PER_MINUTE": "0",
        "SIGNALOS_MFA_IP_RATE_PER_MINUTE": "0",
        "SIGNALOS_LOG_LEVEL": "ERROR",
    }
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    password = "correct horse battery staple"  # noqa: S105 - a benchmark account
    with time_machine.travel(time.time(), tick=True) as traveller, TestClient(app=create_app(settings)) as client:
        plain = {"email": "plain@example.com", "password": password}
        strong = {"email": "strong@example.com", "password": password}
        for account in (plain, strong):
            client.post("/api/auth/register", json=account)
        session = client.post("/api/auth/login", json=strong).json()
        headers = {"Authorization": f"Bearer {session['access_token']}"}
        secret = client.post("/api/2fa/totp/setup", json={}, headers=headers).json()["secret"]
        client.post("/api/2fa/totp/enable", json={"code": pyotp.TOTP(secret).now()}, headers=headers)
        generator = pyotp.TOTP(secret)

        def two_factor_login() -> None:
            # Each code is accepted once per 30 s step (replay protection): move the clock to the next step.
            traveller.shift(30)
            token = client.post("/api/auth/login", json=strong).json()["mfa_token"]
            response = client.post(
                "/api/auth/2fa/verify",
                json={"method": "totp", "code": generator.now()},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text

        def password_login() -> None:
            assert client.post("/api/auth/login", json=plain).status_code == 200

        show(
            "HTTP 2FA login (2 requests)",
            per_call(two_factor_login, 20),
            per_call(password_login, 20),
            "password login",
        )


if __name__ == "__main__":
    bench_totp()
    bench_decrypt()
    bench_backup()
    bench_http()
