"""Formats real channels use, on made-up messages (none is from the dev corpus).

Each case gives the text, an optional context and the labelled fields expected (Decimal-compared).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from signalos_core.parsing import ParseContext, ReplyTo, parse


def _norm(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return value
    return value


def check(text: str, expected: dict[str, Any], context: ParseContext | None = None) -> dict[str, Any]:
    got = parse(text, context=context).to_label()
    for key, want in expected.items():
        if key == "flags":
            assert set(want) <= set(got.get("flags", [])), (text, got.get("flags"))
        elif key == "no_flags":
            assert not set(want) & set(got.get("flags", [])), (text, got.get("flags"))
        else:
            assert _norm(got.get(key)) == _norm(want), (text, key, got.get(key), want)
    return got


OPENS = [
    (
        "EURUSD BUY LIMIT 1.0850\nSL 1.0820\nTP1 1.0880\nTP2 1.0910\nTP3 1.0950",
        {
            "symbol": "EURUSD",
            "side": "buy",
            "order_type": "limit",
            "order_type_explicit": True,
            "entry": 1.085,
            "sl": 1.082,
            "tp": [1.088, 1.091, 1.095],
        },
    ),
    (
        "🔥 XAUUSD SELL 2345-2348 🔥\n❌ SL: 2352\n✅ TP1: 2340\n✅ TP2: 2335",
        {"symbol": "XAUUSD", "side": "sell", "entry": [2345, 2348], "sl": 2352, "tp": [2340, 2335]},
    ),
    (
        "#BTCUSDT LONG\nEntry: 64000 - 63500\nTargets: 65000, 66000, 67500\nStop: 62800\nLeverage: 10x",
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "entry": [63500, 64000],
            "sl": 62800,
            "tp": [65000, 66000, 67500],
            "leverage": 10,
        },
    ),
    (
        "$SOL short entry 145.5 tp 140/137/132 sl 149 lev 20x",
        {"symbol": "SOLUSDT", "side": "sell", "entry": 145.5, "sl": 149, "tp": [140, 137, 132], "leverage": 20},
    ),
    (
        "Sell USDJPY @ 151.20 SL 151.80 TP 150.50 lot 0.05",
        {"symbol": "USDJPY", "entry": 151.2, "sl": 151.8, "tp": [150.5], "lot": 0.05},
    ),
    ("XAUUSDm BUY @ 2310.5\nSL 2305\nTP 2315 / 2320 / 2330", {"symbol": "XAUUSD", "tp": [2315, 2320, 2330]}),
    (
        "EURUSD.pro sell stop 1.0800 sl 1.0830 tp 1.0750",
        {"symbol": "EURUSD", "order_type": "stop", "order_type_explicit": True, "entry": 1.08},
    ),
    (
        "Compra oro ahora 2330\nSL 2322\nTP 2338\nTP 2345",
        {"symbol": "XAUUSD", "side": "buy", "order_type_explicit": True, "entry": 2330, "tp": [2338, 2345]},
    ),
    (
        "Venta EURUSD 1,0850 SL 1,0880 TP 1,0800",
        {"side": "sell", "entry": 1.085, "sl": 1.088, "tp": [1.08], "flags": ["comma_decimal"]},
    ),
    ("Vender ouro agora 2330 stop 2338 alvo 2320", {"symbol": "XAUUSD", "side": "sell", "sl": 2338, "tp": [2320]}),
    ("Купить золото 2330 стоп 2322 тейк 2340", {"symbol": "XAUUSD", "side": "buy", "sl": 2322, "tp": [2340]}),
    ("خرید طلا ۲۳۳۰ حد ضرر ۲۳۲۲ حد سود ۲۳۴۰", {"symbol": "XAUUSD", "side": "buy", "entry": 2330, "sl": 2322}),
    ("Kaufe DAX 18200 SL 18100 Ziel 18400", {"symbol": "GER40", "side": "buy", "tp": [18400]}),
    ("ＸＡＵＵＳＤ ＳＥＬＬ ２３５０ ＳＬ ２３６０ ＴＰ ２３４０", {"symbol": "XAUUSD", "side": "sell", "entry": 2350}),
    ("US30 buy 39000 sl 38800 tp 39300 tp 39600", {"symbol": "US30", "tp": [39300, 39600]}),
    ("GOLD SELL NOW\nEntry 2350\nSL 2355\nTP 2345\nTP 2340\n\nUse 1% risk", {"risk_percent": 1, "sl": 2355}),
    (
        "Gold buy 2301-05\nsl 2295\ntp 2310-15-20",
        {"entry": [2301, 2305], "tp": [2310, 2315, 2320], "flags": ["shorthand_prices"]},
    ),
    ("XAU/USD BUY @ 2,330.50 SL 2,320.00 TP 2,345.00", {"symbol": "XAUUSD", "entry": 2330.5, "sl": 2320}),
    ("🟢 BUY GBPJPY 191.50\n🔴 SL 190.80\n🎯 TP 192.50", {"symbol": "GBPJPY", "sl": 190.8, "tp": [192.5]}),
    (
        "New signal 📊\nPair: AUDUSD\nAction: SELL\nEntry: 0.6650\nStop Loss: 0.6690\nTake Profit 1: 0.6610\n"
        "Take Profit 2: 0.6570",
        {"symbol": "AUDUSD", "side": "sell", "sl": 0.669, "tp": [0.661, 0.657]},
    ),
    (
        "ETH/USDT buy zone 3100-3150 targets 3200 3300 3400 stop 3000",
        {"symbol": "ETHUSDT", "entry": [3100, 3150], "tp": [3200, 3300, 3400], "sl": 3000},
    ),
    ("Buy gold at 2330. Stop loss 2320. Take profit 2350.", {"entry": 2330, "sl": 2320, "tp": [2350]}),
    (
        "Signal #45 🔥\nGBPUSD SELL\nEntry: 1.27500\nSL: 1.27900\nTP1: 1.27100\nTP2: 1.26700\nRisk 2%",
        {"entry": 1.275, "tp": [1.271, 1.267], "risk_percent": 2},
    ),
    ("XAUUSD\nBUY 2330/2328\nSL 2320\nTP 2335/2340/2350", {"entry": [2328, 2330], "tp": [2335, 2340, 2350]}),
    ("Apertura: compramos oro en 2330, stop 2322, objetivo 2345", {"side": "buy", "entry": 2330, "tp": [2345]}),
    ("EURUSD buy now SL 20 pips TP 40 pips", {"entry": None, "sl": None, "sl_pips": 20, "tp_pips": [40]}),
    ("XAUUSD BUY\nTP1 2340\nTP2 2345\nSL 2325", {"entry": None, "order_type": "market", "sl": 2325}),
    ("AUDCAD Buy 0.9050\nTP: 0.9100\nSL: 0.9000\n\n*Not financial advice*", {"no_flags": ["advice"]}),
    (
        "Sell limit GBPCHF at 1.1450 & 1.1500\nSL 1.1560\nTP 1.1380",
        {"order_type": "limit", "entry": [1.145, 1.15], "entries": [1.145, 1.15], "flags": ["multi_entry"]},
    ),
    ("NZDUSD sell 0.6050\nTP 0.6000\nTP open\nSL 0.6090", {"tp": [0.6], "tp_open": True}),
    ("buy BTCUSD sl=60000 tp=70000 q=0.5", {"symbol": "BTCUSD", "sl": 60000, "tp": [70000], "quantity": "0.5"}),
    (
        "EURGBP\nSELL\n@0.8560\nSL 0.8600\nTP 0.8500 (60 pips)",
        {"entry": 0.856, "no_flags": ["pips_annotation_mismatch"]},
    ),
    ("EURGBP SELL 0.8560 SL 0.8600 (70 pips) TP 0.8500", {"flags": ["pips_annotation_mismatch"]}),
    ("Ich kaufe Gold bei 2330, SL 2320, Ziel 2350", {"side": "buy", "entry": 2330, "sl": 2320, "tp": [2350]}),
    ("GOLD 2350 BUY\nSL 2340\nTP 2360", {"entry": 2350, "sl": 2340}),
    ("Tp1.1.23450 for EURUSD buy 1.2300 sl 1.2250", {"entry": 1.23, "tp": [1.2345]}),
    ("EURUSD BUY 1.0850\nSL 1.0820\nTP 1, 1.0880\nTP 2, 1.0900", {"tp": [1.088, 1.09]}),
    (
        "BTCUSDT SHORT 🔻\nEntry: 67,500\nTP: 66,000 / 65,000\nSL: 68,200\nLeverage: Cross 20x",
        {"entry": 67500, "sl": 68200, "tp": [66000, 65000], "leverage": 20},
    ),
    ("If gold breaks 2350 we will buy, SL 2340 TP 2370", {"flags": ["intention"], "needs_confirmation": True}),
    ("XAUUSD SELL", {"flags": ["incomplete"], "needs_confirmation": True}),
    ("EURUSD BUY 12/05/2024\nEntry 1.0850\nSL 1.0820\nTP 1.0900", {"entry": 1.085, "tp": [1.09]}),
    ("$BTC long 65000 sl 63000 tp 68000", {"symbol": "BTCUSDT", "entry": 65000}),
    (
        "#ETH short\nEntry 3200\nTargets:\n1. 3100\n2. 3000\n3. 2900\nStop 3300",
        {"symbol": "ETHUSDT", "tp": [3100, 3000, 2900], "sl": 3300},
    ),
    ("XAUUSD SELL 2350 SL 2% TP 2340", {"sl": None, "flags": ["sl_percent", "missing_sl"]}),
    ("GOLD BUY 2330\nTP 1️⃣ 2335\nTP 2️⃣ 2340\nSL 2320", {"tp": [2335, 2340], "sl": 2320}),
    ("Tg1 2340 Tg2 2345 gold buy 2330 sl 2320", {"tp": [2340, 2345], "entry": 2330}),
    ("USDCAD sell @ 1.3650\nSL 1.3700\nTP1 1.3600\n\n⚠️ Risk 1-2% per trade", {"lot": None, "tp": [1.36]}),
    (
        "🔥GBPUSD🔥\n\n📉SELL NOW📉\n\n➡️Entry: 1.2650\n❌SL: 1.2700\n✅TP1: 1.2600\n✅TP2: 1.2550",
        {"side": "sell", "order_type_explicit": True, "entry": 1.265, "sl": 1.27, "tp": [1.26, 1.255]},
    ),
    ("EUR/USD SELL @ 1.0850 | SL 1.0880 | TP 1.0800", {"symbol": "EURUSD", "sl": 1.088, "tp": [1.08]}),
    ("NAS100 buy now 18,250.5 sl 18,150 tp 18,400", {"entry": 18250.5, "sl": 18150, "tp": [18400]}),
    ("S&P500 buy 5000 sl 4950 tp 5100", {"symbol": "US500"}),
    ("Ich kaufe Gold bei 1.950,50 EK, SL 1.940", {"entry": 1950.5, "sl": 1940, "flags": ["thousands_dot"]}),
    ("Kaufe BITCOIN EK 30.000 SL 29.000", {"symbol": "BTCUSD", "entry": 30000, "sl": 29000}),
    ("Kaufe SILBER EK 23,50 SL 23,10 Ziel 24,20", {"symbol": "XAGUSD", "entry": 23.5, "tp": [24.2]}),
    ("AUDUSD BUY 65.43 SL 65.10 TP 66.00", {"entry": 0.6543, "sl": 0.651, "flags": ["missing_leading_zero"]}),
    ("BTCUSDT long 65k-64.5k targets 66k 67k stop 63k", {"entry": [64500, 65000], "tp": [66000, 67000], "sl": 63000}),
    ("Buy gold 2330-2325 SL 2325 TP 2340", {"sl": 2325, "flags": ["sl_at_zone_edge"]}),
    (
        "#ADA Buy below 1900 sats\nTargets 2100 2300\nStop loss: 5% below entry",
        {
            "symbol": "ADABTC",
            "entry": 1900,
            "tp": [2100, 2300],
            "flags": ["sl_percent"],
            "no_flags": ["contains_followup_text"],
        },
    ),
    ("Compramos desde 2330 con SL en 2322 y TP en 2345", {"side": "buy", "entry": 2330, "sl": 2322, "tp": [2345]}),
    (
        "🔴 فروش طلا\nقیمت ورود: 2350 - 2355\nحد ضرر: 2360\nحد سود اول: 2345\nحد سود دوم: 2340",
        {"symbol": "XAUUSD", "side": "sell", "entry": [2350, 2355], "sl": 2360, "tp": [2345, 2340]},
    ),
    ("خرید یورو دلار 1.0850 استاپ 1.0820 تارگت 1.0900", {"symbol": "EURUSD", "side": "buy", "tp": [1.09]}),
    ("شراء الذهب 2350 وقف الخسارة 2340 الهدف 2360", {"symbol": "XAUUSD", "side": "buy", "sl": 2340, "tp": [2360]}),
    ("Buy gold 2330 stop-loss 2320 take-profit 2340", {"sl": 2320, "tp": [2340]}),
    (
        "#ADA\nBuy: 1850-1900 sats\nSell: 2100-2300-2500\nStop: 1700",
        {"symbol": "ADABTC", "price_unit": "satoshi", "entry": [1850, 1900], "tp": [2100, 2300, 2500], "sl": 1700},
    ),
    (
        "Buy XRP/BTC @ 0.00008500 targets 0.00009000 0.00009500 stop 0.00008000",
        {"symbol": "XRPBTC", "entry": 0.000085, "tp": [0.00009, 0.000095], "sl": 0.00008},
    ),
    (
        "⚡️⚡️ #BTC/USDT ⚡️⚡️\nSignal Type: Regular (Long)\nLeverage: Cross (20.0X)\nEntry Targets:\n1) 27500\n"
        "2) 27000\nTake-Profit Targets:\n1) 28000\n2) 28500\n3) 29000\nStop Targets:\n1) 26500",
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "entry": [27000, 27500],
            "entries": [27500, 27000],
            "sl": 26500,
            "tp": [28000, 28500, 29000],
            "leverage": 20,
        },
    ),
    (
        "$LINK/USDT\nBuy Zone: 12.30 - 12.80\nSell: 13.50 - 14.20 - 15.00\nStop Loss: 11.90",
        {"symbol": "LINKUSDT", "side": "buy", "entry": [12.3, 12.8], "tp": [13.5, 14.2, 15], "sl": 11.9},
    ),
    (
        "Ich kaufe den DAX\nEK: 15.234\nSL: 15.180\nZiel: 15.400",
        {"symbol": "GER40", "entry": 15234, "sl": 15180, "tp": [15400], "flags": ["thousands_dot"]},
    ),
    ("XAUUSD BUY LIMIT 1938-34\nTP 1941-45-50\nSL 1930", {"entry": [1934, 1938], "tp": [1941, 1945, 1950]}),
    (
        "COMPRA ORO AHORA\nZona: 2350-2345\nRisk Price: 2340\nTP1: 2355\nTP2: 2360",
        {"side": "buy", "entry": [2345, 2350], "sl": 2340, "tp": [2355, 2360]},
    ),
    (
        "خرید طلا قیمت بازار\nحد ضرر ۲۳۴۰\nتی پی ۱ 🟰 ۲۳۶۰\nتی پی ۲ 🟰 ۲۳۷۰",
        {"order_type_explicit": True, "sl": 2340, "tp": [2360, 2370]},
    ),
]


@pytest.mark.parametrize(("text", "expected"), OPENS)
def test_open_formats(text: str, expected: dict[str, Any]) -> None:
    got = check(text, expected)
    assert got["kind"] == "open", got


FOLLOW_UPS = [
    ("SL to breakeven", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Move SL to entry", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("move sl to 1.0840", "modify", {"action": {"action": "move_sl", "to": 1.084}}),
    ("Set TP2 to 2360", "modify", {"action": {"action": "modify_tp", "tp_index": 2, "to": 2360}}),
    ("New TP 2365", "modify", {"action": {"action": "modify_tp", "tp_index": None, "to": 2365}}),
    ("Close half now", "close", {"action": {"action": "close_partial", "fraction": 0.5}}),
    ("Close all trades", "close", {"action": {"action": "close_all"}}),
    (
        "Cerrar la mitad y mover SL a entrada",
        "modify",
        {"actions": [{"action": "close_partial", "fraction": 0.5}, {"action": "move_sl", "to": "breakeven"}]},
    ),
    (
        "Fechem metade e coloquem o stop no ponto de entrada",
        "modify",
        {"action": {"action": "move_sl", "to": "breakeven"}},
    ),
    ("Закрываем половину, стоп в безубыток", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Cerramos EURUSD", "close", {"action": {"action": "close", "target": "EURUSD"}, "symbol": "EURUSD"}),
    (
        "Close GBPUSD sell and EURUSD buy",
        "close",
        {
            "actions": [
                {"action": "close", "target": "GBPUSD", "side_filter": "sell"},
                {"action": "close", "target": "EURUSD", "side_filter": "buy"},
            ],
            "side": "sell",
        },
    ),
    ("Cancel the EURUSD buy limit", "cancel", {"action": {"action": "cancel", "target": "EURUSD"}}),
    ("TP1 hit ✅ +30 pips", "info", {"action": {"action": "tp_hit", "tp_index": 1}}),
    (
        "tp2 reached, close 50% and move stop to entry",
        "modify",
        {
            "actions": [
                {"action": "tp_hit", "tp_index": 2},
                {"action": "close_partial", "fraction": 0.5},
                {"action": "move_sl", "to": "breakeven"},
            ]
        },
    ),
    ("SL hit ❌", "info", {"action": {"action": "sl_hit"}}),
    ("Stopped out on GBPJPY -40 pips", "info", {"action": {"action": "sl_hit"}, "symbol": "GBPJPY"}),
    ("Buy limit activated ✅", "info", {"action": {"action": "entry_triggered"}}),
    ("Hold your positions, don't close yet", "info", {"action": {"action": "hold"}}),
    ("Otra vez +35 pips ✅", "info", {"action": {"action": "profit_report", "pips": 35}}),
    ("Another +$150 ✅", "info", {"action": {"action": "profit_report", "amount": 150}}),
    ("SL ❌", "info", {"action": {"action": "sl_hit"}}),
    ("Update: SL 2340", "modify", {"action": {"action": "move_sl", "to": 2340}}),
    ("EDIT: TP2 2360", "modify", {"action": {"action": "modify_tp", "tp_index": 2, "to": 2360}}),
    ("Set TP 2 to 2360", "modify", {"action": {"action": "modify_tp", "tp_index": 2, "to": 2360}}),
    (
        "Correction: SL 1.0820 TP 1.0900",
        "modify",
        {"actions": [{"action": "move_sl", "to": 1.082}, {"action": "modify_tp", "tp_index": None, "to": 1.09}]},
    ),
    ("TP2", "info", {"action": {"action": "tp_hit", "tp_index": 2}}),
    ("Cerramos las dos", "close", {"action": {"action": "close_all"}}),
    ("SL moved to 2335", "modify", {"action": {"action": "move_sl", "to": 2335}}),
    ("Trailing SL to 2340", "modify", {"action": {"action": "move_sl", "to": 2340}}),
    ("Gold hit TP2 +120 pips 🔥", "info", {"action": {"action": "tp_hit", "tp_index": 2}, "symbol": "XAUUSD"}),
    ("BUY GOLD 2330 SL 2320 TP 2340 ✅ TP1 hit", "info", {"action": {"action": "tp_hit", "tp_index": 1}}),
    (
        "🔴 EXIT BTCUSDm SELL @ 65000",
        "close",
        {"action": {"action": "close", "target": "BTCUSD", "side_filter": "sell"}},
    ),
    ("Закрываем все сделки", "close", {"action": {"action": "close_all"}}),
    ("Close 1/3 of the position", "close", {"action": {"action": "close_partial", "fraction": 0.3333}}),
    ("SL → 2340", "modify", {"action": {"action": "move_sl", "to": 2340}}),
    ("Take some profit here", "close", {"action": {"action": "close_partial", "fraction": None}}),
    ("Movemos SL a BE", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Saltó el stop -30 pips", "info", {"action": {"action": "sl_hit"}, "actions": None}),
    ("Тейк 1 взяли", "info", {"action": {"action": "tp_hit", "tp_index": 1}}),
    ("TP2 ✅", "info", {"action": {"action": "tp_hit", "tp_index": 2}}),
    ("change entry to 2345", "modify", {"action": {"action": "modify_entry", "to": 2345}}),
    ("modify sl be", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Tomar parcial", "close", {"action": {"action": "close_partial", "fraction": None}}),
    ("DAX SL nachziehen auf 15.250", "modify", {"action": {"action": "move_sl", "to": 15250}, "symbol": "GER40"}),
    ("Stopp auf Einstand", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Gewinnmitnahme beim DAX", "close", {"action": {"action": "close", "target": "GER40"}}),
    ("Verkaufe die Hälfte DAX", "close", {"action": {"action": "close_partial", "fraction": 0.5}}),
    ("استاپ رو ببرید نقطه ورود", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("معامله بسته شد", "close", {"action": {"action": "close", "target": None}}),
    (
        "🔴 POSITION CLOSED\nSymbol: BTCUSDm\nSide: SELL\nPrice: 66000\nPosition ID: 123456\nProfit: $100",
        "close",
        {"action": {"action": "close", "target": "BTCUSD"}},
    ),
    ("تی پی 1 خورد", "info", {"action": {"action": "tp_hit", "tp_index": 1}}),
    ("همه معاملات رو ببندید", "close", {"action": {"action": "close_all"}}),
]


@pytest.mark.parametrize(("text", "kind", "expected"), FOLLOW_UPS)
def test_follow_ups(text: str, kind: str, expected: dict[str, Any]) -> None:
    got = check(text, expected)
    assert got["kind"] == kind, got


NOISE = [
    "Good morning traders! Market is volatile today, trade safe.",
    "Our VIP results this week: +540 pips 🚀 Join now!",
    "Meeting at 14:30 GMT tomorrow, 2024-05-12. Don't miss it!",
    "Deposit $500 and get 50% bonus! Contact @admin",
    "Gold is looking bullish, I expect 2400 next week",
    "Gold update: price now 2345, we are waiting for a better entry",
    "📊 Weekly recap: 12 wins, 3 losses, +1250 pips",
    "I'll let you know when to close",
    "Last week we made 500 pips on GBPJPY buy",
    "Don't buy gold now, wait for 2300",
    "If gold breaks 2350 we will buy",
    "EURUSD analysis: resistance at 1.0900, support at 1.0800",
    "Yesterday's signal: BUY GOLD 2330 → closed +50 pips",
    "Price analysis: GOLD may sell off to 2300 if it breaks 2320",
    "Short term outlook for EURUSD: bearish below 1.0850",
    "New VIP member offer: buy 1 month get 1 free 🔥 $99",
    "Top 5 pairs to buy this week: EURUSD, GBPUSD, USDJPY",
    "lol price almost tagged my stop 😂",
    "Semana cerrada con +500 pips",
    "Llevamos +300 pips este mes 💰",
    "",
    "🚀🚀🚀",
]


@pytest.mark.parametrize("text", NOISE)
def test_noise_is_never_an_order(text: str) -> None:
    result = parse(text)
    assert not result.is_order(), result.to_label()
    assert not result.needs_confirmation


SPANISH_CHANNEL = [
    ("Cerramos la operación", "close", {"action": {"action": "close", "target": None}}),
    ("Aseguramos beneficios, cerramos parcial", "close", {"action": {"action": "close_partial", "fraction": None}}),
    ("Ponemos SL en BE", "modify", {"action": {"action": "move_sl", "to": "breakeven"}}),
    ("Dejamos correr", "info", {"action": {"action": "hold"}}),
    ("Stop tocado", "info", {"action": {"action": "sl_hit"}}),
    ("Cancelamos la orden", "cancel", {"action": {"action": "cancel"}}),
    ("Tocó TP1 +20 pips", "info", {"action": {"action": "tp_hit", "tp_index": 1}}),
    ("Buenos días familia", "noise", {}),
    ("Hoy no operamos", "noise", {}),
    (
        "Sell 3035 XAUUSD rango corto\n\nEntrada 3035\n\nSL 3045\n\nRecordad que podéis volver a entrar siempre que "
        "esté dentro del rango pero es vuestro riesgo si la operación ya ha dado profit.",
        "open",
        {"symbol": "XAUUSD", "entry": 3035, "sl": 3045, "signals": None, "no_flags": ["advice"]},
    ),
]


@pytest.mark.parametrize(("text", "kind", "expected"), SPANISH_CHANNEL)
def test_single_instrument_channel(text: str, kind: str, expected: dict[str, Any]) -> None:
    got = check(text, expected, ParseContext(default_symbol="XAUUSD"))
    assert got["kind"] == kind, got
    if kind not in ("open", "noise"):
        assert got["context_symbol"] == "XAUUSD"


def test_reply_resolves_symbol() -> None:
    reply = ReplyTo(text="EURUSD BUY 1.0850 SL 1.0820 TP 1.0900", message_id="77")
    got = check(
        "close",
        {"action": {"action": "close", "target": "reply"}, "context_symbol": "EURUSD"},
        ParseContext(reply_to=reply),
    )
    assert got["kind"] == "close"
    result = parse("close", context=ParseContext(reply_to=reply))
    assert result.reply_to == reply
    assert result.replied is not None
    assert (result.replied.entry, result.replied.sl) == (Decimal("1.0850"), Decimal("1.0820"))
    assert parse("close", context=ParseContext(reply_to=ReplyTo(text="good morning"))).replied is None


def test_default_symbol_makes_a_bare_order_and_fills_context_symbol() -> None:
    ctx = ParseContext(default_symbol="XAUUSD")
    check("BUY NOW", {"kind": "open", "symbol": None, "context_symbol": "XAUUSD", "flags": ["missing_symbol"]}, ctx)
    check("Cerramos todo", {"kind": "close", "context_symbol": "XAUUSD"}, ctx)
    assert parse("BUY NOW").kind == "noise"


def test_order_type_from_current_price() -> None:
    below = ParseContext(current_price=Decimal("2340"))
    check("GOLD BUY 2330 SL 2320 TP 2350", {"order_type": "limit", "order_type_explicit": False}, below)
    check("GOLD BUY 2350 SL 2320 TP 2370", {"order_type": "stop"}, below)
    check("GOLD SELL 2335-2345 SL 2350 TP 2320", {"order_type": "market"}, below)
    check("GOLD BUY LIMIT 2350 SL 2320 TP 2370", {"order_type": "limit", "order_type_explicit": True}, below)


def test_reference_prices_per_symbol() -> None:
    ctx = ParseContext(prices={"EURUSD": Decimal("1.0900"), "GBPUSD": Decimal("1.2600")}, current_price=Decimal(1))
    result = parse("EURUSD BUY 1.0850 SL 1.0820 TP 1.0900\nGBPUSD BUY 1.2700 SL 1.2660 TP 1.2760", context=ctx)
    assert [(s.symbol, s.order_type) for s in result.signals] == [("EURUSD", "limit"), ("GBPUSD", "stop")]
    assert ctx.price_for("USDJPY") == Decimal(1)


def test_pips_converted_only_with_a_reference() -> None:
    text = "EURUSD buy now SL 20 pips TP 40 pips"
    check(text, {"sl": None, "tp": []})
    got = check(
        text,
        {"sl": 1.098, "tp": [1.104], "sl_pips": 20, "flags": ["converted_from_pips"]},
        ParseContext(current_price=Decimal("1.1000")),
    )
    assert got["kind"] == "open"


def test_shorthand_only_needs_a_reference_price() -> None:
    text = "طلا\n56 و 60 فروش\nاستاپ 63\nتی پی 52 ، 48"
    check(
        text,
        {
            "entry": None,
            "entry_shorthand": [56, 60],
            "sl_shorthand": 63,
            "tp_shorthand": [52, 48],
            "order_type": None,
            "needs_confirmation": True,
            "flags": ["shorthand_prices"],
        },
    )
    check(text, {"entry": [2356, 2360], "sl": 2363, "tp": [2352, 2348]}, ParseContext(current_price=Decimal("2351")))


def test_several_orders_in_one_message() -> None:
    result = parse("EURUSD BUY 1.0850 SL 1.0820 TP 1.0900\nGBPUSD SELL 1.2700 SL 1.2740 TP 1.2650")
    assert [s.symbol for s in result.signals] == ["EURUSD", "GBPUSD"]
    assert [s.side for s in result.signals] == ["buy", "sell"]
    assert result.symbol == "EURUSD"
    assert "multi_order" in result.flags
    shared = parse("Buy EURUSD 1.0850 and GBPUSD 1.2700\nSL 30 pips TP 60 pips")
    assert [(s.symbol, s.side, s.sl_pips) for s in shared.signals] == [
        ("EURUSD", "buy", Decimal(30)),
        ("GBPUSD", "buy", Decimal(30)),
    ]


def test_compound_order_with_followup_text_keeps_its_levels() -> None:
    check(
        "EURUSD sell limit 1.1050 sl 1.1080 tp 1.1000 tp 1.0950\n\nMove SL to BE after TP1",
        {"kind": "open", "sl": 1.108, "tp": [1.1, 1.095], "flags": ["contains_followup_text"]},
    )
    check("NEW TRADE: XAUUSD BUY 2350 SL 2340 TP 2360", {"kind": "open", "sl": 2340, "tp": [2360]})


def test_spans_point_at_the_values() -> None:
    text = "Gold buy now 2338-2335\nsl:2330.5\ntp:2346.00"
    result = parse(text)
    for field, raw in (("sl", "2330.5"), ("tp[0]", "2346.00"), ("entry[0]", "2338"), ("symbol", "Gold")):
        span = result.span(field)
        assert span is not None, field
        assert text[span.start : span.end] == raw, field
    assert result.span("nope") is None
    persian = "خرید طلا ۲۳۳۰ حد ضرر ۲۳۲۲"
    span = parse(persian).span("sl")
    assert span is not None
    assert persian[span.start : span.end] == "۲۳۲۲"
