"""Black-box: the documented start command (`signalos serve`), configured only by environment variables,
killed and restarted on the same SQLite file: the second-factor lock survives the restart."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.service.conftest import TEST_PASSWORD
from tests.service.twofactor.conftest import Outbox
from tests.service.twofactor.servers import free_port

ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    """Run `python -m service.cli serve` until it answers /health; SIGKILL it afterwards (no clean shutdown)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{env['SIGNALOS_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@pytest.mark.slow
def test_lock_survives_a_killed_server(tmp_path: Path) -> None:
    env = {
        "SIGNALOS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'signalos.db'}",
        "SIGNALOS_PORT": str(free_port()),
        "SIGNALOS_JWT_SECRET": secrets.token_urlsafe(48),
        "SIGNALOS_DATA_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SIGNALOS_OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
        "SIGNALOS_ARGON2_TIME_COST": "1",
        "SIGNALOS_ARGON2_MEMORY_KIB": "8",
        "SIGNALOS_ARGON2_PARALLELISM": "1",
        "SIGNALOS_MFA_LOCKOUT_THRESHOLD": "2",
        "SIGNALOS_MFA_LOCKOUT_SECONDS": "600",
        "SIGNALOS_LOG_LEVEL": "WARNING",
        "SIGNALOS_VAR_DIR": str(tmp_path / "var"),
    }
    account = {"email": "blackbox@example.com", "password": TEST_PASSWORD}
    with serve(env) as base:
        assert httpx.post(f"{base}/api/auth/register", json=account).status_code == 201
        tokens = httpx.post(f"{base}/api/auth/login", json=account).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        secret = httpx.post(f"{base}/api/2fa/totp/setup", json={}, headers=headers).json()["secret"]
        totp = pyotp.TOTP(secret)
        assert httpx.post(f"{base}/api/2fa/totp/enable", json={"code": totp.now()}, headers=headers).status_code == 200
        for _ in range(2):
            pending = httpx.post(f"{base}/api/auth/login", json=account).json()["mfa_token"]
            wrong = httpx.post(
                f"{base}/api/auth/2fa/verify",
                json={"method": "totp", "code": "000000" if totp.now() != "000000" else "111111"},
                headers={"Authorization": f"Bearer {pending}"},
            )
            assert wrong.status_code == 401
        # The outbox (test mode) received the lockout notice.
        assert any(m["subject"] == "Second factor locked" for m in Outbox(tmp_path / "outbox.jsonl").messages())
    with serve(env) as base:
        pending = httpx.post(f"{base}/api/auth/login", json=account).json()["mfa_token"]
        # The next step's code is valid (window +1) and unused, yet the lock from before the kill holds.
        locked = httpx.post(
            f"{base}/api/auth/2fa/verify",
            json={"method": "totp", "code": totp.at(time.time() + 30)},
            headers={"Authorization": f"Bearer {pending}"},
        )
        assert locked.status_code == 401
        assert locked.json()["code"] == "invalid_second_factor"
