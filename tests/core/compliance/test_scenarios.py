"""Every development scenario (shared/reference/compliance-scenarios-dev.yaml) through the public API, on both
backends. The scenario file is engine-neutral; this module maps its state/action onto the engine's models."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from signalos_core.compliance import Enforcement, Engine, load_builtin_profile
from tests.core.compliance.conftest import (
    COPY,
    EXTRACTORS,
    PROFILES,
    SCENARIO_BACKENDS,
    SHARED,
    SOURCE,
    build_state,
    computed_value,
    expected_value,
    outcome,
    run,
    violated,
)

BACKENDS = SCENARIO_BACKENDS


def _load() -> dict[str, Any]:
    if not SOURCE.exists():  # pragma: no cover - both copies missing is a broken checkout
        pytest.skip(f"scenario file not found at {SHARED} nor {COPY}", allow_module_level=True)
    data: dict[str, Any] = yaml.safe_load(SOURCE.read_text("utf-8"))
    return data


DATA = _load()
SCENARIOS = DATA["scenarios"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_dev_scenario(scenario: dict[str, Any], backend: str) -> None:
    profile = load_builtin_profile(PROFILES[scenario["profile"]])
    engine = Engine(profile, backend=backend, explain_passed=True)  # type: ignore[arg-type]
    result = run(engine, build_state(scenario["state"], scenario["profile"], engine), scenario["action"])
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
        if key not in EXTRACTORS:
            # A value this mapping cannot read is not an engine failure; the dev set's keys are pinned below.
            continue
        got = computed_value(result, key)
        assert got == expected_value(key, value), (key, got, value)
    if expected["outcome"] != "allow":
        # Every deny/breach/lock names its profile version and rule numbers for the audit record.
        assert result.profile.version == profile.version
        assert len(result.profile.hash) == 64
        assert all(f.message for f in result.fired)


def test_every_computed_key_of_the_dev_set_has_an_extractor() -> None:
    keys = {key for s in SCENARIOS for key in s["expected"].get("computed", {})}
    assert keys <= set(EXTRACTORS), keys - set(EXTRACTORS)


def test_scenario_copy_matches_shared() -> None:
    """The CI copy must be the shared file (re-copy it when the reference changes)."""
    if not SHARED.exists():
        pytest.skip(f"shared reference not present at {SHARED}")
    assert COPY.read_bytes() == SHARED.read_bytes()


def test_every_rule_id_in_the_reference_exists_in_a_builtin_profile() -> None:
    ids: set[str] = set()
    for builtin in PROFILES.values():
        ids |= {r.id for r in load_builtin_profile(builtin).rules}
    assert set(DATA["rule_ids"]) <= ids, set(DATA["rule_ids"]) - ids
