"""The real signal parser plugged into the offline client through ParserAdapter, end to end with sync."""

from __future__ import annotations

from decimal import Decimal

from signalos_core.offline import ClientPolicy, OfflineClient, OpenPayload, ParserAdapter, SignalParser, position_id_for
from tests.core.offline.conftest import World

D = Decimal


def _client(world: World) -> tuple[OfflineClient, object]:
    phone, engine, _ = world.device("phone")
    client = OfflineClient(phone.outbox, parser=ParserAdapter(), policy=ClientPolicy(default_volume=D("0.5")),
                           advisor=world.limits, clock=world.clock)  # fmt: skip
    return client, engine


def test_adapter_satisfies_the_protocol() -> None:
    assert isinstance(ParserAdapter(), SignalParser)


def test_signal_and_replies_flow_offline_then_sync(world: World) -> None:
    client, engine = _client(world)
    world.broker.set_price("XAUUSD", D("2350.3"))
    first = client.receive_message("GOLD BUY NOW 2350 SL 2340 TP 2360", "gold-vip", message_id="m1")
    [opened] = first.actions
    assert isinstance(opened.payload, OpenPayload)
    assert (opened.payload.signal_id, opened.payload.symbol, opened.payload.volume) == (
        "gold-vip:m1",
        "XAUUSD",
        D("0.5"),
    )
    assert (opened.ref_price, opened.payload.stop_loss, opened.payload.take_profit) == (D("2350"), D("2340"), D("2360"))
    moved = client.receive_message("move SL to 2345", "gold-vip", message_id="m2", reply_to_id="m1",
                                   reply_to_text="GOLD BUY NOW 2350 SL 2340 TP 2360").actions[0]  # fmt: skip
    assert (moved.kind, moved.target, moved.payload) == (
        "modify", position_id_for(opened.action_id), type(moved.payload)(stop_loss=D("2345"), take_profit=D("2360")),
    ), "the TP the follow-up did not mention is kept"  # fmt: skip
    tp = client.receive_message("move tp to 2380", "gold-vip", message_id="m3", reply_to_id="m1",
                                reply_to_text="GOLD BUY NOW 2350 SL 2340 TP 2360").actions[0]  # fmt: skip
    assert tp.payload == type(tp.payload)(stop_loss=D("2345"), take_profit=D("2380")), "builds on the pending modify"
    engine.sync_once()  # type: ignore[attr-defined]
    assert client.report() == []
    position = world.broker.position(world.user, position_id_for(opened.action_id))
    assert position is not None
    assert (position.stop_loss, position.take_profit, position.version) == (D("2345"), D("2380"), 3)
    closed = client.receive_message("close gold now", "gold-vip", message_id="m4", reply_to_id="m1",
                                    reply_to_text="GOLD BUY NOW 2350 SL 2340 TP 2360").actions  # fmt: skip
    assert [a.kind for a in closed] == ["close"]


def test_what_cannot_be_acted_on_offline_is_reported_not_guessed(world: World) -> None:
    client, _ = _client(world)
    cases = {
        "XAUUSD buy stop 2360 sl 2350 tp 2380": "stop (breakout) orders are not supported offline",
        "BUY XAUUSD 2350 lot 0.5": "needs confirmation (confidence 0.65)",
        "move SL to 2345": "a follow-up needs the message it replies to",
    }
    for number, (text, reason) in enumerate(cases.items()):
        result = client.receive_message(text, "vip", message_id=f"x{number}")
        assert result.actions == []
        assert [why for _, why in result.skipped] == [reason]
    half = client.receive_message("close half", "vip", message_id="y", reply_to_id="x0", reply_to_text="GOLD BUY 2350")
    assert [why for _, why in half.skipped] == [
        "close_partial cannot be applied offline (only a close of the replied-to signal)"
    ]
    assert client.receive_message("good morning traders", "vip", message_id="z").actions == []


def test_multi_order_messages_get_one_signal_id_each(world: World) -> None:
    client, _ = _client(world)
    text = "EURUSD BUY NOW 1.1000 SL 1.0950 TP 1.1050\nGBPUSD SELL NOW 1.2700 SL 1.2750 TP 1.2650"
    result = client.receive_message(text, "fx", message_id="m9")
    assert client.receive_message("EURUSD BUY NOW 1.1000 SL 1.0950 TP 1.1050", "@fx signals", message_id="m1").actions[
        0
    ].payload.signal_id == (  # type: ignore[union-attr]
        "_fx_signals:m1"
    )
    assert [a.payload.signal_id for a in result.actions] == ["fx:m9:1", "fx:m9:2"]  # type: ignore[union-attr]


def test_an_entry_zone_uses_its_middle_as_the_reference_price(world: World) -> None:
    client, _ = _client(world)
    [action] = client.receive_message("GOLD BUY 2350-2346 SL 2340 TP 2360", "vip", message_id="r1").actions
    assert action.ref_price == D("2348")
