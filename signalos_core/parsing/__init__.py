"""Offline signal parser: free-text channel messages to structured intents, with confidence and provenance.

No network and no model: a tokenizer with a number normaliser and classifier, structural label binding,
a follow-up grammar, a numeric sanity layer with per-symbol price bands, and language packs (EN, ES, PT,
RU, FA/AR, DE) plus symbol aliases and broker suffixes as data files. Channels extend the data with YAML
templates (:func:`load_template`); plugins add formats through :class:`ParserExtension`.

    >>> from signalos_core.parsing import parse
    >>> r = parse("GOLD BUY NOW 2350 SL 2340 TP 2360 TP 2370")
    >>> r.kind, r.symbol, r.side, str(r.entry), [str(t) for t in r.tp]
    ('open', 'XAUUSD', 'buy', '2350', ['2360', '2370'])

See docs/signal-parsing.md for formats, templates, confidence and flags.
"""

from __future__ import annotations

from signalos_core._errors import ChannelTemplateError, ParseError
from signalos_core.parsing._evaluate import (
    SCORED_FIELDS,
    EvalReport,
    FieldScore,
    KindScore,
    Miss,
    context_for,
    evaluate,
    load_corpus,
)
from signalos_core.parsing._extensions import CallableExtension, result_from_plugin
from signalos_core.parsing._lexicon import LANGUAGES
from signalos_core.parsing._model import Action, Kind, OrderType, ParseContext, ParseResult, ReplyTo, Side, Span
from signalos_core.parsing._parser import (
    DEFAULT_CONFIRM_BELOW,
    MAX_TEXT_CHARS,
    ParserExtension,
    SignalParser,
    parse,
)
from signalos_core.parsing._templates import ChannelTemplate, TemplateDefaults, TemplateRegistry, load_template

__all__ = [
    "DEFAULT_CONFIRM_BELOW",
    "LANGUAGES",
    "MAX_TEXT_CHARS",
    "SCORED_FIELDS",
    "Action",
    "CallableExtension",
    "ChannelTemplate",
    "ChannelTemplateError",
    "EvalReport",
    "FieldScore",
    "Kind",
    "KindScore",
    "Miss",
    "OrderType",
    "ParseContext",
    "ParseError",
    "ParseResult",
    "ParserExtension",
    "ReplyTo",
    "Side",
    "SignalParser",
    "Span",
    "TemplateDefaults",
    "TemplateRegistry",
    "context_for",
    "evaluate",
    "load_corpus",
    "load_template",
    "parse",
    "result_from_plugin",
]
