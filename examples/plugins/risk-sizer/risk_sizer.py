"""Strategy plugin: risk a fixed share of the balance per trade.

size = balance * RISK / (|entry - stop_loss| * value_per_point), rounded DOWN to the lot step, capped.
Trades without a stop loss, an entry price or a known value per point are vetoed: the risk is unknown.
Compliance still runs after this plugin on the adjusted intent.
"""

from decimal import ROUND_DOWN, Decimal

RISK = Decimal("0.01")
LOT_STEP = Decimal("0.01")
MAX_LOTS = Decimal(50)


class RiskSizer:
    def adjust(self, request):
        intent, account = request["intent"], request["account"]
        if intent.get("stop_loss") is None:
            return {"decision": "veto", "reason": "no stop loss: risk cannot be sized"}
        if intent.get("entry") is None or account.get("value_per_point") is None:
            return {"decision": "veto", "reason": "entry price or value per point unknown"}
        distance = abs(Decimal(intent["entry"]) - Decimal(intent["stop_loss"]))
        if distance == 0:
            return {"decision": "veto", "reason": "stop loss equals entry"}
        budget = Decimal(account["balance"]) * RISK
        size = (budget / (distance * Decimal(account["value_per_point"]))).quantize(LOT_STEP, rounding=ROUND_DOWN)
        size = min(size, MAX_LOTS)
        if size <= 0:
            return {"decision": "veto", "reason": f"1% of the balance is less than one {LOT_STEP} lot step"}
        return {"decision": "adjust", "size": str(size), "reason": "risk 1% of balance"}

    def self_test(self):
        decision = self.adjust(
            {
                "intent": {"entry": "2350", "stop_loss": "2340"},
                "account": {"balance": "10000", "value_per_point": "100"},
            }
        )
        return decision == {"decision": "adjust", "size": "0.10", "reason": "risk 1% of balance"}
