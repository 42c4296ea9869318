"""What the OpenAPI document says a compliance input accepts is what the service accepts (both databases).

Each case was found by the API fuzz gate: a value the document allowed was refused (or the refusal named another
field than the one the client sent). The refusal is a 400 ``validation_error`` naming the query parameter or
body field, and the document states the same rule.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.service.compliance.conftest import World


def _problem(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error", body
    assert [e["field"] for e in body["errors"]] == [field], body


def _document(world: World) -> dict[str, Any]:
    document: dict[str, Any] = world.client.get("/schema/openapi.json").json()
    return document


def _parameter(world: World, path: str, name: str) -> dict[str, Any]:
    operation = _document(world)["paths"][path]["get"]
    (parameter,) = (p for p in operation["parameters"] if p["name"] == name)
    schema: dict[str, Any] = parameter["schema"]
    return schema


@pytest.mark.parametrize("cursor", ["", "abc", "-1", "1.5", "1234567890123456789"])
def test_audit_cursor_is_digits_and_a_bad_one_is_named_cursor(world: World, cursor: str) -> None:
    account_id = world.acme_account()
    url = f"/api/trading-accounts/{account_id}/audit"
    _problem(world.client.get(url, params={"cursor": cursor}, headers=world.trader["headers"]), "cursor")
    pattern = _parameter(world, "/api/trading-accounts/{account_id}/audit", "cursor")["pattern"]
    assert not re.search(pattern, cursor)
    page = world.client.get(url, params={"cursor": "0", "limit": 1}, headers=world.trader["headers"])
    assert page.status_code == 200, page.text
    assert re.search(pattern, page.json()["next_cursor"] or "0")


@pytest.mark.parametrize("size", ["0", "0.000", "-5", "0e3", "-0", "NaN", 5, "1" * 33])
def test_account_size_must_be_positive_and_the_document_says_so(world: World, size: str | int) -> None:
    body = {"name": "Main", "broker": "IC Markets", "platform": "MT5", "account_size": size}
    _problem(world.client.post("/api/trading-accounts", json=body, headers=world.trader["headers"]), "account_size")
    schema = _document(world)["components"]["schemas"]["TradingAccountIn"]["properties"]["account_size"]
    assert (schema["type"], schema["maxLength"]) == ("string", 32)
    assert not isinstance(size, str) or len(size) > 32 or not re.search(schema["pattern"], size)
    pattern = schema["pattern"]
    for accepted in ("0.01", "100000", ".5", "1e3"):
        assert re.search(pattern, accepted), accepted
        response = world.client.post(
            "/api/trading-accounts", json={**body, "account_size": accepted}, headers=world.trader["headers"]
        )
        assert response.status_code == 201, response.text


@pytest.mark.parametrize("near", ["0", "1.5", "-0.2", "NaN", "abc"])
def test_firm_report_near_is_a_documented_fraction(world: World, near: str) -> None:
    url = f"/api/firms/{world.firm_id}/compliance/report"
    _problem(world.client.get(url, params={"near": near}, headers=world.firm_admin["headers"]), "near")
    schema = _parameter(world, "/api/firms/{firm_id}/compliance/report", "near")
    assert (schema["type"], schema["exclusiveMinimum"], schema["maximum"]) == ("number", 0, 1)
    assert "pattern" not in schema
    for accepted in ("1", "0.5", "1e-3"):
        response = world.client.get(url, params={"near": accepted}, headers=world.firm_admin["headers"])
        assert response.status_code == 200, response.text
