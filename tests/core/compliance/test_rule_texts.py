"""Rule-text probes (data/rule-text-scenarios.yaml) through the public API, on both backends.

An independent check of the built-in profiles against the sentences of shared/reference/compliance-rules.md,
written in the shared scenario format so the same mapping (conftest) feeds them: exact-limit equality per firm,
one cent either side, day boundaries in named zones across the EU and US DST calendars, day bases, the four
trailing floors, leverage classes per regime, NFA FIFO, FINRA business-day windows, objectives, lock
lifecycle and fail-closed inputs. Beyond the dev-scenario checks, every probe also demands that both backends
reach the same decision and that a lock names when it lifts.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from signalos_core.compliance import (
    Decision,
    Enforcement,
    Engine,
    EquityUpdate,
    HighWaterMarks,
    available_backends,
    load_builtin_profile,
)
from tests.core.compliance.conftest import (
    PROFILES,
    SCENARIO_BACKENDS,
    T0,
    build_state,
    computed_value,
    expected_value,
    outcome,
    run,
    state,
    violated,
)

DATA_FILE = Path(__file__).parent / "data" / "rule-text-scenarios.yaml"
PROBES: list[dict[str, Any]] = yaml.safe_load(DATA_FILE.read_text("utf-8"))["scenarios"]
HAS_DURABLE = available_backends()["durable"] is None


def _evaluate(scenario: dict[str, Any], backend: str) -> tuple[Engine, Decision | Enforcement]:
    profile = load_builtin_profile(PROFILES[scenario["profile"]])
    engine = Engine(profile, backend=backend, explain_passed=True)  # type: ignore[arg-type]
    return engine, run(engine, build_state(scenario["state"], scenario["profile"], engine), scenario["action"])


@pytest.mark.parametrize("backend", SCENARIO_BACKENDS)
@pytest.mark.parametrize("scenario", PROBES, ids=[s["id"] for s in PROBES])
def test_rule_text_probe(scenario: dict[str, Any], backend: str) -> None:
    _engine, result = _evaluate(scenario, backend)
    expected = scenario["expected"]
    fired = violated(result)
    assert outcome(result) == expected["outcome"], result.to_dict()
    assert set(expected.get("violations", [])) <= fired, result.to_dict()
    assert not set(expected.get("must_not_violate", [])) & fired, result.to_dict()
    if "objectives" in expected:
        assert isinstance(result, Enforcement)
        statuses = {o.rule_id: o.status for o in result.objectives}
        for rule_id, status in expected["objectives"].items():
            assert statuses[rule_id] == status, result.objectives
    for key, value in expected.get("computed", {}).items():
        got = computed_value(result, key)
        assert got is not None, f"no value for computed {key}"
        assert got == expected_value(key, value), (key, got, value)
    if expected["outcome"] != "allow":
        # What an audit record needs: profile version and hash, and a message with the numbers per fired rule.
        assert result.profile.version
        assert len(result.profile.hash) == 64
        assert all(f.message for f in result.fired)


@pytest.mark.skipif(not HAS_DURABLE, reason="durable-rules cannot be imported on this Python")
@pytest.mark.parametrize("scenario", PROBES, ids=[s["id"] for s in PROBES])
def test_backends_agree_on_probe(scenario: dict[str, Any]) -> None:
    """Same fired rules, numbers and outcome from compiled Python and durable-rules."""
    results = [_evaluate(scenario, backend)[1].to_dict() for backend in ("python", "durable")]
    for item in results:
        item["profile"].pop("backend", None)
    assert results[0] == results[1]


def test_probe_ids_are_unique_and_use_known_profiles() -> None:
    ids = [s["id"] for s in PROBES]
    assert len(ids) == len(set(ids))
    assert {s["profile"] for s in PROBES} <= set(PROFILES)


INTRADAY_TRAILING = (
    "  - {id: apex.trailing_threshold, kind: trailing_max_loss, outcome: breach, breach_when: lt,"
    " params: {amount: 2500, trail_on: equity, stop_at: initial, stop_offset: 100}}\n"
)


@pytest.mark.parametrize(
    ("peak", "equity", "floor", "breached"),
    [
        # The intraday equity peak (open profit included) moves the floor at once: 51,000 - 2,500.
        ("51000", "48500.00", "48500", False),
        ("51000", "48499.99", "48500", True),
        # A new peak reached by the current equity itself counts too.
        ("50000", "50900.00", "48400", False),
        # Trailing stops at the starting balance + 100 (50,100) however high the peak.
        ("53000", "50100.00", "50100", False),
        ("53000", "50099.99", "50100", True),
    ],
)
def test_intraday_trailing_including_open_profit(
    engine_for: Any, peak: str, equity: str, floor: str, breached: bool
) -> None:
    """The fourth trailing kind (Apex-style, third-party): no built-in profile uses it, so an inline one."""
    engine = engine_for(INTRADAY_TRAILING)
    account = state(
        balance=Decimal(50000),
        initial_balance=Decimal(50000),
        equity=Decimal(equity),
        high_water=HighWaterMarks(equity=Decimal(peak)),
    )
    result = engine.observe(account, EquityUpdate(at=T0, equity=Decimal(equity)))
    row = next(r for r in [*result.fired, *result.evaluated] if r.rule_id == "apex.trailing_threshold")
    assert row.threshold == Decimal(floor)
    assert (result.outcome == "breach") is breached
