"""API robustness gate: schemathesis fuzzes every documented operation in-process as a logged-in trader.

For each operation, schema-valid and schema-violating requests (hypothesis, a few examples each) go through the
ASGI app (schemathesis' in-process client, one app and lifespan per backend) and every response must pass
schemathesis' checks:

- no 5xx (``not_a_server_error``);
- the status, content type, headers and body conform to the served OpenAPI document; every error is documented
  as ``application/problem+json`` with the ``Problem`` schema (``type``, ``title``, ``status``, ``detail``,
  ``code``), so a 4xx that is not a problem fails the conformance checks;
- schema-violating input is never answered with a 2xx (``negative_data_rejection``) and schema-valid input is
  never refused as malformed (``positive_data_acceptance``: only 2xx, 401, 403, 404, 409, 422, 429 may answer it);
- an operation that declares authentication refuses requests without it (``ignored_auth``).

On top of that :func:`_assert_problem` checks every 4xx explicitly (content type, the four members, and a
``validation_error`` names each bad field). Bounded: 3 examples per operation and generation mode,
deterministic (no flaky gate), coverage phase off (its boundary cases are several thousand requests; the
negative mode covers the same kinds of violation). PostgreSQL fuzzes the writes only (see :func:`trader`).
Excluded: ``POST /api/marketplace/versions`` (raw octet-stream upload, fuzzed by hand in
:func:`test_publish_refuses_arbitrary_uploads_with_a_problem`).

Run: ``.venv/bin/pytest tests/service/test_api_fuzz.py -q -p no:cacheprovider`` (add
``SIGNALOS_TEST_POSTGRES_URL=...`` for PostgreSQL). A failure prints a curl line that reproduces it.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.python import asgi

from service.app import create_app
from service.db.engine import create_engine
from service.db.models import metadata
from tests.service.conftest import TEST_PASSWORD, make_settings, register_and_login

MAX_EXAMPLES = 3

# Operations that end the caller's session (or change the password, which ends the others): each example logs in
# afresh so they do not turn every later request of the example run into a 401.
SESSION_ENDING = {
    "POST /api/auth/logout",
    "POST /api/me/sessions/revoke-others",
    "DELETE /api/me/sessions/{session_id}",
    "POST /api/auth/password",
}

# Known failures in areas the gate does not own (their owners had not fixed them at 07:20 UTC on 2026-11-28),
# by operation label, or "label [backend]" when only one backend's deterministic examples hit it. Reproductions
# are in the gate's report. Strict: an operation that stops failing fails `test_known_failures_still_fail`.
KNOWN_FAILURES: dict[str, str] = {}

# Known failures that the deterministic examples hit in some runs only (the examples shift as the document changes):
# xfail without the staleness check, so the gate neither flakes on them nor forgets them.
KNOWN_INTERMITTENT: dict[str, str] = {}

# Known 5xx answers to an integer past 64 bits (test_unbounded_integer_parameters_never_fail_the_server), same rules.
KNOWN_INTEGER_OVERFLOWS: dict[str, str] = {}


def _known_failure(label: str, backend: str, known: dict[str, str] = KNOWN_FAILURES) -> str | None:
    return known.get(f"{label} [{backend}]") or known.get(label)


def _document() -> dict[str, Any]:
    """The served OpenAPI document (fetched without the lifespan: serving it needs no database)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp}/unused.db", Path(tmp)))
        response = TestClient(app=app).get("/schema/openapi.json")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


CONFIG = schemathesis.Config.from_dict(
    {
        "base-url": f"http://{asgi.HOST}",
        # Extra (undocumented) query parameters and headers are ignored by design, as in most HTTP APIs.
        # The bearer token is the trader's (sent by the test); missing/invalid auth is probed by `ignored_auth`.
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "mode": "all",
            # Same examples every run: the gate never flakes, and known failures stay reproducible.
            "deterministic": True,
            "allow-extra-parameters": False,
            "with-security-parameters": False,
        },
        "phases": {"coverage": {"enabled": False}},
        "checks": {
            # Schema-valid input may still be refused on its merits (unknown id, conflict, business rule), but
            # never as malformed (400).
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]},
        },
    }
)


