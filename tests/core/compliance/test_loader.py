"""Profile loading: strict validation, every issue at once with line/column/suggestion, YAML 1.1 traps,
extends and parameters, the JSON Schema, built-in discovery."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from signalos_core import ProfileNotFoundError, ProfileSchemaError, ProfileSyntaxError
from signalos_core.compliance import (
    ProfileIssue,
    builtin_rulesets_dir,
    kind_names,
    list_builtin_profiles,
    load_builtin_profile,
    load_profile,
    profile_hash,
    profile_json_schema,
)

GOOD = """\
id: acme-eval
version: "1"
effective_from: 2026-01-01
parameters:
  account_size: {type: money, default: 100000}
  dd: {type: decimal, default: 5}
day_boundary: {timezone: Europe/Prague, at: "00:00"}
rules:
  - id: acme.daily
    kind: daily_loss
    outcome: breach
    breach_when: lt
    params: {pct: "${dd}"}
  - id: acme.max
    kind: max_loss
    outcome: breach
    breach_when: le
    params: {amount: "${account_size * 0.1}"}
"""


def issues_of(text: str) -> list[ProfileIssue]:
    with pytest.raises(ProfileSchemaError) as info:
        load_profile(text)
    out = [i for i in info.value.issues if isinstance(i, ProfileIssue)]
    assert len(out) == len(info.value.issues)
    return out


def test_good_profile_loads_with_parameter_references() -> None:
    profile = load_profile(GOOD)
    assert profile.rule("acme.daily").params["pct"] == Decimal(5)
    assert profile.rule("acme.max").params["amount"] == Decimal("10000.0")
    assert profile.day_boundary.timezone == "Europe/Prague"
    with pytest.raises(KeyError):
        profile.rule("acme.none")


def test_parameter_override_changes_rules_and_hash() -> None:
    base = load_profile(GOOD)
    bigger = load_profile(GOOD, params={"account_size": "200000"})
    assert bigger.rule("acme.max").params["amount"] == Decimal("20000.0")
    assert profile_hash(base) != profile_hash(bigger)
    assert profile_hash(base) == profile_hash(load_profile(GOOD))


def test_bad_parameter_overrides_are_reported() -> None:
    found = issues_of_override({"acount_size": "1"})
    assert found[0].suggestion == "account_size"
    found = issues_of_override({"account_size": "lots"})
    assert "not a decimal" in found[0].message


def issues_of_override(params: dict[str, str]) -> list[ProfileIssue]:
    with pytest.raises(ProfileSchemaError) as info:
        load_profile(GOOD, params=params)
    return info.value.issues  # type: ignore[return-value]


def test_every_error_reported_at_once_with_positions_and_suggestions() -> None:
    text = GOOD.replace("    kind: max_loss", "    kind: max_los").replace(
        "    outcome: breach\n    breach_when: lt", "    outcom: breach\n    breach_when: lt"
    )
    text = text.replace("effective_from:", "efective_from:")
    found = issues_of(text)
    by_msg = {i.message: i for i in found}
    kind = next(i for i in found if "unknown rule kind" in i.message)
    assert kind.suggestion == "max_loss"
    assert kind.path == "rules[1].kind"
    assert (kind.line, kind.column) == (15, 11)
    typo = next(i for i in found if "'outcom'" in i.message)
    assert typo.suggestion == "outcome"
    assert typo.line == 11
    top = next(i for i in found if "'efective_from'" in i.message)
    assert top.suggestion == "effective_from"
    assert top.line == 3
    assert top.column == 1
    assert any("missing required profile key 'effective_from'" in m for m in by_msg)
    assert len(found) >= 5
    assert "did you mean 'max_loss'" in str(kind)


def test_param_errors_name_the_path() -> None:
    text = GOOD.replace('params: {pct: "${dd}"}', "params: {pct: 5, bsae: balance_at_boundary, measured_on: cash}")
    found = issues_of(text)
    unknown = next(i for i in found if "bsae" in i.message)
    assert unknown.suggestion == "base"
    assert unknown.path == "rules[0].params.bsae"
    assert any(i.path == "rules[0].params.measured_on" and "cash" in i.message for i in found)


def test_cross_field_param_errors() -> None:
    text = GOOD.replace('params: {pct: "${dd}"}', "params: {pct: 5, amount: 100}")
    assert any("exactly one of" in i.message for i in issues_of(text))
    text = GOOD.replace('params: {pct: "${dd}"}', "params: {pct: 500}")
    assert any("at most 100" in i.message for i in issues_of(text))


@pytest.mark.parametrize(
    ("snippet", "needle"),
    [
        ("title: no", "boolean"),
        ("title: On", "boolean"),
        ("title: 1e3", "as a string, not a number"),
        ("title: 010", "octal"),
        ("title: 0x1F", "octal"),
        ("title: 17:00", "base-60"),
        ("title: .inf", "finite"),
        ("title: 1_000", "underscored"),
    ],
)
def test_yaml_11_traps_are_errors(snippet: str, needle: str) -> None:
    found = issues_of(GOOD + snippet + "\n")
    trap = next(i for i in found if needle in i.message)
    assert trap.path == "title"
    assert trap.line == GOOD.count("\n") + 1


def test_unquoted_time_in_day_boundary_is_caught() -> None:
    found = issues_of(GOOD.replace('at: "00:00"', "at: 17:00"))
    assert any("base-60" in i.message and i.path == "day_boundary.at" for i in found)


def test_duplicate_keys_and_rule_ids() -> None:
    text = GOOD.replace('version: "1"\n', 'version: "1"\nversion: "2"\n').replace("id: acme.max", "id: acme.daily")
    found = issues_of(text)
    assert any("duplicate key 'version'" in i.message for i in found)
    assert any("duplicate rule id 'acme.daily'" in i.message for i in found)


def test_comparator_and_outcome_consistency() -> None:
    text = GOOD.replace("    breach_when: lt\n", "", 1)
    assert any("needs an explicit comparator" in i.message for i in issues_of(text))
    text = GOOD + "  - {id: acme.days, kind: min_trading_days, outcome: breach, breach_when: lt, params: {days: 3}}\n"
    found = issues_of(text)
    assert any("takes outcome objective" in i.message for i in found)
    assert any("no comparable limit" in i.message for i in found)
    text = GOOD + "  - {id: acme.days, kind: min_trading_days, outcome: objective, warn_at: [0.5], params: {days: 3}}\n"
    assert any("does not support warn_at" in i.message for i in issues_of(text))


def test_bad_structure_and_values() -> None:
    assert issues_of("- just\n- a list\n")[0].message == "a profile must be a YAML mapping"
    text = GOOD.replace("timezone: Europe/Prague", "timezone: Mars/Olympus").replace('version: "1"', "version: 1")
    found = issues_of(text)
    assert any("unknown IANA timezone" in i.message for i in found)
    assert any(i.path == "version" for i in found)
    assert any(
        "rules must be a list" in i.message for i in issues_of(GOOD.split("rules:", maxsplit=1)[0] + "rules: 5\n")
    )
    assert any("a rule must be a mapping" in i.message for i in issues_of(GOOD + "  - 7\n"))
    bad_ref = GOOD.replace('"${dd}"', '"${dd ** 2}"')
    assert any("bad parameter reference" in i.message for i in issues_of(bad_ref))
    unknown_ref = GOOD.replace('"${dd}"', '"${ddd}"')
    assert any(i.suggestion == "dd" for i in issues_of(unknown_ref))
    text = GOOD.replace("dd: {type: decimal, default: 5}", "dd: {type: decimal, default: five}")
    assert any("is not a decimal" in i.message for i in issues_of(text))


def test_not_yaml_raises_syntax_error_with_position() -> None:
    with pytest.raises(ProfileSyntaxError) as info:
        load_profile("id: [unclosed\nversion: 1\n")
    assert info.value.line is not None
    assert info.value.column is not None


def test_extends_overrides_parameters_and_rules(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(GOOD)
    child = tmp_path / "child.yaml"
    child.write_text(
        'id: acme-funded\nversion: "2"\neffective_from: 2026-02-01\nextends: acme-eval\n'
        "parameters: {account_size: {default: 50000}}\nremove_rules: [acme.daily]\n"
        'day_boundary: {timezone: America/Chicago, at: "17:00"}\n'
        "rules:\n  - {id: acme.max, kind: max_loss, outcome: breach, breach_when: lt, params: {pct: 4}}\n"
    )
    profile = load_profile(child)
    assert [r.id for r in profile.rules] == ["acme.max"]
    assert profile.rule("acme.max").breach_when == "lt"
    assert profile.parameters["account_size"].default == 50000
    missing = tmp_path / "orphan.yaml"
    missing.write_text(child.read_text().replace("extends: acme-eval", "extends: nobody-here"))
    with pytest.raises(ProfileSchemaError, match="no profile 'nobody-here'"):
        load_profile(missing)


def test_builtin_extends_and_unknown_builtin() -> None:
    swing = load_builtin_profile("ftmo-account-swing")
    assert {r.id for r in swing.rules} == {"ftmo.max_daily_loss", "ftmo.max_loss"}
    with pytest.raises(ProfileNotFoundError, match="did you mean"):
        load_builtin_profile("ftmo-2step-challenge-x")
    with pytest.raises(ProfileSchemaError, match="no built-in profile"):
        load_profile(GOOD.replace("parameters:", "extends: nope\nparameters:"))


def test_every_builtin_loads_lints_clean_and_cites_sources() -> None:
    items = list_builtin_profiles()
    assert len(items) >= 20
    folder = Path(str(builtin_rulesets_dir()))
    for item in items:
        profile = load_builtin_profile(item.id)
        assert profile.sources, item.id
        assert profile.version
        assert profile.effective_from
        assert load_profile(next(folder.rglob(item.file))).id == item.id


def test_json_schema_validates_builtin_files() -> None:
    schema = profile_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert set(schema["$defs"]["RuleSpec"]["properties"]["kind"]["enum"]) == set(kind_names())
    raw = json.loads(json.dumps(yaml.safe_load(GOOD), default=str))
    assert not list(validator.iter_errors(raw))
    raw["rules"][0]["params"]["bogus"] = 1
    assert list(validator.iter_errors(raw))


def test_packaged_schema_file_is_current() -> None:
    from signalos_core.compliance._schema import packaged_schema

    assert packaged_schema() == json.loads(json.dumps(profile_json_schema())), (
        "regenerate: signalos profiles schema > signalos_core/compliance/_data/profile.schema.json"
    )


TYPED = """\
id: typed
version: "1"
effective_from: 2026-01-01
parameters:
  size: {type: money, default: 1000}
  days: {type: integer, default: 3}
  flat: {type: boolean, default: true}
  label: {type: string, default: x}
