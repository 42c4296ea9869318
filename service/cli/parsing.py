"""``signalos parse`` and ``signalos parse-eval``: the offline signal parser from the command line.

Both import only ``signalos_core`` (no web service). Exit codes: 0 success, 2 bad input (unreadable file,
invalid JSON line, invalid channel template), 4 ``parse-eval --check`` goals not met.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

EXIT_BAD_INPUT = 2
EXIT_GOALS_NOT_MET = 4


def _encoder() -> Any:
    import msgspec

    return msgspec.json.Encoder(decimal_format="number")


def _dump(obj: Any) -> str:
    return str(_encoder().encode(obj).decode("utf-8"))


def _result_json(result: Any, record_id: Any = None) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = {"id": record_id} if record_id is not None else {}
    out.update(result.to_label())
    out["spans"] = [msgspec.to_builtins(s) for s in result.spans]
    out["source"] = result.source
    return out


def _parser(template: Path | None, default_symbol: str | None) -> Any:
    from signalos_core.parsing import ChannelTemplateError, SignalParser, load_template

    if template is None:
        return SignalParser(default_symbol=default_symbol)
    try:
        loaded = load_template(template)
    except ChannelTemplateError as exc:
        raise click.ClickException(f"{exc} (field: {exc.field})") from exc
    parser = loaded.parser()
    if default_symbol:
        parser.default_symbol = default_symbol
    return parser


def _progress(total: int, label: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _jsonl_inputs(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        stripped = line.lstrip()
        if stripped.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
            if not isinstance(obj.get("text"), str):
                raise click.ClickException(f"{path}:{number}: an object line needs a 'text' string")
            yield number, obj
        else:
            yield number, {"text": line}


class _BadInput(click.ClickException):
    exit_code = EXIT_BAD_INPUT


@click.command("parse")
@click.argument("text", required=False)
@click.option(
    "--jsonl",
    "jsonl",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Parse every line of FILE (plain text, or JSON objects with a 'text' field); one JSON result per line.",
)
@click.option(
    "--template",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Channel template (YAML) with aliases, keywords and defaults.",
)
@click.option("--default-symbol", help="Instrument of the channel, used when a message names none.")
@click.option("--price", help="Current market price: decides market/limit/stop and expands shorthand prices.")
@click.option("--reply-to", "reply_to", help="Text of the message this one replies to.")
@click.option("--pretty", is_flag=True, help="Indent the JSON output.")
def parse_cmd(  # noqa: PLR0917 - click passes every option positionally
    text: str | None,
    jsonl: Path | None,
    template: Path | None,
    default_symbol: str | None,
    price: str | None,
    reply_to: str | None,
    pretty: bool,
) -> None:
    """Parse a signal message (TEXT) or a file of messages (--jsonl) and print JSON results.

    Exit codes: 0 ok, 2 bad input (no text, unreadable file, bad JSON line, invalid template or price).
    """
    from signalos_core.parsing import ParseContext, ReplyTo, context_for

    try:
        parser = _parser(template, default_symbol)
        reference = Decimal(price) if price is not None else None
    except (click.ClickException, InvalidOperation) as exc:
        message = exc.message if isinstance(exc, click.ClickException) else f"invalid --price {price!r}"
        raise _BadInput(message) from exc
    indent = 2 if pretty else None
    if jsonl is None:
        if text is None:
            raise _BadInput("give TEXT or --jsonl FILE")
        context = ParseContext(
            default_symbol=default_symbol,
            current_price=reference,
            reply_to=ReplyTo(text=reply_to) if reply_to else None,
        )
        click.echo(
            json.dumps(
                json.loads(_dump(_result_json(parser.parse(text, context=context)))), indent=indent, ensure_ascii=False
            )
        )
        return
    try:
        items = list(_jsonl_inputs(jsonl))
    except OSError as exc:
        raise _BadInput(f"cannot read {jsonl}: {exc.strerror}") from exc
    except click.ClickException as exc:
        raise _BadInput(exc.message) from exc
    with _progress(len(items), "parsing") as bar:
        task = bar.add_task("parse", total=len(items))
        for _, obj in items:
            context = context_for(obj, default_symbol)
            if reference is not None:
                context = ParseContext(
                    default_symbol=context.default_symbol if context else default_symbol,
                    current_price=reference,
                    reply_to=context.reply_to if context else None,
                )
            result = parser.parse(obj["text"], context=context)
            line = _dump(_result_json(result, obj.get("id")))
            click.echo(line if indent is None else json.dumps(json.loads(line), indent=indent, ensure_ascii=False))
            bar.advance(task)


def _channel_parsers(channels: Path | None) -> dict[str, Any]:
    if channels is None:
        return {}
    import yaml

    from signalos_core.parsing import ChannelTemplateError, load_template

    try:
        data = yaml.safe_load(channels.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _BadInput(f"cannot read channels file {channels}: {exc}") from exc
    if not isinstance(data, dict):
        raise _BadInput(f"{channels}: expected a mapping of source -> template")
    out = {}
    for source, spec in data.items():
        try:
            template = load_template(Path(spec) if isinstance(spec, str) else spec)
        except ChannelTemplateError as exc:
            raise _BadInput(f"{channels}: channel {source!r}: {exc} (field: {exc.field})") from exc
        out[str(source)] = template.parser()
    return out


@click.command("parse-eval")
@click.argument("corpus", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--channels",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML mapping of a record's 'source' (or 'channel') to a channel template (inline or a path).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON instead of tables.")
@click.option("--worst", default=10, show_default=True, help="How many worst misses to show.")
@click.option(
    "--check",
    is_flag=True,
    help="Exit 4 unless open >= 95%, follow-ups >= 90% and no noise/info message became an order.",
)
def parse_eval_cmd(corpus: Path, channels: Path | None, as_json: bool, worst: int, check: bool) -> None:
    """Score the parser on a labelled JSONL corpus: exact match per kind, per-field precision/recall,
    kind confusion matrix and the worst misses.

    Exit codes: 0 ok, 2 bad input, 4 with --check when a goal is not met.
    """
    import msgspec

    from signalos_core.parsing import ParseError, SignalParser, evaluate, load_corpus

    try:
        records = load_corpus(corpus)
    except OSError as exc:
        raise _BadInput(f"cannot read {corpus}: {exc.strerror}") from exc
    except ParseError as exc:
        raise _BadInput(str(exc)) from exc
    by_source = _channel_parsers(channels)
    default = SignalParser()

    def parser_for(record: Mapping[str, Any]) -> Any:
        return by_source.get(str(record.get("channel") or record.get("source") or ""), default)

    with _progress(len(records), "scoring") as bar:
        task = bar.add_task("eval", total=len(records))
        report = evaluate(records, parser_for=parser_for, worst=worst, progress=lambda n: bar.advance(task, n))
    if as_json:
        click.echo(_dump(msgspec.to_builtins(report)))
    else:
        _print_tables(report)
    goals_met = report.open_exact_rate >= 0.95 and report.followup_exact_rate >= 0.90 and not report.unsafe
    if check and not goals_met:
        sys.exit(EXIT_GOALS_NOT_MET)


def _print_tables(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    console.print(
        f"[bold]{report.exact}/{report.total} exact ({report.exact_rate:.1%})[/]  "
        f"open {report.open_exact_rate:.1%}  follow-ups {report.followup_exact_rate:.1%}  "
        f"unsafe (noise/info -> order): {len(report.unsafe)}  "
        f"ambiguous {report.ambiguous_exact}/{report.ambiguous_total}"
    )
    kinds = Table("kind", "count", "exact", "rate", title="Exact match per kind")
    for k in report.kinds:
        kinds.add_row(k.kind, str(k.count), str(k.exact), f"{k.rate:.1%}")
    console.print(kinds)
    realism = Table("realism", "count", "exact", "rate", title="Exact match per source realism")
    for k in report.realism:
        realism.add_row(k.kind, str(k.count), str(k.exact), f"{k.rate:.1%}")
    console.print(realism)
    fields = Table("field", "tp", "fp", "fn", "precision", "recall", title="Per-field precision / recall")
    for f in report.fields:
        fields.add_row(f.name, str(f.tp), str(f.fp), str(f.fn), f"{f.precision:.1%}", f"{f.recall:.1%}")
    console.print(fields)
    confusion = Table("label \\ parsed", *report.confusion, title="Kind confusion")
    for want, row in report.confusion.items():
        if any(row.values()):
            confusion.add_row(want, *(str(row[k]) for k in report.confusion))
    console.print(confusion)
    if report.misses:
        misses = Table("id", "label", "parsed", "fields", "text", title="Worst misses")
        for m in report.misses:
            misses.add_row(m.id, m.expected_kind, m.got_kind, ", ".join(m.fields), m.text[:60].replace("\n", " / "))
        console.print(misses)