def _deliverable(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


# `format: email` addresses the service accepts: besides the syntax, it refuses special-use domains (`.test`,
# `.localhost`, ...) with a 400 naming `email`, which JSON Schema cannot express.
schemathesis.openapi.format("email", st.emails().filter(_deliverable))

schema = schemathesis.openapi.from_dict(_document(), config=CONFIG).exclude(
    # The body is a signed package archive sent as raw application/octet-stream and read by the handler itself;
    # the document has no request body for it, so generated requests are all "empty upload" (covered by
    # tests/service/marketplace).
    path="/api/marketplace/versions",
    method="POST",
)


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fuzz_target(
    migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Litestar, asgi.ASGIClient]]:
    """One app per backend for the whole module, driven by schemathesis' in-process ASGI client."""
    app = create_app(make_settings(migrated_db_url, tmp_path_factory.mktemp("fuzz")))
    try:
        with asgi.get_client(app) as client:
            yield app, client
    finally:
        # The client starts the app's lifespan on schemathesis' event-loop thread; stop it before the tables go.
        asgi.shutdown_lifespans()
        asyncio.run(_truncate(migrated_db_url))


# (operation, backend) pairs that ran / in which some example failed: `test_known_failures_still_fail` reads them.
_RAN: set[tuple[str, str]] = set()
_FAILED: set[tuple[str, str]] = set()


def _backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


