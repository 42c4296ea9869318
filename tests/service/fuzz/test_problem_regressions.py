"""Regressions the fuzz gate found in the foundation: validation problems always name the field; no 500s.

Litestar reports a missing required parameter only in the exception's detail (no ``extra``), which used to give
``"errors": []``. A tiny app with the service's exception handlers pins the fix without depending on any area.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Litestar, get, post
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.testing import TestClient

from service.problems import exception_handlers
from tests.service.conftest import register_and_login


@get("/needs-query")
async def needs_query(device_id: Annotated[str, QueryParameter(min_length=1)]) -> str:
    return device_id


@get("/needs-header")
async def needs_header(token: Annotated[str, HeaderParameter(name="X-Token")]) -> str:
    return token


class Leg(msgspec.Struct, forbid_unknown_fields=True):
    at: str


class Ticket(msgspec.Struct, forbid_unknown_fields=True):
    symbol: str
    legs: list[Leg] = []


@post("/tickets")
async def tickets(data: JSONBody[Ticket]) -> str:
    return data.symbol


@get("/refuses")
async def refuses() -> None:
    raise ValidationException("multipart boundary missing in Content-Type")


def _client() -> TestClient[Litestar]:
    return TestClient(Litestar([needs_query, needs_header, refuses, tickets], exception_handlers=exception_handlers))


def test_missing_required_query_parameter_is_named() -> None:
    with _client() as client:
        response = client.get("/needs-query")
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["errors"] == [
            {"field": "device_id", "message": "missing required query parameter", "source": "query"}
        ]
        assert client.get("/needs-query", params={"device_id": "a"}).status_code == 200


def test_missing_required_header_is_named() -> None:
    with _client() as client:
        body = client.get("/needs-header").json()
        assert body["errors"] == [
            {"field": "X-Token", "message": "missing required header parameter", "source": "header"}
        ]


def test_a_missing_body_field_is_named_itself_not_its_parent() -> None:
    # Litestar calls the body's root "data"; the client needs the name of the field to add.
    with _client() as client:
        root = client.post("/tickets", json={})
        assert root.status_code == 400
        assert [e["field"] for e in root.json()["errors"]] == ["symbol"]
        nested = client.post("/tickets", json={"symbol": "EURUSD", "legs": [{"at": "x"}, {}]})
        assert [e["field"] for e in nested.json()["errors"]] == ["legs[1].at"]
        assert client.post("/tickets", json={"symbol": "EURUSD", "legs": [{"at": "x"}]}).status_code == 201


def test_validation_without_details_still_names_something() -> None:
    with _client() as client:
        response = client.get("/refuses")
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert errors == [{"field": "request", "message": "multipart boundary missing in Content-Type", "source": None}]


def test_huge_event_offset_is_a_validation_problem_not_a_500(client: TestClient[Litestar]) -> None:
    tokens = register_and_login(client)
    response = client.get("/api/me/events", params={"offset": str(2**108)}, headers=tokens["headers"])
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "offset"
    assert client.get("/api/me/events", params={"offset": str(2**31 - 1)}, headers=tokens["headers"]).json() == []