day_boundary: {timezone: UTC}
rules:
  - {id: t.days, kind: min_trading_days, outcome: objective, params: {days: "${days}"}}
  - {id: t.pt, kind: profit_target, outcome: objective, params: {amount: "${size / 2}", requires_flat: "${flat}"}}
  - {id: t.ml, kind: max_loss, outcome: breach, breach_when: lt, params: {amount: "${size - 1}"}}
  - {id: t.m2, kind: max_loss, outcome: breach, breach_when: lt, params: {amount: "${size + 1}"}}
"""


def test_typed_parameter_overrides() -> None:
    profile = load_profile(TYPED, params={"days": "5", "flat": "false", "label": "y", "size": Decimal(10)})
    assert profile.rule("t.days").params["days"] == 5
    assert profile.rule("t.pt").params == {"amount": Decimal(5), "requires_flat": False}
    assert profile.rule("t.ml").params["amount"] == Decimal(9)
    assert profile.rule("t.m2").params["amount"] == Decimal(11)
    assert any("true/false" in str(i) for i in issues_of_override_text(TYPED, {"flat": "maybe"}))
    assert any("not finite" in str(i) for i in issues_of_override_text(TYPED, {"size": "Infinity"}))


def issues_of_override_text(text: str, params: dict[str, str]) -> list[object]:
    with pytest.raises(ProfileSchemaError) as info:
        load_profile(text, params=params)
    return info.value.issues


def test_parameter_expression_errors() -> None:
    assert any("division by zero" in i.message for i in issues_of(TYPED.replace("${size / 2}", "${size / 0}")))
    assert any("is not a number" in i.message for i in issues_of(TYPED.replace("${size - 1}", "${label - 1}")))
    assert any(
        i.path.startswith("parameters.size")
        for i in issues_of(TYPED.replace("{type: money, default: 1000}", "{type: cash}"))
    )
    bad_kind = (
        TYPED
        + "  - {id: t.x, kind: 7, outcome: deny}\n  - {id: t.y, kind: max_loss, outcome: deny, breach_when: lt, params: [1]}\n"
    )
    found = issues_of(bad_kind)
    assert any("unknown rule kind 7" in i.message for i in found)
    assert any("params must be a mapping" in i.message for i in found)


def test_sibling_file_can_extend_a_builtin(tmp_path: Path) -> None:
    child = tmp_path / "mine.yaml"
    child.write_text(
        'id: my-ftmo\nversion: "1"\neffective_from: 2026-01-01\nextends: ftmo-2step-challenge\n'
        "parameters: {account_size: {default: 200000}}\nday_boundary: {timezone: Europe/Prague}\n"
    )
    profile = load_profile(child)
    assert profile.parameters["account_size"].default == 200000
    assert len(profile.rules) == 4


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    for name, parent in (("a", "b"), ("b", "a")):
        (tmp_path / f"{name}.yaml").write_text(
            f'id: {name}\nversion: "1"\neffective_from: 2026-01-01\nextends: {parent}\n'
            "day_boundary: {timezone: UTC}\nrules: []\n"
        )
    with pytest.raises(ProfileSchemaError, match="too deep"):
        load_profile(tmp_path / "a.yaml")


def test_path_string_is_accepted(tmp_path: Path) -> None:
    target = tmp_path / "p.yaml"
    target.write_text(GOOD)
    assert load_profile(str(target)).id == "acme-eval"


def test_merge_keys_are_refused() -> None:
    text = GOOD.replace("rules:\n", "defaults: &d {pct: 5}\nrules:\n").replace(
        'params: {pct: "${dd}"}', "params: {<<: *d}"
    )
    found = issues_of(text)
    assert any("merge keys" in i.message for i in found)