@pytest.fixture
def trader(fuzz_target: tuple[Litestar, asgi.ASGIClient], request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh trader per operation (registered and logged in through the API); marks known failures xfail.

    Not ``strict=True``: schemathesis' pytest plugin crashes on a strict XPASS report, so strictness is
    :func:`test_known_failures_still_fail`'s job.
    """
    label = getattr(request.node, "operation_label", None)
    if (
        isinstance(label, str)
        and label.startswith("GET ")
        and _backend(request.getfixturevalue("migrated_db_url")) == "postgres"
    ):
        # Time budget: on PostgreSQL only the writes are fuzzed (where user strings and numbers reach the
        # database's own type limits); reads run the same code and checks on SQLite.
        pytest.skip("reads are fuzzed on SQLite only")
    backend = _backend(request.getfixturevalue("migrated_db_url"))
    known = None
    if isinstance(label, str):
        known = _known_failure(label, backend) or _known_failure(label, backend, KNOWN_INTERMITTENT)
    if known is not None:
        request.applymarker(pytest.mark.xfail(strict=False, reason=known))
    return register_and_login(fuzz_target[1])  # type: ignore[arg-type]  # same calls as Litestar's TestClient


def _assert_problem(case: schemathesis.Case, response: schemathesis.Response) -> None:
    if not 400 <= response.status_code < 500:
        return
    where = f"{case.as_curl_command()}\n-> {response.status_code} {response.text}"
    assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), where
    body = response.json()
    assert isinstance(body, dict), where
    missing = {"code", "type", "status", "title"} - set(body)
    assert not missing, f"problem without {sorted(missing)}: {where}"
    assert body["status"] == response.status_code, where
    if body["code"] == "validation_error":
        # The house rule: a validation problem names every bad field.
        assert body.get("errors"), where
        assert all(isinstance(e, dict) and e.get("field") for e in body["errors"]), where


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api(
    case: schemathesis.Case,
    fuzz_target: tuple[Litestar, asgi.ASGIClient],
    trader: dict[str, Any],
    migrated_db_url: str,
) -> None:
    app, client = fuzz_target
    headers = trader["headers"]
    if case.operation.label in SESSION_ENDING:
        response = client.post("/api/auth/login", json={"email": trader["email"], "password": TEST_PASSWORD})
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    # The schema comes from a dict; point it (and the checks that send probes of their own) at this backend's app.
    case.operation.schema.app = case.operation.app = app
    key = (case.operation.label, _backend(migrated_db_url))
    _RAN.add(key)
    try:
        response = case.call_and_validate(session=client, headers=headers)
        _assert_problem(case, response)
    except BaseException:
        _FAILED.add(key)
        raise


# Arbitrary bytes, and bytes that start like the archives a package could be (zip, gzip, tar).
_UPLOADS = st.one_of(
    st.binary(min_size=1, max_size=2048),
    st.tuples(st.sampled_from([b"PK\x03\x04", b"\x1f\x8b\x08", b"ustar\x00"]), st.binary(max_size=2048)).map(
        lambda parts: parts[0] + parts[1]
    ),
)


@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(upload=_UPLOADS)
def test_publish_refuses_arbitrary_uploads_with_a_problem(
    fuzz_target: tuple[Litestar, asgi.ASGIClient], trader: dict[str, Any], upload: bytes
) -> None:
    """The excluded raw upload (POST /api/marketplace/versions), fuzzed by hand: garbage is a 4xx problem."""
    _, client = fuzz_target
    headers = {**trader["headers"], "Content-Type": "application/octet-stream"}
    response = client.post("/api/marketplace/versions", data=upload, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    assert {"code", "type", "status", "title"} <= set(response.json()), response.text


def _sample(schema: dict[str, Any]) -> str:
    """A plain valid-looking value for a required path/query parameter."""
    variants = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
    if any(v.get("format") == "uuid" for v in variants):
        return str(uuid.uuid4())
    if any(v.get("type") == "integer" for v in variants):
        return "1"
    return "a"


def _unbounded_integer_queries() -> list[tuple[str, str, str]]:
    found = []
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                variants = [parameter["schema"], *parameter["schema"].get("oneOf", [])]
                if parameter["in"] == "query" and any(
                    v.get("type") == "integer" and "maximum" not in v for v in variants
                ):
                    found.append((method, path, parameter["name"]))
    return found


def test_unbounded_integer_parameters_never_fail_the_server(
    fuzz_target: tuple[Litestar, asgi.ASGIClient], trader: dict[str, Any]
) -> None:
    """Integers past 64 bits in every query integer without a documented maximum: a 4xx or a 2xx, never a 5xx.

    (The fuzzing phase found two such 500s; deterministic examples rarely draw them, so every one is probed.)
    """
    _, client = fuzz_target
    failures = []
    for method, path, name in _unbounded_integer_queries():
        operation = schema.raw_schema["paths"][path][method]
        url = path
        query = {name: str(2**64 + 1)}
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                url = url.replace("{" + parameter["name"] + "}", _sample(parameter["schema"]))
            elif parameter["in"] == "query" and parameter.get("required") and parameter["name"] != name:
                query[parameter["name"]] = _sample(parameter["schema"])
        response = client.request(method.upper(), url, params=query, headers=trader["headers"])
        label = f"{method.upper()} {path}"
        if label in KNOWN_INTEGER_OVERFLOWS:
            # Strict, like the xfail marks: a known failure must still fail here.
            assert response.status_code >= 500, f"{label} no longer fails: remove it from KNOWN_INTEGER_OVERFLOWS"
        elif response.status_code >= 500:
            failures.append(f"{method.upper()} {url}?{name}={query[name]} -> {response.status_code}")
    assert not failures, failures


def test_known_failures_still_fail(fuzz_target: tuple[Litestar, asgi.ASGIClient], migrated_db_url: str) -> None:
    """Runs after the fuzz tests of its backend: a known failure that no longer fails must leave the list."""
    backend = _backend(migrated_db_url)
    ran = {label for label, ran_on in _RAN if ran_on == backend}
    if not ran:
        pytest.skip("the fuzz tests did not run in this session")
    stale = sorted(label for label in ran if _known_failure(label, backend) and (label, backend) not in _FAILED)
    assert not stale, f"no longer failing on {backend}, remove from KNOWN_FAILURES: {stale}"
