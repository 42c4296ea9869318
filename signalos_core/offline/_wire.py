"""Decode a pushed batch action by action, so one bad action never costs the whole batch.

:func:`decode_push` checks the envelope (device, send time, batch size) strictly, then decodes every action on
its own. An action that fails validation but still has a usable ``action_id`` and ``seq`` becomes an
:class:`InvalidAction`: the server answers it ``rejected:invalid`` (naming the field) or, when it uses a kind or
payload type this server does not know (a newer client), ``rejected:client_upgrade_required``. Only what cannot
be attributed to one action (a broken envelope, an action without an id or seq, another device's action,
non-ascending ``seq``) fails the whole batch, and the device then bisects it.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Annotated, Final, get_args

import msgspec

from signalos_core.offline._actions import ActionKind, DeviceId, Payload
from signalos_core.offline._protocol import MAX_BATCH, AwareDatetime, PushedAction, PushRequest

__all__ = ["DecodedPush", "InvalidAction", "decode_push"]

_KINDS: Final = frozenset(get_args(ActionKind))
_TAGS: Final = frozenset(str(t.__struct_config__.tag) for t in get_args(Payload))
_PATH: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class InvalidAction(msgspec.Struct, frozen=True):
    """A pushed action the server could not decode; decided without being applied."""

    action_id: uuid.UUID
    seq: int
    device_id: str
    #: ``rejected:invalid`` or ``rejected:client_upgrade_required``.
    code: str
    message: str
    #: The offending field as a JSON path inside the pushed item (``action.payload.volume``), or "".
    field: str
    #: Digest of the action's raw bytes (the same id later pushed with other content is refused).
    digest: str


class DecodedPush(msgspec.Struct, frozen=True):
    """A batch whose envelope is valid; each item is a decoded action or an :class:`InvalidAction`."""

    device_id: str
    sent_at_device: datetime
    items: list[PushedAction | InvalidAction]

    @classmethod
    def of(cls, request: PushRequest) -> DecodedPush:
        """A strictly decoded request (every action valid)."""
        return cls(device_id=request.device_id, sent_at_device=request.sent_at_device, items=list(request.actions))


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    device_id: DeviceId
    sent_at_device: AwareDatetime
    actions: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_BATCH)]


class _Identity(msgspec.Struct, frozen=True):
    """The least an action must carry to be answered on its own (other fields are ignored here, whatever their
    shape: they are what the rejection is about)."""

    action_id: uuid.UUID
    device_id: str
    # An integral float (``7.0``, an integer to JSON Schema) still identifies the action, which is then rejected
    # on its own (the action itself needs a JSON integer); up to 2**53, where floats stop being exact.
    seq: Annotated[int, msgspec.Meta(ge=1)] | Annotated[float, msgspec.Meta(ge=1, le=2**53)]
    kind: object = None
    payload: object = None

    def __post_init__(self) -> None:
        if isinstance(self.seq, float) and not self.seq.is_integer():
            raise ValueError("seq must be an integer")


class _IdentityItem(msgspec.Struct, frozen=True):
    action: _Identity


class _RawItem(msgspec.Struct, frozen=True):
    action: msgspec.Raw


_whole = msgspec.json.Decoder(PushRequest)
_envelope = msgspec.json.Decoder(_Envelope)
_item = msgspec.json.Decoder(PushedAction)
_identity = msgspec.json.Decoder(_IdentityItem)
_raw_action = msgspec.json.Decoder(_RawItem)


def decode_push(body: bytes) -> DecodedPush:
    """Decode a push body; raises ``msgspec.ValidationError``/``DecodeError`` (naming the field) for what cannot
    be answered per action."""
    try:  # the common case, every action valid: one strict pass, as cheap as before per-action validation
        return DecodedPush.of(_whole.decode(body))
    except msgspec.ValidationError:
        pass  # decode again, action by action, to answer each invalid one on its own
    envelope = _envelope.decode(body)
    items: list[PushedAction | InvalidAction] = []
    last = 0
    for index, raw in enumerate(envelope.actions):
        try:
            decoded = _item.decode(raw)
        except msgspec.ValidationError as exc:
            invalid = _invalid(raw, index, exc)
            item: PushedAction | InvalidAction = invalid
            device_id, seq = invalid.device_id, invalid.seq
        else:
            item, device_id, seq = decoded, decoded.action.device_id, decoded.action.seq
        if device_id != envelope.device_id:
            raise msgspec.ValidationError(f"actions[{index}].device_id is not the pushing device")
        if seq <= last:
            raise msgspec.ValidationError(f"actions[{index}].seq is not ascending")
        last = seq
        items.append(item)
    return DecodedPush(device_id=envelope.device_id, sent_at_device=envelope.sent_at_device, items=items)


def _invalid(raw: msgspec.Raw, index: int, error: msgspec.ValidationError) -> InvalidAction:
    try:
        identity = _identity.decode(raw).action
    except msgspec.ValidationError as exc:
        # Without a usable id and seq the action cannot be answered on its own: the batch is refused.
        raise msgspec.ValidationError(f"{error} (in actions[{index}]; {exc})") from exc
    text = str(error)
    match = _PATH.search(text)
    field = match.group("path").lstrip(".") if match else ""
    reason = text[: match.start()] if match else text
    kind = identity.kind if isinstance(identity.kind, str) else ""
    tag = identity.payload.get("type") if isinstance(identity.payload, dict) else None
    tag = tag if isinstance(tag, str) else ""
    if (kind and kind not in _KINDS) or (tag and tag not in _TAGS):
        code = "rejected:client_upgrade_required"
        unknown = kind if kind and kind not in _KINDS else tag
        message = f"this server does not support action type {unknown!r} (sent by a newer app version)"
    else:
        code = "rejected:invalid"
        message = f"{field or 'action'}: {reason}"
    return InvalidAction(
        action_id=identity.action_id,
        seq=int(identity.seq),
        device_id=identity.device_id,
        code=code,
        message=message,
        field=field,
        # The action's own bytes, not the item's: a resend differs in age_ms and must still be a duplicate.
        digest=hashlib.sha256(bytes(_raw_action.decode(raw).action)).hexdigest(),
    )
