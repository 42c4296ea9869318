"""The served OpenAPI document is valid OpenAPI 3.1 and describes what the service really does.

Regression tests for what the fuzz gate found in the foundation: errors documented as Litestar's
``{status_code, detail, extra}`` JSON instead of problem+json, public endpoints inheriting the global bearer
requirement, structs that forbid unknown fields documented as open objects, and ``Decimal`` documented as any
string (so ``""`` looked valid).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
import schemathesis
from jsonschema import Draft202012Validator
from litestar import Litestar
from litestar.testing import TestClient

from service.system.openapi import DECIMAL_PATTERN, PROBLEM_SCHEMA
from tests.service.conftest import register_and_login

METHODS = ("get", "put", "post", "delete", "patch")
PUBLIC = {
    ("/health", "get"),
    ("/ready", "get"),
    ("/problems/{code}", "get"),
    ("/api/auth/register", "post"),
    ("/api/auth/login", "post"),
    ("/api/auth/refresh", "post"),
}


@pytest.fixture
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    # schemathesis validates against the official OpenAPI 3.1 schema (jsonschema-rs).
    schemathesis.openapi.from_dict(document).validate()
    for name, component in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(component)  # every component is a valid JSON Schema 2020-12
        assert name
    assert document["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA


def test_every_operation_has_summary_tag_and_documented_errors(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) > 50
    global_security = document["security"]
    assert global_security == [{"BearerToken": []}]
    public = set()
    for path, method, operation in operations:
        label = f"{method.upper()} {path}"
        assert operation.get("summary"), label
        assert operation.get("tags"), label
        responses = operation["responses"]
        errors = {status for status in responses if status[0] in "45"}
        assert errors, label
        for status in errors:
            content = responses[status]["content"]
            assert list(content) == ["application/problem+json"], (label, status)
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        security = operation.get("security", global_security)
        if security:
            assert {"401", "403"} <= set(responses), label
        else:
            public.add((path, method))
    assert public == PUBLIC


def test_public_and_protected_operations_behave_as_documented(client: TestClient[Litestar]) -> None:
    assert client.get("/health").status_code == 200
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_authenticated"


def test_closed_structs_document_additional_properties_false(
    document: dict[str, Any], client: TestClient[Litestar]
) -> None:
    register = document["components"]["schemas"]["RegisterIn"]
    assert register["additionalProperties"] is False
    assert register["properties"]["email"]["format"] == "email"
    # and the service does refuse the unknown field, naming it, as the document now says
    response = client.post(
        "/api/auth/register", json={"email": "x@example.com", "password": "correct horse battery", "extra": 1}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "extra" in body["errors"][0]["message"]
    # response structs (which do not forbid unknown fields) stay open
    assert "additionalProperties" not in document["components"]["schemas"]["UserOut"]


def test_decimal_is_documented_as_a_decimal_string(document: dict[str, Any], client: TestClient[Litestar]) -> None:
    pattern = re.compile(DECIMAL_PATTERN)
    for good in ("1", "-0", "+.5", "5.", "1.25e-3", "98250.00"):
        assert pattern.match(good), good
    for bad in ("", "NaN", "Infinity", "1,5", "1e", " 1", "1e1234567890123456789"):
        assert not pattern.match(bad), bad
    decimals = [
        schema
        for component in document["components"]["schemas"].values()
        for schema in component.get("properties", {}).values()
        if schema.get("pattern") == DECIMAL_PATTERN
    ]
    assert decimals, "no Decimal field documented with the decimal pattern"
    # An empty string is refused by the service (msgspec) as the pattern says: a 400 naming the field.
    tokens = register_and_login(client)
    response = client.post(
        "/api/trading-accounts",
        headers=tokens["headers"],
        json={"name": "A", "broker": "B", "platform": "mt5", "account_size": ""},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "account_size"


def test_closed_structs_stay_closed_whatever_else_the_process_defines(client: TestClient[Litestar]) -> None:
    """An open struct of the same name elsewhere in the process (a test module's ``Order``) must not reopen the
    API's ``Order``: the document depended on which modules were imported, so the fuzz gate's examples for
    ``orders/check`` differed in the full suite (extra properties generated as valid, refused with a 400)."""

    class Order(msgspec.Struct):  # the same component name as the pre-trade check's body, but open
        symbol: str

    document = client.get("/schema/openapi.json").json()
    assert Order.__struct_config__.forbid_unknown_fields is False
    assert document["components"]["schemas"]["Order"]["additionalProperties"] is False
    tokens = register_and_login(client)
    body = {"symbol": "EURUSD", "side": "buy", "size": "1", "at": "2026-05-12T09:30:00Z", "extra": 1}
    response = client.post(
        "/api/trading-accounts/8d7e6a4e-7c4e-4b8e-9a51-0f3c2b1d9e11/orders/check", json=body, headers=tokens["headers"]
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert "extra" in response.json()["errors"][0]["message"]
