"""Parser plugin for gold channels that post signals like::

    XAUUSD BUY @ 2350.5
    SL: 2340
    TP1: 2360
    TP2: 2372.5

Prices are returned as strings so the host reads them as exact decimals.
"""

import re

_HEAD = re.compile(
    r"^\s*(?P<symbol>[A-Z]{3,6})\s+(?P<side>BUY|SELL)(?:\s+(?P<kind>LIMIT|STOP))?"
    r"(?:\s*@\s*(?P<entry>\d+(?:\.\d+)?))?\s*$"
)
_SL = re.compile(r"^\s*SL\s*[:=]?\s*(?P<price>\d+(?:\.\d+)?)\s*$")
_TP = re.compile(r"^\s*TP\d*\s*[:=]?\s*(?P<price>\d+(?:\.\d+)?)\s*$")


class GoldFormat:
    def parse(self, request):
        lines = [line for line in request["text"].upper().splitlines() if line.strip()]
        if not lines:
            return None
        head = _HEAD.match(lines[0])
        if head is None:
            return None
        result = {
            "symbol": head["symbol"],
            "side": head["side"].lower(),
            "order_type": (head["kind"] or "market").lower(),
            "take_profits": [],
        }
        if head["entry"]:
            result["entry"] = head["entry"]
        for line in lines[1:]:
            stop = _SL.match(line)
            target = _TP.match(line)
            if stop:
                result["stop_loss"] = stop["price"]
            elif target:
                result["take_profits"].append(target["price"])
            else:
                result["confidence"] = 0.8  # unknown line: still a signal, but say we are less sure
        return result

    def self_test(self):
        parsed = self.parse({"text": "XAUUSD BUY @ 2350.5\nSL: 2340\nTP1: 2360"})
        return parsed is not None and parsed["stop_loss"] == "2340"
