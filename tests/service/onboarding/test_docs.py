"""docs/onboarding.md: every example request is sent to a real service and its response checked.

Each ```http block starting with a method is a request; the next ```http block starting with ``HTTP/1.1`` is
the expected response: the status code must be equal and the JSON shown must be contained in the real answer
(objects: listed keys equal; lists: each listed item matches some real item).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from service.settings import Settings
from tests.service.conftest import promote, register_and_login
from tests.service.twofactor.conftest import Outbox

DOC = Path(__file__).resolve().parents[3] / "docs" / "onboarding.md"
BLOCK = re.compile(r"```http\n(.*?)```", re.DOTALL)


def matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(matches(e, a) for a in actual) for e in expected)
    return bool(expected == actual)


def parse_request(text: str) -> tuple[str, str, dict[str, str], Any]:
    head, _, body = text.partition("\n\n")
    lines = head.strip().splitlines()
    method, path = lines[0].split()[:2]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return method, path, headers, json.loads(body) if body.strip() else None


def test_doc_examples_run(client: TestClient[Litestar], db_url: str, settings: Settings) -> None:
    trader = register_and_login(client)
    root = register_and_login(client)
    promote(db_url, root["user_id"], "platform_admin")
    firm = client.post("/api/admin/firms", json={"name": "Docs Firm"}, headers=root["headers"]).json()["id"]
    admin = register_and_login(client)
    promote(db_url, admin["user_id"], "firm_admin", firm)
    member = register_and_login(client)
    promote(db_url, member["user_id"], "trader", firm)
    profile = {"answers": {"display_name": "Bo", "timezone": "UTC"}}
    assert client.post("/api/onboarding/steps/profile", json=profile, headers=member["headers"]).status_code == 200
    placeholders = {
        "<access-token>": trader["access_token"],
        "<firm-admin-token>": admin["access_token"],
        "<firm-id>": firm,
    }
    blocks = BLOCK.findall(DOC.read_text("utf-8"))
    assert len(blocks) >= 30
    pending: tuple[str, str, dict[str, str], Any] | None = None
    checked = 0
    for raw in blocks:
        block = raw
        for key, value in placeholders.items():
            block = block.replace(key, value)
        if "<emailed-code>" in block:  # the code the service just emailed (to the dev outbox)
            assert settings.outbox_path is not None
            block = block.replace("<emailed-code>", Outbox(settings.outbox_path).last_code(trader["email"]))
        if block.startswith("HTTP/1.1"):
            assert pending is not None, block
            method, path, headers, body = pending
            status_line, _, expected_body = block.partition("\n\n")
            response = client.request(method, path, headers=headers, json=body)
            assert response.status_code == int(status_line.split()[1]), (method, path, response.text)
            if expected_body.strip():
                expected = json.loads(expected_body)
                assert matches(expected, response.json()), (method, path, expected, response.json())
            pending = None
            checked += 1
        else:
            pending = parse_request(block)
    assert pending is None
    assert checked >= 15
