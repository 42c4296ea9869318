"""Audit log queries, exports, verification with SQL tampering, dry runs and reports (both databases)."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url

from service.compliance.models import audit_records
from service.db.engine import create_engine
from signalos_core.audit import CSV_COLUMNS, read_jsonl, verify_chains
from tests.service.compliance.conftest import ACME_YAML, World, equity, now_iso, version_of

ROOT = Path(__file__).resolve().parents[3]
SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def _trade_day(world: World) -> str:
    account_id = world.acme_account()
    assert world.check(account_id, size="2", id="a").json()["allowed"] is True
    assert world.check(account_id, size="4", id="b", at=now_iso(1)).json()["allowed"] is False
    assert world.feed(account_id, equity("96000", 2), equity("94500", 3)).status_code == 200
    return account_id


def _sql(db_url: str, statement: Any) -> None:
    async def run() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_query_filters_and_pagination(world: World) -> None:
    client = world.client
    account_id = _trade_day(world)
    url = f"/api/trading-accounts/{account_id}/audit"
    headers = world.trader["headers"]
    everything = client.get(url, headers=headers).json()
    kinds = [r["kind"] for r in everything["items"]]
    assert kinds == ["mode_change", "decision", "decision", "enforcement", "enforcement"]
    assert everything["next_cursor"] is None
    assert [r["sequence"] for r in everything["items"]] == list(range(5))
    denied = client.get(url, params={"outcome": "deny"}, headers=headers).json()["items"]
    assert [(r["kind"], r["rules"][0]["rule_id"]) for r in denied] == [("decision", "acme.max_lots")]
    by_rule = client.get(url, params={"rule_id": "acme.max_daily_loss"}, headers=headers).json()["items"]
    assert [r["outcome"] for r in by_rule] == ["warn", "lock"]
    decisions = client.get(url, params={"kind": "decision", "limit": 1}, headers=headers).json()
    assert len(decisions["items"]) == 1
    assert decisions["next_cursor"] is not None
    second = client.get(
        url, params={"kind": "decision", "limit": 1, "cursor": decisions["next_cursor"]}, headers=headers
    )
    assert [r["outcome"] for r in second.json()["items"]] == ["deny"]
    newest = client.get(url, params={"newest_first": "true", "limit": 2}, headers=headers).json()["items"]
    assert [r["sequence"] for r in newest] == [4, 3]
    first_time = everything["items"][0]["recorded_at"]
    window = client.get(url, params={"until": first_time}, headers=headers).json()["items"]
    assert window == []
    since = client.get(url, params={"since": first_time}, headers=headers).json()["items"]
    assert len(since) == 5
    naive = client.get(url, params={"since": "2026-01-01T00:00:00"}, headers=headers)
    assert naive.status_code == 400
    assert client.get(url, params={"cursor": "abc"}, headers=headers).status_code == 400
    assert client.get(url, headers=world.other_trader["headers"]).status_code == 404
    assert client.get(url, headers=world.other_admin["headers"]).status_code == 404


def test_export_jsonl_and_csv_verify_offline(world: World) -> None:
    client = world.client
    account_id = _trade_day(world)
    base = f"/api/trading-accounts/{account_id}/audit/export"
    jsonl = client.get(base, headers=world.firm_admin["headers"])
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    records = list(read_jsonl(io.StringIO(jsonl.text)))
    assert len(records) == 5
    [report] = verify_chains(records)
    assert report.ok
    as_csv = client.get(base, params={"format": "csv", "kind": "decision"}, headers=world.firm_admin["headers"])
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert tuple(rows[0]) == tuple(CSV_COLUMNS)
    assert len(rows) == 3
    assert client.get(base, params={"format": "xml"}, headers=world.trader["headers"]).status_code == 400
    assert client.get(base, headers=world.other_trader["headers"]).status_code == 404


def test_sql_tampering_is_detected_and_located(world: World, db_url: str) -> None:
    client = world.client
    account_id = _trade_day(world)
    verify_url = f"/api/trading-accounts/{account_id}/audit/verify"
    intact = client.get(verify_url, headers=world.trader["headers"]).json()
    assert intact["ok"] is True
    assert intact["chains"][0]["records"] == 5
    chain = f"account:{account_id}"
    # Turn the denied decision (sequence 2) into an allowed one behind the service's back.
    _sql(
        db_url,
        update(audit_records)
        .where(audit_records.c.chain_id == chain, audit_records.c.sequence == 2)
        .values(outcome="allow"),
    )
    edited = client.get(verify_url, headers=world.trader["headers"]).json()
    assert edited["ok"] is False
    issues = edited["chains"][0]["issues"]
    assert {"kind": "edited", "sequence": 2} in [{"kind": i["kind"], "sequence": i["sequence"]} for i in issues]
    # A firm-wide verification flags the same chain.
    firm = client.get(f"/api/firms/{world.firm_id}/compliance/audit/verify", headers=world.firm_admin["headers"]).json()
    assert firm["ok"] is False
    assert (
        client.get(
            f"/api/firms/{world.firm_id}/compliance/audit/verify", headers=world.other_admin["headers"]
        ).status_code
        == 404
    )
    # Deleting a record is located as well.
    _sql(db_url, delete(audit_records).where(audit_records.c.chain_id == chain, audit_records.c.sequence == 3))
    deleted = client.get(verify_url, headers=world.trader["headers"]).json()
    issues = deleted["chains"][0]["issues"]
    gap = next(i for i in issues if i["kind"] == "deleted")
    assert "sequence 3 missing" in gap["detail"]
    assert gap["position"] == 3  # located right where the record is gone
    assert ("edited", 2) in {(i["kind"], i["sequence"]) for i in issues}
    # The query API keeps answering around a mangled row; verification names it.
    _sql(
        db_url,
        text("UPDATE audit_records SET rules = '{broken' WHERE sequence = 4 AND chain_id = :c").bindparams(c=chain),
    )
    page = client.get(f"/api/trading-accounts/{account_id}/audit", headers=world.trader["headers"])
    assert page.status_code == 200
    mangled = client.get(verify_url, headers=world.trader["headers"]).json()
    assert "malformed" in {i["kind"] for i in mangled["chains"][0]["issues"]}


def test_cli_verifies_the_service_database(world: World, db_url: str) -> None:
    account_id = _trade_day(world)
    base = [sys.executable, "-c", "from service.cli.main import main; main()", "audit", "verify"]
    # SQLite: the file itself, as any audit store; both databases: --database-url through the service's tables.
    path = make_url(db_url).database
    command = [*base, path] if db_url.startswith("sqlite") and path else [*base, "--database-url", db_url]
    ok = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603 - our own CLI, fixed arguments
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    by_url = [*base, "--database-url", db_url]
    via_url = subprocess.run(by_url, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603 - our own CLI, fixed arguments
    assert via_url.returncode == 0, via_url.stdout + via_url.stderr
    chain = f"account:{account_id}"
    _sql(
        db_url,
        update(audit_records)
        .where(audit_records.c.chain_id == chain, audit_records.c.sequence == 1)
        .values(outcome="deny"),
    )
    bad = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603 - our own CLI, fixed arguments
    assert bad.returncode == 4
    assert subprocess.run(by_url, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False).returncode == 4  # noqa: S603 - our own CLI, fixed arguments
    report = json.loads(bad.stdout)
    [broken] = [c for c in report["chains"] if c["chain_id"] == chain]
    assert broken["issues"][0]["sequence"] == 1


def test_dry_run_reports_decisions_that_would_change(world: World) -> None:
    client = world.client
    account_id = _trade_day(world)
    stricter = version_of(
        ACME_YAML, "2", **{"params: {max: 5}": "params: {max: 1}", "params: {pct: 5}": "params: {pct: 7}"}
    )
    assert world.upload(stricter).status_code == 201
    url = f"/api/trading-accounts/{account_id}/dry-run"
    body = {"source": "firm", "profile_id": "acme-challenge", "version": "2", "days": 7}
    result = client.post(url, json=body, headers=world.firm_admin["headers"])
    assert result.status_code == 200, result.text
    report = result.json()
    assert report["version"] == "2"
    assert report["considered"] == report["replayed"] == 4
    changed = {c["sequence"]: c for c in report["changed"]}
    assert changed[1]["outcome_before"] == "allow"
    assert changed[1]["outcome_after"] == "deny"
    assert changed[1]["rules_added"] == ["acme.max_lots"]
    # 94,500 no longer breaks a 7% daily limit: the lock would not have happened.
    assert changed[4]["outcome_before"] == "lock"
    assert changed[4]["outcome_after"] in ("allow", "warn")
    same = client.post(url, json={**body, "version": "1"}, headers=world.firm_admin["headers"]).json()
    assert same["changed"] == []
    assert same["unchanged"] == 4
    refused = client.post(url, json=body, headers=world.trader["headers"])
    assert refused.status_code == 403
    assert client.post(url, json=body, headers=world.other_admin["headers"]).status_code == 404
    assert client.post(url, json={**body, "days": 0}, headers=world.firm_admin["headers"]).status_code == 400


def test_daily_report_json_and_html_with_svg_chart(world: World) -> None:
    client = world.client
    account_id = _trade_day(world)
    report = client.get(f"/api/trading-accounts/{account_id}/reports/daily", headers=world.trader["headers"])
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["timezone"] == "Europe/Prague"
    assert [Decimal(p["equity"]) for p in body["points"]] == [96000, 94500]
    assert all(Decimal(p["daily_floor"]) == 95000 and Decimal(p["max_floor"]) == 90000 for p in body["points"])
    assert [v["rule_id"] for v in body["violations"]] == ["acme.max_lots", "acme.max_daily_loss"]
    assert [w["rule_id"] for w in body["warnings"]] == ["acme.max_daily_loss"]
    assert body["objectives"][0]["rule_id"] == "acme.profit_target"
    assert body["decisions"] == {
        "mode_change:switched": 1,
        "decision:allow": 1,
        "decision:deny": 1,
        "enforcement:warn": 1,
        "enforcement:lock": 1,
    }
    page = client.get(f"/api/trading-accounts/{account_id}/reports/daily.html", headers=world.trader["headers"])
    assert page.headers["content-type"].startswith("text/html")
    root = ET.fromstring(page.text.split("\n", 1)[1])  # noqa: S314 - our own page; well-formed XHTML after the doctype
    assert root.tag == f"{XHTML}html"
    svg = root.find(f".//{SVG}svg")
    assert svg is not None
    series = {line.get("data-series"): line.get("points", "") for line in svg.iter(f"{SVG}polyline")}
    assert set(series) == {"equity", "daily_floor", "max_floor"}
    equity_points = [tuple(map(float, pair.split(","))) for pair in series["equity"].split()]
    assert len(equity_points) == 2
    width, height = float(svg.get("width", 0)), float(svg.get("height", 0))
    assert all(0 <= x <= width and 0 <= y <= height for x, y in equity_points)
    assert equity_points[1][1] > equity_points[0][1]  # lower equity is drawn lower
    texts = "".join(root.itertext())
    assert "acme.max_lots" in texts
    assert "Violations" in texts
    empty_day = client.get(
        f"/api/trading-accounts/{account_id}/reports/daily.html",
        params={"day": "2026-01-05"},
        headers=world.trader["headers"],
    )
    assert "No equity readings" in empty_day.text
    ET.fromstring(empty_day.text.split("\n", 1)[1])  # noqa: S314 - our own page
    assert (
        client.get(
            f"/api/trading-accounts/{account_id}/reports/daily", headers=world.other_trader["headers"]
        ).status_code
        == 404
    )


def test_firm_report_aggregates_breaches_locks_and_near_limits(world: World) -> None:
    client = world.client
    breached = world.acme_account()
    locked = world.funded_account()
    near = world.funded_account()
    calm = world.funded_account()
    for account_id in (locked, near, calm):
        assert world.set_mode(account_id).status_code == 200
    assert world.feed(breached, equity("89000")).status_code == 200
    assert world.feed(locked, equity("94900")).status_code == 200
    assert world.feed(near, equity("95900")).status_code == 200
    assert world.feed(calm, equity("100500")).status_code == 200
    url = f"/api/firms/{world.firm_id}/compliance/report"
    report = client.get(url, headers=world.firm_admin["headers"]).json()
    assert report["accounts"] == 4
    assert [a["account_id"] for a in report["breached"]] == [breached]
    assert [a["account_id"] for a in report["locked"]] == [locked]
    near_ids = {a["account_id"] for a in report["near_limit"]}
    assert near in near_ids
    assert calm not in near_ids
    assert client.get(url, headers=world.other_admin["headers"]).status_code == 404
    assert client.get(url, headers=world.trader["headers"]).status_code == 404
    assert client.get(url, params={"near": "2"}, headers=world.firm_admin["headers"]).status_code == 400
    stricter = client.get(url, params={"near": "0.95"}, headers=world.platform["headers"]).json()
    assert near not in {a["account_id"] for a in stricter["near_limit"]}


def test_daily_report_renders_in_headless_chromium(world: World, tmp_path: Path, db_url: str) -> None:
    """When Debian's `chromium` is installed, the page is laid out by a real browser and the chart has extent."""
    if not db_url.startswith("sqlite"):
        pytest.skip("rendering does not depend on the database; once (on SQLite) is enough")
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    account_id = _trade_day(world)
    page = world.client.get(f"/api/trading-accounts/{account_id}/reports/daily.html", headers=world.trader["headers"])
    # The probe runs after layout: it measures each series' bounding box in the rendered SVG.
    probe = (
        "<script>const out = {}; for (const line of document.querySelectorAll('polyline')) {"
        " const box = line.getBBox(); out[line.dataset.series] = [box.width, box.height]; }"
        " document.body.setAttribute('data-boxes', JSON.stringify(out));</script>"
    )
    html_file = tmp_path / "report.html"
    html_file.write_text(page.text.replace("</body>", probe + "</body>"), encoding="utf-8")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", html_file.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout  # noqa: S603 - fixed arguments
    boxes = json.loads(html.unescape(dom.split('data-boxes="', 1)[1].split('"', 1)[0]))
    assert set(boxes) == {"equity", "daily_floor", "max_floor"}
    # The two readings are a second apart (same x at this scale) but 1,500 apart in equity: a vertical segment.
    assert boxes["equity"][1] > 20
    screenshot = tmp_path / "report.png"
    subprocess.run(  # noqa: S603 - fixed arguments
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={screenshot}",
         "--window-size=900,1200", html_file.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
