"""Service skeleton: configuration, health/readiness, problem+json, OpenAPI, auth rules, logging, admin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from service.app import create_app
from service.problems import PROBLEMS
from service.security.guards import GUARD_NAMES
from service.security.tokens import PUBLIC_PATHS
from service.settings import ENVIRONMENT, Settings
from signalos_core import ConfigurationError
from tests.service.conftest import TEST_PASSWORD, make_settings, promote, register_and_login

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- settings
def test_settings_refuse_missing_secrets() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({})
    assert info.value.field == "SIGNALOS_JWT_SECRET"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"SIGNALOS_JWT_SECRET": "x" * 40})
    assert info.value.field == "SIGNALOS_DATA_KEY"


def test_settings_dev_flag_allows_defaults_but_not_in_production() -> None:
    dev = Settings.from_env({"SIGNALOS_DEV": "1"})
    assert dev.dev_mode
    assert dev.port == 8000
    with pytest.raises(ConfigurationError):
        Settings.from_env({"SIGNALOS_JWT_SECRET": dev.jwt_secret, "SIGNALOS_DATA_KEY": "a" * 44})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNALOS_JWT_SECRET", "short"),
        ("SIGNALOS_DATA_KEY", "not-base64!!"),
        ("SIGNALOS_DATA_KEY", "c2hvcnQ="),
        ("SIGNALOS_PORT", "eighty"),
        ("SIGNALOS_PORT", "70000"),
        ("SIGNALOS_ACCESS_TOKEN_TTL", "0"),
        ("SIGNALOS_LOG_LEVEL", "LOUD"),
        ("SIGNALOS_DATA_KEY_FILE", "/nonexistent/key"),
    ],
)
def test_settings_name_the_bad_variable(name: str, value: str) -> None:
    env = {"SIGNALOS_DEV": "1", name: value}
    if name == "SIGNALOS_DATA_KEY_FILE":
        env = {"SIGNALOS_JWT_SECRET": "y" * 40, name: value}
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.field == name


def test_settings_key_file_rotation_and_repr(tmp_path: Path) -> None:
    import base64
    import secrets

    keys = [base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() for _ in range(2)]
    key_file = tmp_path / "keys"
    key_file.write_text("\n".join(keys) + "\n")
    settings = Settings.from_env(
        {"SIGNALOS_JWT_SECRET": "z" * 40, "SIGNALOS_DATA_KEY_FILE": str(key_file), "SIGNALOS_PORT": "9001"}
    )
    assert len(settings.data_keys) == 2
    assert settings.port == 9001
    assert "z" * 40 not in repr(settings)
    assert keys[0] not in repr(settings)


def test_environment_table_documented_in_readme_and_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    from service.settings import environment_table

    # Regenerate with: python -m service.settings README.md docs/configuration.md
    assert environment_table() in readme
    assert environment_table() in configuration
    assert all(f"`{variable.name}`" in readme for variable in ENVIRONMENT)


def test_documented_defaults_are_the_defaults_and_every_variable_is_documented() -> None:
    # The table's defaults are text: setting each variable to its documented default must change nothing.
    development = {"SIGNALOS_DEV": "1"}
    implicit = Settings.from_env(development)
    for variable in ENVIRONMENT:
        if variable.default.startswith("(") or variable.name == "SIGNALOS_DEV":
            continue  # required, unset by default, or derived from another variable
        assert Settings.from_env({**development, variable.name: variable.default}) == implicit, variable.name
    assert implicit.database_url == f"sqlite+aiosqlite:///{implicit.var_dir / 'signalos.db'}"
    source = (ROOT / "service" / "settings.py").read_text()
    read = set(re.findall(r"\"(SIGNALOS_[A-Z0-9_]+)\"", source.split("def from_env", 1)[1]))
    assert read <= {variable.name for variable in ENVIRONMENT}


# ---------------------------------------------------------------- health, readiness, problems, OpenAPI
def test_health_and_ready(client: TestClient[Litestar]) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["revision"] == ready.json()["head"]


def test_ready_reports_unmigrated_database(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    with TestClient(app=create_app(settings)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
        assert client.get("/health").status_code == 200


def test_ready_reports_unreachable_database(tmp_path: Path) -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:1/none", tmp_path)
    with TestClient(app=create_app(settings)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["detail"] == "database unreachable"


def test_problem_types_are_documented(client: TestClient[Litestar]) -> None:
    errors_doc = (ROOT / "docs" / "errors.md").read_text()
    for code, problem in PROBLEMS.items():
        body = client.get(f"/problems/{code}").json()
        assert body == {
            "code": code,
            "status": problem.status,
            "title": problem.title,
            "description": problem.description,
        }
        assert f"`{code}`" in errors_doc, f"{code} missing from docs/errors.md"
    assert client.get("/problems/nope").status_code == 404


def test_not_found_and_method_not_allowed_are_problems(client: TestClient[Litestar]) -> None:
    missing = client.get("/api/does-not-exist")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.put("/health").json()["code"] == "method_not_allowed"


def test_unexpected_error_hides_the_traceback(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from service.security.guards import authenticated

    @get("/api/boom", guards=[authenticated])
    async def boom() -> None:
        raise RuntimeError("secret internals password=hunter2")

    app = create_app(make_settings(db_url, tmp_path))
    app.register(boom)
    with TestClient(app=app) as client:
        response = client.get("/api/boom", headers=register_and_login(client)["headers"])
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_openapi_schema(client: TestClient[Litestar]) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert schema["info"]["title"] == "SignalOS Core API"
    assert "/api/auth/login" in schema["paths"]
    assert (
        "BearerToken" in json.dumps(schema["components"]["securitySchemes"]) or schema["components"]["securitySchemes"]
    )
    assert client.get("/schema").status_code == 200


def test_every_route_has_an_explicit_auth_rule(app: Litestar) -> None:
    public = [re.compile(pattern) for pattern in PUBLIC_PATHS]
    unguarded = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if any(p.search(route.path) for p in public) or set(getattr(handler, "http_methods", ())) == {"OPTIONS"}:
                continue  # public by design, or Litestar's automatic CORS preflight handler
            names = {getattr(getattr(g, "func", g), "__name__", "") for g in handler.resolve_guards()}
            if not names & GUARD_NAMES:
                unguarded.append(route.path)
    assert unguarded == []


# ---------------------------------------------------------------- logging
def test_request_id_and_json_logs_without_secrets(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(app=create_app(make_settings(db_url, tmp_path, SIGNALOS_LOG_LEVEL="INFO"))) as client:
        capsys.readouterr()
        response = client.post(
            "/api/auth/login",
            json={"email": "x@example.com", "password": "hunter2-hunter2"},
            headers={"X-Request-ID": "req-12345678"},
        )
    assert response.headers["x-request-id"] == "req-12345678"
    assert response.json()["request_id"] == "req-12345678"
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "req-12345678" and line.get("event") == "request" for line in lines)
    assert "hunter2" not in err


def test_redaction_processor() -> None:
    from service.logging import REDACTED, redact_secrets

    event: dict[str, Any] = {"event": "x", "password": "p", "refresh_token": "t", "nested": {"api_key": "k"}, "ok": 1}
    cleaned = redact_secrets(None, "info", event)
    assert cleaned["password"] == cleaned["refresh_token"] == cleaned["nested"]["api_key"] == REDACTED
    assert cleaned["ok"] == 1


def test_flood_guard_returns_problem(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, SIGNALOS_RATE_LIMIT_PER_MINUTE=3)
    with TestClient(app=create_app(settings)) as client:
        codes = [client.post("/api/auth/refresh", json={"refresh_token": "x"}).status_code for _ in range(5)]
        assert codes[-1] == 429
        limited = client.post("/api/auth/refresh", json={"refresh_token": "x"})
        assert limited.json()["code"] == "rate_limited"
        assert client.get("/health").status_code == 200  # health is never rate-limited


# ---------------------------------------------------------------- administration and roles
def test_admin_endpoints_refuse_traders_and_work_for_platform_admins(client: TestClient[Litestar], db_url: str) -> None:
    trader = register_and_login(client)
    assert client.post("/api/admin/firms", json={"name": "Acme"}, headers=trader["headers"]).status_code == 403
    assert client.get("/api/admin/firms").status_code == 401
    admin = register_and_login(client)
    promote(db_url, admin["user_id"], "platform_admin")
    firm = client.post("/api/admin/firms", json={"name": "Acme Funding", "require_2fa": True}, headers=admin["headers"])
    assert firm.status_code == 201
    assert client.post("/api/admin/firms", json={"name": "Acme Funding"}, headers=admin["headers"]).status_code == 409
    assert [f["name"] for f in client.get("/api/admin/firms", headers=admin["headers"]).json()] == ["Acme Funding"]
    firm_id = firm.json()["id"]
    no_firm = client.put(
        f"/api/admin/users/{trader['user_id']}/role", json={"role": "firm_admin"}, headers=admin["headers"]
    )
    assert no_firm.status_code == 400
    assert no_firm.json()["errors"][0]["field"] == "firm_id"
    made = client.put(
        f"/api/admin/users/{trader['user_id']}/role",
        json={"role": "firm_admin", "firm_id": firm_id},
        headers=admin["headers"],
    )
    assert made.json()["role"] == "firm_admin"
    assert client.get("/api/me", headers=trader["headers"]).json()["firm_id"] == firm_id
    # A firm admin is still not a platform admin.
    assert client.get("/api/admin/firms", headers=trader["headers"]).status_code == 403
    bad = client.put(
        f"/api/admin/users/{admin['user_id']}/role",
        json={"role": "platform_admin", "firm_id": firm_id},
        headers=admin["headers"],
    )
    assert bad.status_code == 400
    unknown = client.put(
        "/api/admin/users/00000000-0000-0000-0000-000000000000/role", json={"role": "trader"}, headers=admin["headers"]
    )
    assert unknown.status_code == 404


def test_trading_guard_requires_aal2_for_firms_requiring_2fa(db_url: str, tmp_path: Path) -> None:
    from litestar import get as get_route

    from service.security.guards import TRADING_GUARDS

    @get_route("/api/test-trading", guards=TRADING_GUARDS)
    async def trading() -> dict[str, bool]:
        return {"ok": True}

    app = create_app(make_settings(db_url, tmp_path))
    app.register(trading)
    with TestClient(app=app) as client:
        trader = register_and_login(client)
        assert client.get("/api/test-trading", headers=trader["headers"]).json() == {"ok": True}
        admin = register_and_login(client)
        promote(db_url, admin["user_id"], "platform_admin")
        firm_id = client.post(
            "/api/admin/firms", json={"name": "Strict", "require_2fa": True}, headers=admin["headers"]
        ).json()["id"]
        client.put(
            f"/api/admin/users/{trader['user_id']}/role",
            json={"role": "trader", "firm_id": firm_id},
            headers=admin["headers"],
        )
        refused = client.get("/api/test-trading", headers=trader["headers"])
        assert refused.status_code == 403
        assert refused.json()["code"] == "mfa_required"


def test_events_pagination_is_own_only(client: TestClient[Litestar]) -> None:
    alice = register_and_login(client)
    bob = register_and_login(client)
    client.post("/api/auth/login", json={"email": alice["email"], "password": "wrong-wrong-wrong"})
    alice_events = client.get("/api/me/events?limit=10", headers=alice["headers"]).json()
    assert {e["event"] for e in alice_events} >= {"login_ok", "login_fail"}
    bob_events = client.get("/api/me/events", headers=bob["headers"]).json()
    assert all(e["session_id"] != alice["session_id"] for e in bob_events)
    assert client.get("/api/me/events?limit=0", headers=alice["headers"]).status_code == 400
    assert TEST_PASSWORD not in json.dumps(alice_events)


def test_standard_logging_writes_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # A record emitted late (a driver's worker thread) goes to today's stderr, never a stream captured earlier.
    import io
    import logging
    import sys

    from service.logging import configure_logging

    configure_logging("INFO")
    early, late = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", early)
    configure_logging("INFO")
    early.close()
    monkeypatch.setattr(sys, "stderr", late)
    logging.getLogger("aiosqlite").warning("late record")
    assert json.loads(late.getvalue())["event"] == "late record"
