"""The action model, the outcome codes and the wire messages validate strictly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from signalos_core.offline import (
    AckPayload,
    Action,
    ActionOutcome,
    ClosePayload,
    ModifyPayload,
    OpenPayload,
    Outcome,
    PushedAction,
    PushRequest,
    SettingsPayload,
    SignalIntent,
    client_order_id,
    close_order_id,
    order_id_for,
    position_id_for,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _open(**overrides: Any) -> Action:
    fields: dict[str, Any] = {
        "action_id": uuid.uuid4(),
        "device_id": "phone",
        "seq": 1,
        "kind": "open",
        "created_at_device": T0,
        "expires_at": T0 + timedelta(minutes=2),
        "payload": OpenPayload(symbol="EURUSD", side="buy", volume=Decimal("1"), stop_loss=Decimal("1.09")),
        "ref_price": Decimal("1.1"),
        "max_deviation": Decimal("0.001"),
    }
    fields.update(overrides)
    return Action(**fields)


def test_a_valid_market_open_round_trips_through_json_exactly() -> None:
    action = _open()
    decoded = msgspec.json.decode(msgspec.json.encode(action), type=Action)
    assert decoded == action
    assert decoded.ref_price == Decimal("1.1")
    assert decoded.is_order


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "close"}, "does not match payload"),
        ({"expires_at": T0}, "expires_at must be after"),
        ({"ref_price": None}, "needs ref_price and max_deviation"),
        ({"max_deviation": Decimal("-1")}, "max_deviation must be"),
        ({"max_deviation": Decimal("NaN")}, "max_deviation must be"),
        ({"ref_price": Decimal("0")}, "ref_price must be a finite decimal > 0"),
        ({"target": "pos-1", "expected_version": 1}, "open takes no target"),
        ({"ref_price": Decimal("1.08")}, "stop_loss is on the wrong side"),
    ],
)
def test_invalid_actions_name_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _open(**overrides)


def test_an_action_cannot_depend_on_itself() -> None:
    own = uuid.uuid4()
    with pytest.raises(ValueError, match="depends_on"):
        _open(action_id=own, depends_on=(own,))


def test_open_payload_rules() -> None:
    with pytest.raises(ValueError, match="volume must be"):
        OpenPayload(symbol="EURUSD", side="buy", volume=Decimal("0"))
    limit = OpenPayload(symbol="EURUSD", side="sell", volume=Decimal("1"), order_type="limit")
    with pytest.raises(ValueError, match="needs limit_price"):
        _open(payload=limit, ref_price=None, max_deviation=None)
    with_limit = OpenPayload(symbol="EURUSD", side="buy", volume=Decimal("1"), limit_price=Decimal("1.2"))
    with pytest.raises(ValueError, match="only for limit orders"):
        _open(payload=with_limit)
    tp_wrong = OpenPayload(symbol="EURUSD", side="sell", volume=Decimal("1"), take_profit=Decimal("1.2"))
    with pytest.raises(ValueError, match="take_profit is on the wrong side"):
        _open(payload=tp_wrong)
    ok_limit = OpenPayload(
        symbol="EURUSD", side="sell", volume=Decimal("1"), order_type="limit", limit_price=Decimal("1.2")
    )
    assert _open(payload=ok_limit, ref_price=None, max_deviation=None).payload == ok_limit


def test_targeted_kinds_need_target_and_version_and_others_refuse_one() -> None:
    with pytest.raises(ValueError, match="close needs target and expected_version"):
        _open(kind="close", payload=ClosePayload(), ref_price=None, max_deviation=None)
    action = _open(kind="modify", payload=ModifyPayload(), target="pos-x", expected_version=2)
    assert action.target == "pos-x"
    with pytest.raises(ValueError, match="settings takes no target"):
        _open(kind="settings", payload=SettingsPayload(changes={"paused": True}), target="x", expected_version=1)
    assert not _open(kind="ack", payload=AckPayload(subject="sig-1"), ref_price=None).is_order


def test_decoding_rejects_unknown_fields_and_naive_times() -> None:
    raw = msgspec.json.decode(msgspec.json.encode(_open()))
    raw["surprise"] = 1
    with pytest.raises(msgspec.ValidationError, match="surprise"):
        msgspec.json.decode(msgspec.json.encode(raw), type=Action)
    raw.pop("surprise")
    raw["created_at_device"] = "2026-03-02T09:00:00"
    with pytest.raises(msgspec.ValidationError, match="created_at_device"):
        msgspec.json.decode(msgspec.json.encode(raw), type=Action)
    raw["created_at_device"] = "2026-03-02T09:00:00Z"
    raw["payload"]["volume"] = "NaN"
    with pytest.raises(msgspec.ValidationError, match="volume must be"):
        msgspec.json.decode(msgspec.json.encode(raw), type=Action)


def test_derived_ids_are_stable_per_action() -> None:
    action_id = uuid.UUID("12345678123456781234567812345678")
    assert client_order_id(action_id) == "so-12345678123456781234567812345678"
    assert close_order_id(action_id) == "sc-12345678123456781234567812345678"
    assert position_id_for(action_id) == "pos-12345678123456781234567812345678"
    assert order_id_for(action_id) == "ord-12345678123456781234567812345678"
    assert len(client_order_id(action_id)) <= 36  # common broker limit for client order ids


@pytest.mark.parametrize(
    ("code", "category", "terminal", "succeeded", "rule"),
    [
        ("applied", "applied", True, True, None),
        ("duplicate", "duplicate", True, False, None),
        ("noop:already_closed", "noop", True, True, None),
        ("expired:ttl", "expired", True, False, None),
        ("rejected:price_moved", "rejected", True, False, None),
        ("rejected:compliance:max_lot", "rejected", True, False, "max_lot"),
        ("rejected:target_changed", "rejected", True, False, None),
        ("rejected:signal_cancelled", "rejected", True, False, None),
        ("rejected:dependency_rejected", "rejected", True, False, None),
        ("rejected:invalid", "rejected", True, False, None),
        ("retryable:provider_unavailable", "retryable", False, False, None),
    ],
)
def test_outcome_codes_parse(code: str, category: str, terminal: bool, succeeded: bool, rule: str | None) -> None:
    outcome = Outcome.parse(code)
    assert (outcome.category, outcome.terminal, outcome.succeeded, outcome.rule_id) == (
        category,
        terminal,
        succeeded,
        rule,
    )


@pytest.mark.parametrize("code", ["", "ok", "rejected", "rejected:other", "noop:x", "retryable:", "APPLIED", 3])
def test_unknown_outcome_codes_are_refused(code: object) -> None:
    with pytest.raises(ValueError, match="unknown outcome code"):
        Outcome.parse(code)  # type: ignore[arg-type]


def test_duplicate_outcome_acts_on_the_original() -> None:
    outcome = ActionOutcome(action_id=uuid.uuid4(), seq=1, code="duplicate", original_code="noop:already_closed")
    assert outcome.effective.succeeded
    with pytest.raises(msgspec.ValidationError, match="code"):
        msgspec.json.decode(
            b'{"action_id":"%s","seq":1,"code":"bogus"}' % str(uuid.uuid4()).encode(), type=ActionOutcome
        )


def test_push_request_must_be_one_device_in_ascending_seq() -> None:
    first, second = _open(seq=1), _open(seq=2)
    PushRequest(device_id="phone", sent_at_device=T0, actions=[PushedAction(first, 0), PushedAction(second, 5)])
    with pytest.raises(ValueError, match=r"actions\[1\].seq is not ascending"):
        PushRequest(device_id="phone", sent_at_device=T0, actions=[PushedAction(second, 0), PushedAction(first, 0)])
    with pytest.raises(ValueError, match=r"actions\[0\].device_id"):
        PushRequest(device_id="laptop", sent_at_device=T0, actions=[PushedAction(first, 0)])


def test_signal_intent_checks_prices() -> None:
    with pytest.raises(ValueError, match="entry must be"):
        SignalIntent(action="open", signal_id="s1", entry=Decimal("-1"))
