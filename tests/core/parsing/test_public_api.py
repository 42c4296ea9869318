"""The parsing package's public API is exactly its curated ``__all__``."""

from __future__ import annotations

from signalos_core import parsing


def test_all_is_pinned() -> None:
    assert parsing.__all__ == [
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
    for name in parsing.__all__:
        assert hasattr(parsing, name), name


def test_errors_come_from_the_single_tree() -> None:
    from signalos_core import ParseError, SignalOSError
    from signalos_core._errors import ChannelTemplateError

    assert parsing.ChannelTemplateError is ChannelTemplateError
    assert issubclass(ChannelTemplateError, ParseError)
    assert issubclass(ChannelTemplateError, ValueError)
    assert issubclass(ChannelTemplateError, SignalOSError)


def test_languages() -> None:
    assert set(parsing.LANGUAGES) == {"en", "es", "pt", "ru", "fa", "de"}
