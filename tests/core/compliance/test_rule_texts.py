"""Rule-text probes (data/rule-text-scenarios.yaml) through the public API, on both backends.

An independent check of the built-in profiles against the sentences of shared/reference/compliance-rules.md,
written in the shared scenario format so the same mapping (conftest) feeds them: exact-limit equality per firm,
one cent either side, day boundaries in named zones across the EU and US DST calendars, day bases, the four
trailing floors, leverage classes per regime, NFA FIFO, FINRA business-day windows, objectives, lock
lifecycle and fail-closed inputs. Beyond the dev-scenario checks, every probe also demands that both backends
reach the same decision and that a lock names when it lifts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from signalos_core.compliance import Decision, Enforcement, Engine, available_backends, load_builtin_profile
from tests.core.compliance.conftest import (
    PROFILES,
    SCENARIO_BACKENDS,
    build_state,
    computed_value,
    expected_value,
    outcome,
    run,
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
