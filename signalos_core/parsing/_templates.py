"""Channel templates: per-channel aliases, keywords and defaults in YAML, validated strictly, no code.

A template is checked against a JSON Schema first (every problem is collected; the error's ``field`` is the
path of the first one, e.g. ``keywords.sl[1]``), then turned into a :class:`ChannelTemplate` whose
:meth:`~ChannelTemplate.parser` builds a :class:`~signalos_core.parsing.SignalParser` with the extended
lexicon. :class:`TemplateRegistry` maps channel ids to templates.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import jsonschema
import msgspec
import yaml

from signalos_core._errors import ChannelTemplateError
from signalos_core.parsing._lexicon import default_lexicon
from signalos_core.parsing._parser import DEFAULT_CONFIRM_BELOW, ParserExtension, SignalParser

__all__ = ["ChannelTemplate", "TemplateDefaults", "TemplateRegistry", "load_template"]

_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_WORD_LIST = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 80}, "maxItems": 500}
_SYMBOL = {"type": "string", "pattern": "^[A-Z0-9]{2,20}$"}


def _schema() -> dict[str, Any]:
    concepts = list(default_lexicon().concepts)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
            "version": {"type": "integer", "minimum": 1},
            "description": {"type": "string", "maxLength": 2000},
            "defaults": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "symbol": _SYMBOL,
                    "advice": {"enum": ["instruction", "info"]},
                    "confirm_below": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
            "aliases": {"type": "object", "propertyNames": _SYMBOL, "additionalProperties": _WORD_LIST},
            "broker_suffixes": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[A-Za-z0-9.!_+-]{1,10}$"},
                "maxItems": 100,
            },
            "keywords": {"type": "object", "propertyNames": {"enum": concepts}, "additionalProperties": _WORD_LIST},
        },
    }


class TemplateDefaults(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Channel defaults: instrument when a message names none, advice policy, confirmation threshold."""

    symbol: str | None = None
    advice: Literal["instruction", "info"] = "instruction"
    confirm_below: float = DEFAULT_CONFIRM_BELOW


class ChannelTemplate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A validated channel template (see docs/signal-parsing.md, "Channel templates")."""

    name: str
    version: int = 1
    description: str = ""
    defaults: TemplateDefaults = TemplateDefaults()
    aliases: dict[str, list[str]] = {}
    broker_suffixes: list[str] = []
    keywords: dict[str, list[str]] = {}

    def parser(self, *, before: Sequence[ParserExtension] = (), after: Sequence[ParserExtension] = ()) -> SignalParser:
        """A parser using this template's aliases, keywords and defaults (plus optional extensions)."""
        lexicon = default_lexicon().extended(
            keywords=self.keywords,
            aliases=self.aliases,
            suffixes=[s.lstrip(".").lower() for s in self.broker_suffixes],
        )
        return SignalParser(
            lexicon=lexicon,
            confirm_below=self.defaults.confirm_below,
            advice=self.defaults.advice,
            default_symbol=self.defaults.symbol,
            before=before,
            after=after,
        )


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(template)"


def load_template(source: str | Path | dict[str, Any]) -> ChannelTemplate:
    """Load and validate a template from a YAML file path, YAML text or an already-parsed mapping.

    Raises :class:`~signalos_core.ChannelTemplateError` naming the offending field.
    """
    name = None
    if isinstance(source, Path):
        name = str(source)
        try:
            source = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ChannelTemplateError(f"cannot read template {name}: {exc}", template=name) from exc
    if isinstance(source, str):
        try:
            data = yaml.load(source, Loader=_SAFE_LOADER)  # noqa: S506 - SafeLoader/CSafeLoader only
        except yaml.YAMLError as exc:
            raise ChannelTemplateError(f"template is not valid YAML: {exc}", template=name) from exc
    else:
        data = source
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        issues = [f"{_path(e)}: {e.message}" for e in errors]
        raise ChannelTemplateError(
            f"invalid channel template: {issues[0]}" + (f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""),
            field=_path(errors[0]),
            issues=issues,
            template=name or (data.get("name") if isinstance(data, dict) else None),
        )
    return msgspec.convert(data, ChannelTemplate)


class TemplateRegistry:
    """Channel id -> template, with one cached parser per channel (thread-safe)."""

    def __init__(self) -> None:
        self._templates: dict[str, ChannelTemplate] = {}
        self._parsers: dict[str, SignalParser] = {}
        self._lock = threading.Lock()
        self._default = SignalParser()

    def register(self, channel: str, template: ChannelTemplate | str | Path | dict[str, Any]) -> ChannelTemplate:
        """Register (or replace) the template of ``channel``; accepts anything :func:`load_template` does."""
        loaded = template if isinstance(template, ChannelTemplate) else load_template(template)
        with self._lock:
            self._templates[channel] = loaded
            self._parsers.pop(channel, None)
        return loaded

    def template(self, channel: str) -> ChannelTemplate | None:
        """The template registered for ``channel``, if any."""
        return self._templates.get(channel)

    def parser(self, channel: str | None) -> SignalParser:
        """The parser for ``channel`` (the built-in default parser when none is registered)."""
        if channel is None or channel not in self._templates:
            return self._default
        with self._lock:
            found = self._parsers.get(channel)
            if found is None:
                found = self._parsers[channel] = self._templates[channel].parser()
            return found
