"""Provider plugin: a paper (simulated) broker connection.

``test_connection`` checks the settings the way a real connector would (credentials, server name) and
returns the same diagnosis statuses. Orders fill immediately at their price; positions live in the worker's
memory (they are gone when the worker restarts, as paper positions may be).
"""

import time
from decimal import Decimal


class PaperBroker:
    def __init__(self):
        self.positions = {}
        self.next_id = 1

    def test_connection(self, config):
        started = time.perf_counter()
        server = config.get("server", "")
        if server != "paper":
            return {
                "status": "wrong_server",
                "hint": "the paper broker's server name is 'paper'",
                "detail": f"got server {server!r}",
            }
        if not config.get("api_key"):
            return {"status": "bad_credentials", "hint": "enter any non-empty API key for paper trading"}
        return {"status": "ok", "latency_ms": (time.perf_counter() - started) * 1000.0}

    def fetch_signals(self, request):
        return {"signals": [], "cursor": request.get("cursor", "")}

    def submit_order(self, order):
        if order.get("price") is None:
            return {
                "status": "rejected",
                "client_order_id": order["client_order_id"],
                "reason": "paper broker needs a price to fill at",
            }
        size = Decimal(order["size"])
        signed = size if order["side"] == "buy" else -size
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], Decimal(0)) + signed
        broker_id = f"paper-{self.next_id}"
        self.next_id += 1
        return {
            "status": "filled",
            "client_order_id": order["client_order_id"],
            "broker_order_id": broker_id,
            "filled_size": str(size),
            "average_price": order["price"],
        }

    def self_test(self):
        return self.test_connection({"server": "paper", "api_key": "x"})["status"] == "ok"
