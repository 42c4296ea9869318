"""The push body as the OpenAPI document states it, and the push's whole-batch refusal as a problem.

``POST /api/sync/push`` reads its body raw (:func:`signalos_core.offline.decode_push` validates each action on
its own, so the handler cannot declare a typed body). :class:`PushOperation` documents what the handler accepts
as a batch: the envelope strictly (``device_id``, ``sent_at_device``, at most 1,000 ``actions``, nothing else)
and of each action only what the batch needs to answer it on its own (``action.action_id``, ``action.device_id``,
``action.seq``). The rest of an action is checked per action: an invalid one is answered ``rejected:invalid``
naming its field, in a 200, so the document does not make it a reason to refuse the batch.

:func:`batch_refused` turns what refuses the batch into a problem naming the field: ``validation_error`` (400)
for a body the document refuses, ``unprocessable`` (422) for a batch that breaks a rule between its parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import msgspec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from service.problems import ProblemError
from signalos_core.offline import MAX_BATCH

__all__ = ["PUSH_BODY_SCHEMA", "PushOperation", "batch_refused"]

_ACTION_IDENTITY: Final = Schema(
    type=OpenAPIType.OBJECT,
    description="One queued action (kind, payload, times, ...: see docs/offline.md). Only these fields can refuse "
    "the batch; any other invalid field is answered `rejected:invalid` for this action alone.",
    required=["action_id", "device_id", "seq"],
    properties={
        "action_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
        "device_id": Schema(type=OpenAPIType.STRING, description="The pushing device's `device_id`."),
        "seq": Schema(type=OpenAPIType.INTEGER, minimum=1, description="Ascending within the batch."),
    },
)

PUSH_BODY_SCHEMA: Final = Schema(
    type=OpenAPIType.OBJECT,
    title="PushRequest",
    description="A batch of one device's queued actions in ascending `seq` order.",
    required=["device_id", "sent_at_device", "actions"],
    additional_properties=False,
    properties={
        "device_id": Schema(type=OpenAPIType.STRING, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
        "sent_at_device": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
        "actions": Schema(
            type=OpenAPIType.ARRAY,
            max_items=MAX_BATCH,
            items=Schema(
                type=OpenAPIType.OBJECT,
                description="An action and its age on the device (`age_ms`) at push time.",
                required=["action"],
                properties={"action": _ACTION_IDENTITY},
            ),
        ),
    },
    examples=[{"device_id": "phone-1", "sent_at_device": "2026-03-02T09:00:00Z", "actions": []}],
)


@dataclass
class PushOperation(Operation):
    """The push operation with its request body documented (the handler reads the body itself)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=PUSH_BODY_SCHEMA)},
            description="A `PushRequest`; each action is validated on its own (see the operation).",
            required=True,
        )


# msgspec names the location as "... - at `$.path`"; decode_push names another device's action or a seq out of
# order as "actions[3].seq is not ascending", and an action without a usable identity as "... (in actions[3]; ...
# - at `$.action.seq`)".
_AT: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`")
_NAMED: Final = re.compile(r"^(?P<path>actions\[\d+\]\.\w+) is ")
_IN_ACTION: Final = re.compile(r"\(in (?P<item>actions\[\d+\]); (?P<inner>.*)\)$")


# A missing or unknown member is named in the message, its object in the location.
_MEMBER: Final = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")


def _msgspec_path(message: str) -> str:
    at = _AT.search(message)
    path = at.group("path") if at else ""
    if member := _MEMBER.match(message):
        return f"{path}.{member.group('name')}" if path else member.group("name")
    return path


def _field(message: str) -> str:
    if named := _NAMED.match(message):
        return named.group("path")
    if within := _IN_ACTION.search(message):
        inner = _msgspec_path(within.group("inner"))
        # The action's own error may locate it more precisely (a fractional `seq` fails the identity as a whole).
        outer = _msgspec_path(message[: within.start()].rstrip())
        path = outer if outer.startswith(f"{inner}.") else inner
        return within.group("item") + (f".{path}" if path else "")
    # Otherwise the envelope; not JSON, empty, or not an object at all: the body itself is what is wrong.
    return _msgspec_path(message) or "body"


def batch_refused(exc: msgspec.ValidationError | msgspec.DecodeError) -> ProblemError:
    """The problem for a batch refused as a whole, its ``errors`` naming the field.

    A body that breaks the documented schema is a 400 ``validation_error``. Another device's action and a
    ``seq`` out of order are a 422 ``unprocessable``: the body is well-formed as documented (JSON Schema cannot
    relate an action to its envelope or to the previous action) but cannot be applied. Either way nothing is
    applied and the device bisects the batch (the transport treats 400 and 422 alike).
    """
    message = str(exc)
    errors = [{"field": _field(message), "message": message, "source": "body"}]
    code = "unprocessable" if _NAMED.match(message) else "validation_error"
    return ProblemError(code, detail=f"push body: {message}", extra={"errors": errors})
