"""What the OpenAPI document says a two-factor input accepts is what the service accepts (both databases).

Found by the API fuzz gate: the document allowed ``{"backup_code": null}`` for a step-up and any string as the
new email address, and the service refused both. Refusals are a 400 ``validation_error`` naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.service.conftest import TEST_PASSWORD, register_and_login
from tests.service.twofactor.conftest import Clock, enrolled_user


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error", body
    assert [e["field"] for e in body["errors"]] == [field], body


def _body_schema(client: TestClient[Any], path: str) -> dict[str, Any]:
    document = client.get("/schema/openapi.json").json()
    reference = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"backup_code": None}, "backup_code"),
        ({"code": None}, "code"),
        ({}, "code"),
        ({"code": "123456", "backup_code": "AAAA-BBBB-CCCC-DDDD"}, "backup_code"),
    ],
)
def test_step_up_takes_exactly_one_factor_as_documented(
    client: TestClient[Any], clock: Clock, body: dict[str, Any], field: str
) -> None:
    user = enrolled_user(client, clock)
    _refused(client.post("/api/2fa/step-up", json=body, headers=user["headers"]), field)
    schema = _body_schema(client, "/api/2fa/step-up")
    assert (schema["minProperties"], schema["maxProperties"], schema["additionalProperties"]) == (1, 1, False)
    for name in ("code", "backup_code"):
        variants = schema["properties"][name].get("oneOf", [schema["properties"][name]])
        assert all(v.get("type") != "null" for v in variants), schema
    accepted = client.post("/api/2fa/step-up", json={"backup_code": user["backup_codes"][0]}, headers=user["headers"])
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("email", ["000", "no-at-sign.example.com", "a@b"])
def test_new_email_must_be_an_address_as_documented(client: TestClient[Any], email: str) -> None:
    tokens = register_and_login(client)
    response = client.post(
        "/api/me/contact/email", json={"email": email, "password": TEST_PASSWORD}, headers=tokens["headers"]
    )
    _refused(response, "email")
    assert _body_schema(client, "/api/me/contact/email")["properties"]["email"]["format"] == "email"
    accepted = client.post(
        "/api/me/contact/email", json={"email": "new.owner@example.com", "password": TEST_PASSWORD},
        headers=tokens["headers"],
    )  # fmt: skip
    assert accepted.status_code == 202, accepted.text
