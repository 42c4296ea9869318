"""The offline client turns messages and user calls into durable actions, with no server at all."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from signalos_core.offline import (
    ClientPolicy,
    ComplianceAdvisor,
    OfflineClient,
    OpenPayload,
    SignalIntent,
    SignalParser,
    SimpleLimits,
    order_id_for,
    position_id_for,
)
from tests.core.offline.conftest import World

D = Decimal
_LINE = re.compile(
    r"(?P<verb>BUY|SELL|CLOSE|MOVE|CANCEL) (?P<sig>#\w+)(?: (?P<sym>[A-Z]+))?(?: @(?P<entry>[\d.]+))?"
    r"(?: limit (?P<limit>[\d.]+))?(?: sl (?P<sl>[\d.]+))?(?: tp (?P<tp>[\d.]+))?(?: lots (?P<lots>[\d.]+))?"
)


class LineParser:
    """A tiny real parser for one line format; the production parser plugs in through the same Protocol."""

    def __init__(self) -> None:
        self.contexts: list[Mapping[str, object] | None] = []

    def parse(self, text: str, *, context: Mapping[str, object] | None) -> Sequence[SignalIntent]:
        self.contexts.append(context)
        intents = []
        for match in _LINE.finditer(text):
            g = match.groupdict()
            dec = {k: D(g[k]) for k in ("entry", "limit", "sl", "tp", "lots") if g[k]}
            verb = g["verb"]
            action = {"BUY": "open", "SELL": "open", "CLOSE": "close", "MOVE": "modify", "CANCEL": "cancel"}[verb]
            intents.append(SignalIntent(
                action=action, signal_id=g["sig"].lstrip("#"), symbol=g["sym"],  # type: ignore[arg-type]
                side="buy" if verb == "BUY" else "sell" if verb == "SELL" else None,
                volume=dec.get("lots"), entry=dec.get("entry"), limit_price=dec.get("limit"),
                stop_loss=dec.get("sl"), take_profit=dec.get("tp"),
            ))  # fmt: skip
        return intents


def test_protocol_implementations_are_recognised() -> None:
    assert isinstance(LineParser(), SignalParser)
    assert isinstance(SimpleLimits(), ComplianceAdvisor)


def test_a_message_becomes_durable_intents_with_advisories(world: World) -> None:
    phone, _, _ = world.device("phone")
    parser = LineParser()
    client = OfflineClient(phone.outbox, parser=parser, advisor=SimpleLimits(max_volume=D("2")),
                           policy=ClientPolicy(default_volume=D("1")), clock=world.clock)  # fmt: skip
    result = client.receive_message(
        "BUY #s1 EURUSD @1.1000 sl 1.0950 tp 1.1100\nSELL #s2 EURUSD @1.1000 lots 3", "vip", message_id="m1"
    )
    assert parser.contexts == [{"channel": "vip", "message_id": "m1"}]
    assert [a.kind for a in result.actions] == ["open", "open"]
    first = result.actions[0]
    assert isinstance(first.payload, OpenPayload)
    assert (first.payload.signal_id, first.payload.volume, first.ref_price) == ("s1", D("1"), D("1.1000"))
    assert first.max_deviation == D("1.1000") * D("0.002")
    assert first.expires_at - first.created_at_device == timedelta(minutes=2)
    assert [a.allowed if a else None for a in result.advisories] == [True, False]
    assert result.advisories[1] is not None
    assert result.advisories[1].rule_id == "max_lot"
    assert result.skipped == []
    assert client.outbox.counts()["pending"] == 2


def test_follow_up_messages_target_the_signal_position(world: World) -> None:
    phone, engine, _ = world.device("phone")
    client = OfflineClient(phone.outbox, parser=LineParser(), policy=ClientPolicy(default_volume=D("1")),
                           clock=world.clock)  # fmt: skip
    opened = client.receive_message("BUY #s1 EURUSD @1.1000", "vip").actions[0]
    moved = client.receive_message("MOVE #s1 sl 1.0990", "vip").actions[0]
    assert (moved.kind, moved.target, moved.depends_on) == (
        "modify",
        position_id_for(opened.action_id),
        (opened.action_id,),
    )
    engine.sync_once()
    closed = client.receive_message("CLOSE #s1", "vip").actions[0]
    assert (closed.target, closed.expected_version, closed.depends_on) == (position_id_for(opened.action_id), 2, ())
    limit = client.receive_message("BUY #s2 EURUSD limit 1.0900", "vip").actions[0]
    cancel = client.receive_message("CANCEL #s2", "vip").actions[0]
    assert (cancel.target, cancel.expected_version) == (order_id_for(limit.action_id), 1)
    engine.sync_once()
    assert client.report() == []
    assert world.broker.position(world.user, position_id_for(opened.action_id)).status == "closed"  # type: ignore[union-attr]


def test_unusable_intents_are_skipped_with_a_reason(world: World) -> None:
    phone, _, _ = world.device("phone")
    quotes = {"XAUUSD": D("2000")}
    client = OfflineClient(phone.outbox, parser=LineParser(), quotes=quotes.get, clock=world.clock)
    result = client.receive_message(
        "BUY #a EURUSD lots 1\nBUY #b EURUSD @1.1\nCLOSE #zzz\nBUY #c XAUUSD lots 1\nBUY #d", "vip"
    )
    reasons = [reason for _, reason in result.skipped]
    assert reasons == [
        "no reference price (signal has no entry and no quote is available)",
        "no volume in the signal and no default volume configured",
        "no position recorded for signal zzz",
        "an open signal needs a symbol and a side",
    ]
    [recorded] = result.actions
    assert recorded.ref_price == D("2000"), "the quote feed supplies the reference price"
    assert result.advisories == [None]


def test_receive_without_parser_is_a_configuration_error(world: World) -> None:
    phone, _, _ = world.device("phone")
    with pytest.raises(ValueError, match="no signal parser"):
        phone.receive_message("BUY", "vip")


def test_everything_is_recorded_before_the_call_returns(world: World) -> None:
    phone, _, _ = world.device("phone")
    actions = [
        phone.open("EURUSD", "buy", D("1"), ref_price=D("1.1")),
        phone.set_settings({"theme": "dark"}),
        phone.acknowledge("news-1"),
    ]
    phone.outbox.close()
    from signalos_core.offline import Outbox

    with Outbox(phone.outbox.path) as reopened:
        assert [r.action for r in reopened.iter_unfinished()] == actions


def test_acknowledging_the_report(world: World) -> None:
    phone, engine, _ = world.device("phone")
    first = phone.open("EURUSD", "buy", D("9"), ref_price=D("1.1"))
    second = phone.open("EURUSD", "buy", D("8"), ref_price=D("1.1"))
    engine.sync_once()
    assert len(phone.report()) == 2
    assert phone.acknowledge_report([first.action_id]) == 1
    assert [e.action.action_id for e in phone.report()] == [second.action_id]
    assert phone.acknowledge_report() == 1
    assert phone.report() == []
    assert len(phone.report(include_acknowledged=True)) == 2
