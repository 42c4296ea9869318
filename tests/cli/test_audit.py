"""``signalos audit verify`` and ``signalos audit export`` on real SQLite files and JSON-lines exports."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.main import cli
from signalos_core.audit import AuditEntry, SQLiteAuditStore, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def entry(index: int, chain: str = "acc-1") -> AuditEntry:
    denied = index % 2 == 1
    return AuditEntry(
        kind="decision",
        chain_id=chain,
        account_id=chain,
        outcome="denied" if denied else "allowed",
        input={"state": {"equity": Decimal(95000 - index)}},
        rules=[{"rule_id": "ftmo.max_daily_loss" if denied else "ftmo.max_loss", "value": Decimal(95000 - index)}],
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with SQLiteAuditStore(path) as store:
        for index in range(6):
            store.append(entry(index, "acc-1" if index < 4 else "acc-2"))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_verify_intact_database(db: Path) -> None:
    code, out, _ = run("audit", "verify", str(db))
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["format"] == "sqlite"
    assert [(c["chain_id"], c["records"], c["ok"]) for c in report["chains"]] == [
        ("acc-1", 4, True),
        ("acc-2", 2, True),
    ]


@pytest.mark.parametrize(
    ("statement", "kind", "position"),
    [
        ("UPDATE audit_records SET outcome = 'allowed' WHERE chain_id = 'acc-1' AND sequence = 1", "edited", 1),
        ("DELETE FROM audit_records WHERE chain_id = 'acc-1' AND sequence = 2", "deleted", 2),
        ("DELETE FROM audit_records WHERE chain_id = 'acc-1' AND sequence = 3", "deleted", 3),
        (
            "INSERT INTO audit_records (format, chain_id, sequence, recorded_at, kind, rules, hash_alg, prev_hash, hash)"
            " SELECT format, chain_id, 4, recorded_at, kind, rules, hash_alg, hash, hash FROM audit_records"
            " WHERE chain_id = 'acc-1' AND sequence = 3",
            "inserted",
            4,
        ),
    ],
)
def test_verify_tampered_database_exits_4_and_locates(db: Path, statement: str, kind: str, position: int) -> None:
    connection = sqlite3.connect(db)
    connection.execute(statement)
    connection.commit()
    connection.close()
    code, out, _ = run("audit", "verify", str(db))
    assert code == 4
    report = json.loads(out)
    assert report["ok"] is False
    chain = report["chains"][0]
    assert chain["chain_id"] == "acc-1"
    assert {"kind": kind, "position": position} in [
        {"kind": i["kind"], "position": i["position"]} for i in chain["issues"]
    ]
    assert report["chains"][1]["ok"] is True  # the other chain is untouched


def test_verify_one_chain_and_anchor(db: Path) -> None:
    code, out, _ = run("audit", "verify", str(db), "--chain", "acc-2")
    assert code == 0
    assert [c["chain_id"] for c in json.loads(out)["chains"]] == ["acc-2"]
    head = json.loads(out)["chains"][0]["head"]
    code, _, _ = run("audit", "verify", str(db), "--chain", "acc-2", "--expect-head", f"1:{head['hash']}")
    assert code == 0
    code, out, _ = run("audit", "verify", str(db), "--expect-head", f"acc-2=2:{head['hash']}")
    assert code == 4
    assert json.loads(out)["chains"][1]["issues"][0]["kind"] == "deleted"


def test_verify_jsonl_export_and_its_tampering(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "audit.jsonl"
    code, _, err = run("audit", "export", str(db), "--format", "jsonl", "--output", str(export))
    assert code == 0
    assert json.loads(err) == {"exported": 6, "format": "jsonl", "output": str(export)}
    code, out, _ = run("audit", "verify", str(export))
    assert code == 0
    assert json.loads(out)["format"] == "jsonl"

    lines = export.read_text(encoding="utf-8").splitlines()
    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    export.write_text("\n".join(swapped) + "\n", encoding="utf-8")
    code, out, _ = run("audit", "verify", str(export), "--chain", "acc-1")
    assert code == 4
    issues = json.loads(out)["chains"][0]["issues"]
    assert [i["kind"] for i in issues] == ["reordered"]
    assert issues[0]["position"] in (1, 2)

    edited = [lines[0].replace('"allowed"', '"denied"'), *lines[1:]]
    export.write_text("\n".join(edited) + "\n", encoding="utf-8")
    code, out, _ = run("audit", "verify", str(export))
    assert code == 4
    assert json.loads(out)["chains"][0]["issues"][0] == {
        "kind": "edited",
        "position": 0,
        "sequence": 0,
        "detail": "stored hash does not match the content",
    }
    code, out, _ = run("audit", "verify", str(export), "--chain", "nope")
    assert code == 0
    assert json.loads(out)["chains"][0]["records"] == 0


def test_keyed_chain_needs_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    path = tmp_path / "keyed.db"
    with SQLiteAuditStore(path, key=b"0123456789abcdef0123456789abcdef") as store:
        store.append(entry(0))
    assert run("audit", "verify", str(path), "--key-file", str(key_file))[0] == 0
    code, _, err = run("audit", "verify", str(path))
    assert code == 2
    assert "key" in json.loads(err)["message"]
    key_file.write_bytes(b"short")
    assert run("audit", "verify", str(path), "--key-file", str(key_file))[0] == 2
    assert run("audit", "verify", str(path), "--key-file", str(tmp_path / "missing.key"))[0] == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda p: None,  # missing file
        lambda p: p.write_text("hello\n", encoding="utf-8"),  # not JSON lines
        lambda p: p.write_bytes(b"\xff\xfe\x00garbage"),  # not text
        lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),  # not an audit db
    ],
)
def test_bad_input_exits_2(tmp_path: Path, make: object) -> None:
    path = tmp_path / "input"
    make(path)  # type: ignore[operator]
    code, out, err = run("audit", "verify", str(path))
    assert code == 2
    assert out == ""
    assert json.loads(err)["error"] == "bad_input"
    assert run("audit", "export", str(path))[0] == 2


def test_bad_expect_head_exits_2(db: Path) -> None:
    assert run("audit", "verify", str(db), "--expect-head", "3:abc")[0] == 2
    assert run("audit", "verify", str(db), "--expect-head", f"x:{'a' * 64}")[0] == 2


def test_export_csv_with_filters(db: Path) -> None:
    code, out, _ = run("audit", "export", str(db), "--format", "csv", "--outcome", "denied", "--account", "acc-1")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["chain_id"], r["sequence"]) for r in rows] == [("acc-1", "1"), ("acc-1", "3")]
    code, out, _ = run("audit", "export", str(db), "--rule", "ftmo.max_loss", "--since", "2000-01-01T00:00:00+00:00")
    assert code == 0
    assert [json.loads(line)["sequence"] for line in out.splitlines()] == [0, 2, 0]
    code, out, _ = run("audit", "export", str(db), "--until", "2000-01-01T00:00:00Z", "--kind", "decision")
    assert (code, out) == (0, "")


def test_export_from_jsonl(db: Path, tmp_path: Path) -> None:
    export = tmp_path / "all.jsonl"
    with SQLiteAuditStore(db, readonly=True) as store, export.open("w", encoding="utf-8") as handle:
        write_jsonl([r for c in store.chains() for r in store.scan(c)], handle)  # type: ignore[misc]
    code, out, _ = run("audit", "export", str(export), "--format", "csv", "--chain", "acc-2")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2
    export.write_text(export.read_text(encoding="utf-8") + '{"sequence": 9}\n', encoding="utf-8")
    code, _, err = run("audit", "export", str(export))
    assert code == 2
    assert "line 7" in json.loads(err)["message"]


def test_help_texts() -> None:
    for args in (["audit", "--help"], ["audit", "verify", "--help"], ["audit", "export", "--help"]):
        code, out, _ = run(*args)
        assert code == 0
        assert "audit" in out.lower()
    assert "Exit 0 intact, 4 tampered, 2 bad input" in " ".join(run("audit", "verify", "--help")[1].split())


def test_real_process_exit_codes(db: Path) -> None:
    command = [sys.executable, "-c", "from service.cli.main import main; main()", "audit", "verify", str(db)]
    ok = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603 - our own interpreter
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    connection = sqlite3.connect(db)
    connection.execute("UPDATE audit_records SET account_id = 'acc-9' WHERE chain_id = 'acc-2' AND sequence = 0")
    connection.commit()
    connection.close()
    bad = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603 - our own interpreter
    assert bad.returncode == 4
    assert json.loads(bad.stdout)["chains"][1]["issues"][0]["kind"] == "edited"


def test_verify_needs_a_file_or_a_database_url() -> None:
    from click.testing import CliRunner

    from service.cli.main import cli

    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 2
    broken = CliRunner().invoke(cli, ["audit", "verify", "--database-url", "sqlite+aiosqlite:////nonexistent/dir/x.db"])
    assert broken.exit_code == 2
