"""Every compliance endpoint is in the OpenAPI schema with examples, and refuses anonymous callers."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import TestClient

_PREFIXES = ("/api/trading-accounts", "/api/firms/", "/api/me/compliance-profiles", "/api/compliance/")
_EXPECTED = {
    ("post", "/api/trading-accounts"),
    ("get", "/api/trading-accounts"),
    ("get", "/api/trading-accounts/{account_id}"),
    ("put", "/api/trading-accounts/{account_id}/mode"),
    ("get", "/api/trading-accounts/{account_id}/mode/history"),
    ("post", "/api/trading-accounts/{account_id}/orders/check"),
    ("post", "/api/trading-accounts/{account_id}/feed"),
    ("post", "/api/trading-accounts/{account_id}/reset"),
    ("get", "/api/trading-accounts/{account_id}/status"),
    ("post", "/api/trading-accounts/{account_id}/dry-run"),
    ("get", "/api/trading-accounts/{account_id}/audit"),
    ("get", "/api/trading-accounts/{account_id}/audit/export"),
    ("get", "/api/trading-accounts/{account_id}/audit/verify"),
    ("get", "/api/trading-accounts/{account_id}/reports/daily"),
    ("get", "/api/trading-accounts/{account_id}/reports/daily.html"),
    ("post", "/api/firms/{firm_id}/profiles"),
    ("get", "/api/firms/{firm_id}/profiles"),
    ("get", "/api/firms/{firm_id}/profiles/{profile_id}/versions/{version}"),
    ("delete", "/api/firms/{firm_id}/profiles/{profile_id}/versions/{version}"),
    ("get", "/api/firms/{firm_id}/compliance/report"),
    ("get", "/api/firms/{firm_id}/compliance/audit/verify"),
    ("post", "/api/me/compliance-profiles"),
    ("get", "/api/me/compliance-profiles"),
    ("get", "/api/compliance/builtin-profiles"),
}


def _operations(client: TestClient[Litestar]) -> dict[tuple[str, str], dict[str, object]]:
    schema = client.get("/schema/openapi.json").json()
    return {
        (method, path): operation
        for path, item in schema["paths"].items()
        if path.startswith(_PREFIXES)
        for method, operation in item.items()
        if method in {"get", "post", "put", "delete"}
    }


def test_every_endpoint_is_documented_with_examples(client: TestClient[Litestar]) -> None:
    operations = _operations(client)
    assert set(operations) == _EXPECTED
    for key, operation in operations.items():
        assert operation.get("summary"), key
        assert operation.get("description"), key
        assert "compliance" in operation.get("tags", []), key
        body = operation.get("requestBody")
        if body is not None:
            content = body["content"]["application/json"]  # type: ignore[index]
            examples = content.get("examples") or content["schema"].get("examples")
            assert examples, f"{key} has no request example"
    query_params = [
        p
        for op in operations.values()
        for p in op.get("parameters", [])
        if p["in"] == "query"  # type: ignore[attr-defined]
    ]
    assert any(p.get("examples") for p in query_params)


def test_every_endpoint_refuses_anonymous_callers(client: TestClient[Litestar]) -> None:
    values = {"account_id": str(uuid.uuid4()), "firm_id": str(uuid.uuid4()), "profile_id": "x", "version": "1"}
    for method, path in _EXPECTED:
        url = path.format(**values)
        response = client.request(method.upper(), url, json={} if method in {"post", "put"} else None)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["code"] == "not_authenticated"
