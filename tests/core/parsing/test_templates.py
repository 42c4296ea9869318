"""Channel templates: strict validation naming the field, aliases/keywords/defaults applied, registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalos_core.parsing import ChannelTemplate, ChannelTemplateError, TemplateRegistry, load_template

GOOD = """
name: test-channel
defaults:
  symbol: US30
  advice: info
  confirm_below: 0.8
aliases:
  US30: [wall street index, dowie]
broker_suffixes: [".cash"]
keywords:
  buy: [arriba]
  sl: [corta]
"""


def test_template_applies_aliases_keywords_and_suffixes(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(GOOD, encoding="utf-8")
    template = load_template(path)
    assert isinstance(template, ChannelTemplate)
    parser = template.parser()
    result = parser.parse("arriba dowie 39000 corta 38800 tp 39400")
    assert (result.symbol, result.side, str(result.sl)) == ("US30", "buy", "38800")
    assert parser.parse("Wall Street Index buy 39000 sl 38800 tp 39400").symbol == "US30"
    assert parser.parse("US30.cash buy 39000 sl 38800 tp 39400").symbol == "US30"
    assert parser.confirm_below == 0.8


def test_default_symbol_and_advice_policy() -> None:
    parser = load_template(GOOD).parser()
    assert parser.parse("Close all").context_symbol == "US30"
    advised = parser.parse("I recommend you move SL to 38900")
    assert advised.kind == "info"
    assert "advice" in advised.flags
    assert advised.action is not None
    assert advised.action.action == "move_sl"


def test_builtin_parser_is_not_affected_by_a_template() -> None:
    from signalos_core.parsing import parse

    load_template(GOOD).parser()
    assert parse("arriba dowie 39000 corta 38800").symbol is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("defaults: {symbol: XAUUSD}", "(template)"),
        ("name: x\nunknown: 1", "(template)"),
        ("name: x\ndefaults: {symbol: xauusd}", "defaults.symbol"),
        ("name: x\ndefaults: {advice: sometimes}", "defaults.advice"),
        ("name: x\ndefaults: {confirm_below: 2}", "defaults.confirm_below"),
        ("name: x\nkeywords: {sl: [ok, 3]}", "keywords.sl[1]"),
        ("name: x\nkeywords: {not_a_concept: [x]}", "keywords"),
        ("name: x\naliases: {XAUUSD: yellow}", "aliases.XAUUSD"),
        ("name: x\nbroker_suffixes: ['bad suffix']", "broker_suffixes[0]"),
        ("name: 'has space'", "name"),
    ],
)
def test_invalid_templates_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ChannelTemplateError) as info:
        load_template(text)
    assert info.value.field == field, info.value.issues
    assert info.value.issues
    assert field in str(info.value) or field == "(template)"


def test_yaml_syntax_and_missing_file() -> None:
    with pytest.raises(ChannelTemplateError, match="YAML"):
        load_template("name: [unclosed")
    with pytest.raises(ChannelTemplateError, match="cannot read"):
        load_template(Path("/nonexistent/template.yaml"))
    with pytest.raises(ChannelTemplateError):
        load_template("- just\n- a list")


def test_registry_caches_parsers_and_falls_back_to_default() -> None:
    registry = TemplateRegistry()
    template = registry.register("chan-1", GOOD)
    assert registry.template("chan-1") is template
    assert registry.parser("chan-1") is registry.parser("chan-1")
    assert registry.parser("unknown") is registry.parser(None)
    replaced = registry.register("chan-1", {"name": "other", "defaults": {"symbol": "XAUUSD"}})
    assert replaced.name == "other"
    assert registry.parser("chan-1").default_symbol == "XAUUSD"
    assert registry.register("chan-2", template) is template
