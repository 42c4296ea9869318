"""``signalos parse`` and ``signalos parse-eval``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from service.cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "core" / "parsing" / "data"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_parse_text() -> None:
    code, out = run("parse", "GOLD BUY NOW 2350 SL 2340 TP 2360")
    assert code == 0
    result = json.loads(out)
    assert (result["kind"], result["symbol"], result["entry"], result["tp"]) == ("open", "XAUUSD", 2350, [2360])
    assert {s["field"] for s in result["spans"]} >= {"symbol", "entry", "sl", "tp[0]"}


def test_parse_with_context_options() -> None:
    code, out = run("parse", "--price", "2351", "--pretty", "انس طلا 56 و 60 فروش استاپ 63")
    assert code == 0
    assert json.loads(out)["entry"] == [2356, 2360]
    code, out = run("parse", "--reply-to", "EURUSD BUY 1.0850 SL 1.0820", "close")
    assert json.loads(out)["context_symbol"] == "EURUSD"
    code, out = run("parse", "--default-symbol", "XAUUSD", "Cerramos todo")
    assert json.loads(out)["context_symbol"] == "XAUUSD"


def test_parse_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "GOLD BUY 2350 SL 2340 TP 2360\n\n"
        + json.dumps({"id": "x1", "text": "move sl to 2345", "reply_to": {"text": "GOLD BUY 2350 SL 2340"}})
        + "\n",
        encoding="utf-8",
    )
    code, out = run("parse", "--jsonl", str(path))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["kind"] for line in lines] == ["open", "modify"]
    assert lines[1]["id"] == "x1"
    assert lines[1]["context_symbol"] == "XAUUSD"
    code, out = run("parse", "--jsonl", str(path), "--price", "2348", "--pretty")
    assert code == 0
    assert '"kind": "open"' in out


def test_parse_with_template(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("name: t\nkeywords: {buy: [arriba]}\n", encoding="utf-8")
    code, out = run("parse", "--template", str(template), "arriba gold 2350 sl 2340 tp 2360")
    assert code == 0
    assert json.loads(out)["side"] == "buy"
    template.write_text("name: t\nkeywords: {buy: arriba}\n", encoding="utf-8")
    code, out = run("parse", "--template", str(template), "x")
    assert code == 2
    assert "keywords.buy" in out


def test_parse_bad_input(tmp_path: Path) -> None:
    assert run("parse")[0] == 2
    assert run("parse", "--price", "abc", "x")[0] == 2
    assert run("parse", "--jsonl", str(tmp_path / "missing.jsonl"))[0] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n', encoding="utf-8")
    code, out = run("parse", "--jsonl", str(bad))
    assert code == 2
    assert "text" in out
    bad.write_text("{oops\n", encoding="utf-8")
    assert run("parse", "--jsonl", str(bad))[0] == 2


def test_parse_eval_tables_and_json() -> None:
    corpus, channels = str(DATA / "signals-dev.jsonl"), str(DATA / "channels.yaml")
    code, out = run("parse-eval", corpus, "--channels", channels, "--check")
    assert code == 0
    assert "Exact match per kind" in out
    assert "Kind confusion" in out
    code, out = run("parse-eval", corpus, "--channels", channels, "--json")
    report = json.loads(out)
    assert report["total"] == 69
    assert report["unsafe"] == []
    assert report["open_exact_rate"] >= 0.95
    assert report["followup_exact_rate"] >= 0.9


def test_parse_eval_check_fails_below_goals(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"id": "n", "kind": "noise", "text": "GOLD BUY 2350 SL 2340 TP 2360"}) + "\n", encoding="utf-8"
    )
    code, out = run("parse-eval", str(corpus), "--check", "--worst", "1")
    assert code == 4
    assert "Worst misses" in out


def test_parse_eval_bad_input(tmp_path: Path) -> None:
    assert run("parse-eval", str(tmp_path / "missing.jsonl"))[0] == 2
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("nope\n", encoding="utf-8")
    assert run("parse-eval", str(corpus))[0] == 2
    corpus.write_text(json.dumps({"kind": "noise", "text": "hi"}) + "\n", encoding="utf-8")
    channels = tmp_path / "ch.yaml"
    channels.write_text("- not a mapping\n", encoding="utf-8")
    assert run("parse-eval", str(corpus), "--channels", str(channels))[0] == 2
    channels.write_text("src: {defaults: {symbol: XAUUSD}}\n", encoding="utf-8")
    code, out = run("parse-eval", str(corpus), "--channels", str(channels))
    assert code == 2
    assert "src" in out
    assert run("parse-eval", str(corpus), "--channels", str(tmp_path / "none.yaml"))[0] == 2


def test_real_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "parse", "Close EURUSD buy"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["action"] == {"action": "close", "target": "EURUSD", "side_filter": "buy"}
