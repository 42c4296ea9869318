"""Every step's form schema and an example are in the OpenAPI document; every handler is guarded."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from litestar import Litestar
from litestar.testing import TestClient

from service.onboarding.controllers import OnboardingAdminController, OnboardingController
from signalos_core.onboarding import default_workflow

SUBMIT = "/api/onboarding/steps/{step_id}"


def test_every_step_form_is_in_the_openapi_document(client: TestClient[Litestar]) -> None:
    document: dict[str, Any] = client.get("/schema/openapi.json").json()
    body = document["paths"][SUBMIT]["post"]["requestBody"]["content"]["application/json"]
    forms = {entry["x-signalos-step"]: entry for entry in body["schema"]["properties"]["answers"]["anyOf"]}
    workflow = default_workflow()
    assert set(forms) == set(workflow.step_ids)
    for step in workflow.steps:
        published = {k: v for k, v in forms[step.id].items() if k not in ("title", "description", "x-signalos-step")}
        assert published == step.form, step.id
        example = body["examples"][step.id]["value"]
        assert example == {"answers": step.example}
        # the published example is valid against the published form
        assert not list(Draft202012Validator(published).iter_errors(example["answers"])), step.id
    # the other endpoints carry their own component schemas
    components = document["components"]["schemas"]
    assert {"OnboardingStateOut", "SubmitOut", "DiagnosisOut", "FunnelOut", "FirmStepIn"} <= set(components)
    headers = {p["name"] for p in document["paths"][SUBMIT]["post"]["parameters"]}
    assert "Idempotency-Key" in headers


def test_every_onboarding_handler_has_a_guard() -> None:
    for controller in (OnboardingController, OnboardingAdminController):
        assert controller.guards, controller.__name__
        handlers = [value for value in vars(controller).values() if hasattr(value, "http_methods")]
        assert len(handlers) >= 5
    assert OnboardingAdminController.guards is not None
    assert "firm_admin" in OnboardingAdminController.guards[0].__name__
