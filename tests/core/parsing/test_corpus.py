"""Regression floor on the labelled dev corpus (a copy lives in tests/core/parsing/data/).

The goals of the parser: >= 95 % exact match on open signals, >= 90 % on follow-ups, and no noise/info
message turned into an order. The test scores through the public evaluation API; it contains no corpus
text and no per-message expectation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from signalos_core.parsing import SignalParser, evaluate, load_corpus, load_template

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def report() -> Any:
    channels = yaml.safe_load((DATA / "channels.yaml").read_text(encoding="utf-8"))
    parsers = {source: load_template(spec).parser() for source, spec in channels.items()}
    default = SignalParser()

    def parser_for(record: Mapping[str, Any]) -> SignalParser:
        return parsers.get(str(record.get("source")), default)

    return evaluate(load_corpus(DATA / "signals-dev.jsonl"), parser_for=parser_for)


def test_goals_hold(report: Any) -> None:
    assert report.total == 69
    assert report.open_exact_rate >= 0.95
    assert report.followup_exact_rate >= 0.90
    assert report.unsafe == []


def test_real_channel_messages_meet_the_goal_too(report: Any) -> None:
    channel = next(r for r in report.realism if r.kind == "channel")
    assert channel.count >= 50
    assert channel.rate >= 0.90


def test_no_kind_confusion_into_orders(report: Any) -> None:
    for label in ("noise", "info"):
        row = report.confusion[label]
        assert row["open"] == row["modify"] == row["close"] == row["cancel"] == 0


def test_core_fields_precision_and_recall(report: Any) -> None:
    scores = {f.name: f for f in report.fields}
    for name in ("kind", "symbol", "side", "entry", "sl", "tp", "action"):
        assert scores[name].precision >= 0.95, scores[name]
        assert scores[name].recall >= 0.95, scores[name]


def test_labelled_hazard_flags_are_found(report: Any) -> None:
    flags = {f.name: f for f in report.flags}
    for name in ("tp_wrong_side", "tp_implausible", "missing_sl", "shorthand_prices", "corrupted_number"):
        assert flags[name].recall == 1.0, flags[name]
