"""The report commands end to end (subprocess), their formats, dates, zones and error exits."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from claude_run.errors import UsageError
from claude_run.query.timeparse import Bound, parse_bound, resolve_tz

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(*args: str, ledger: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC}
    extra = ["--ledger", str(ledger)] if ledger is not None else []
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", *args, *extra],
        env=env,
        capture_output=True,
        timeout=60,
    )


def rec(i: int, when: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "id": f"01JTEST{i:04d}",
        "started_at": when,
        "mode": "non-interactive",
        "status": "success",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 100, "output": 50, "cache_read": 900, "cache_creation": 0},
        "cost_usd": 0.1,
        "cost_source": "claude",
        "models": {},
        "project": "api",
        "git": {"branch": "main"},
        "tags": {"team": "core"},
        "session_id": f"sess-{i}",
    }
    base.update(over)
    return base


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    rows = [
        rec(1, "2025-06-01T22:30:00.000Z"),  # 2025-06-02 in Europe/Paris
        rec(2, "2025-06-01T10:00:00.000Z", cost_usd=0.2, tags={"team": "web", "pr": "7"}),
        rec(3, "2025-06-02T10:00:00.000Z", cost_usd=None, cost_source="unpriced", model="gw-model"),
        rec(4, "2025-06-03T10:00:00.000Z", project="web", status="error", cost_usd=0.3),
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_json_is_exact_and_unpriced_apart(ledger: Path) -> None:
    out = run("summary", "--by", "day", "--format", "json", "--tz", "UTC", ledger=ledger)
    assert out.returncode == 0, out.stderr
    data = orjson.loads(out.stdout)
    # 0.1 + 0.2 as the ledger's binary floats, rounded to 1e-12: not 0.30000000000000004
    assert [r["cost_usd"] for r in data["rows"]] == [0.3, 0.3]
    assert data["total"]["cost_usd"] == 0.6 and data["total"]["runs"] == 3
    assert data["unpriced"]["total"]["runs"] == 1 and "cost_usd" not in data["unpriced"]["total"]
    assert data["rows"][0]["cache_hit_ratio"] == pytest.approx(1800 / 2000)


def test_tz_moves_day_boundaries(ledger: Path) -> None:
    utc = orjson.loads(run("summary", "--format", "json", "--tz", "UTC", ledger=ledger).stdout)
    paris = orjson.loads(run("summary", "--format", "json", "--tz", "Europe/Paris", ledger=ledger).stdout)
    assert [r["key"]["day"] for r in utc["rows"]] == ["2025-06-01", "2025-06-03"]
    assert [(r["key"]["day"], r["runs"]) for r in paris["rows"]] == [
        ("2025-06-01", 1),
        ("2025-06-02", 1),
        ("2025-06-03", 1),
    ]


def test_markdown_csv_and_filters(ledger: Path) -> None:
    md = run(
        "summary",
        "--by",
        "tag:team",
        "--format",
        "markdown",
        "--title",
        "Spend",
        "--tz",
        "UTC",
        ledger=ledger,
    )
    text = md.stdout.decode()
    assert text.startswith("### Spend\n") and "| core" in text and "**total**" in text
    assert "Unpriced usage" in text
    out = run("summary", "--by", "project,status", "--format", "csv", "--since", "2025-06-02", ledger=ledger)
    rows = list(csv.DictReader(io.StringIO(out.stdout.decode())))
    assert rows[0]["priced"] == "yes" and {r["project"] for r in rows} >= {"web", "total"}
    web = next(r for r in rows if r["project"] == "web")
    assert web["status"] == "error" and Decimal(web["cost_usd"]) == Decimal("0.3")
    tagged = orjson.loads(run("summary", "--tag", "team=web", "--format", "json", ledger=ledger).stdout)
    assert tagged["total"]["runs"] == 1 and tagged["total"]["cost_usd"] == 0.2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["summary", "--by", "colour"], 2),
        (["summary", "--since", "last-tuesday"], 2),
        (["summary", "--tz", "Mars/Olympus"], 2),
        (["summary", "--format", "xml"], 2),
        (["summary", "--tag", "novalue"], 2),
        (["summary", "--since", "2025-06-03", "--until", "2025-06-01"], 2),
        (["show", "01JTEST000"], 2),
        (["show", "NOPE"], 1),
        (["export", "--format", "parquet"], 2),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(ledger: Path, args: list[str], code: int) -> None:
    out = run(*args, ledger=ledger)
    assert out.returncode == code
    err = out.stderr.decode().strip()
    assert err.startswith("claude-run") and len(err.splitlines()) == 1 and "Traceback" not in err


def test_symlinked_ledger_is_refused(ledger: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(ledger)
    out = run("summary", ledger=link)
    assert out.returncode == 74 and "symbolic link" in out.stderr.decode()


def test_empty_and_missing_ledgers(tmp_path: Path) -> None:
    out = run("summary", "--format", "json", ledger=tmp_path / "none.jsonl")
    assert out.returncode == 74 and b"no ledger at" in out.stderr and out.stdout == b""
    assert list(tmp_path.iterdir()) == []  # no lock, no index for a path that is not there
    (tmp_path / "empty.jsonl").write_bytes(b"")
    out = run("summary", "--format", "json", ledger=tmp_path / "empty.jsonl")
    assert out.returncode == 0 and orjson.loads(out.stdout)["total"]["runs"] == 0
    (tmp_path / "bad.jsonl").write_bytes(b"\x00\xff garbage\n{}\n")
    out = run("summary", ledger=tmp_path / "bad.jsonl")
    assert out.returncode == 0 and "skipped 2 unreadable ledger line(s)" in out.stderr.decode()


def test_session_ids_that_only_look_like_uuids(tmp_path: Path) -> None:
    """A sign, spaces or "_" where a UUID has hex digits once gave a negative hash and a traceback."""
    odd = ["-2345678-abcd-ef01-2345-67890abcdef0", " 2345678-abcd-ef01-2345-67890abcdef0", "1_34567z-ab-"]
    path = tmp_path / "l.jsonl"
    lines = [orjson.dumps(rec(i, "2025-06-01T10:00:00.000Z", session_id=sid)) for i, sid in enumerate(odd)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    path.chmod(0o600)
    for _ in range(2):  # cold, then from the rollup
        out = run("summary", "--format", "json", ledger=path)
        assert out.returncode == 0, out.stderr.decode()[-400:]
        assert orjson.loads(out.stdout)["total"]["runs"] == 3


def test_list_show_export(ledger: Path, tmp_path: Path) -> None:
    listed = orjson.loads(run("list", "-n", "2", "--json", ledger=ledger).stdout)
    assert [r["id"] for r in listed] == ["01JTEST0003", "01JTEST0004"]
    text = run("list", "--project", "web", ledger=ledger).stdout.decode()
    assert "01JTEST0004" in text and "01JTEST0001" not in text
    shown = orjson.loads(run("show", "01jtest0002", ledger=ledger).stdout)
    assert shown["cost_usd"] == 0.2
    target = tmp_path / "out.csv"
    out = run("export", "--format", "csv", "--output", str(target), "--status", "success", ledger=ledger)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 3 and {"input_tokens", "tag:team", "tag:pr", "cost_usd"} <= set(rows[0])
    assert rows[1]["tag:pr"] == "7" and rows[0]["cost_source"] == "claude"
    jl = run("export", "--since", "2025-06-03", ledger=ledger).stdout.splitlines()
    assert [orjson.loads(x)["id"] for x in jl] == ["01JTEST0004"]
    arr = orjson.loads(run("export", "--format", "json", "--model", "gw", ledger=ledger).stdout)
    assert [r["id"] for r in arr] == ["01JTEST0003"]


def test_compare_normalises_per_day(ledger: Path) -> None:
    period = ["--period", "2025-06-03..2025-06-03", "--against", "2025-06-01..2025-06-02"]
    out = run("compare", *period, "--format", "json", "--tz", "UTC", ledger=ledger)
    data = orjson.loads(out.stdout)
    assert data["per_day_normalised"] is True
    m = data["metrics"]
    assert m["runs"]["period"] == 1 and m["runs"]["against"] == 2
    assert m["runs_per_day"]["period"] == 1 and m["runs_per_day"]["against"] == 1
    assert m["cost_usd"]["change"] == 0.0


NOW = datetime(2025, 6, 18, 15, 30, tzinfo=timezone.utc)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "end", "want"),
    [
        ("today", False, "2025-06-18"),
        ("today", True, "2025-06-19"),
        ("yesterday", False, "2025-06-17"),
        ("7d", False, "2025-06-12"),
        ("1d", False, "2025-06-18"),
        ("2w", False, "2025-06-05"),
        ("this-week", False, "2025-06-16"),
        ("last-week", True, "2025-06-16"),
        ("this-month", False, "2025-06-01"),
        ("last-month", False, "2025-05-01"),
        ("last-month", True, "2025-06-01"),
        ("this-quarter", False, "2025-04-01"),
        ("this-quarter", True, "2025-07-01"),
        ("last-quarter", False, "2025-01-01"),
        ("last-quarter", True, "2025-04-01"),
        ("this-year", True, "2026-01-01"),
        ("last-year", False, "2024-01-01"),
        ("last-year", True, "2025-01-01"),
        ("3m", False, "2025-04-01"),
        ("2025-02-03", False, "2025-02-03"),
        ("2025-02-03", True, "2025-02-04"),
    ],
)
def test_relative_dates(text: str, end: bool, want: str) -> None:
    b = parse_bound(text, timezone.utc, end=end, now=NOW)
    assert b.day is not None and datetime.fromordinal(b.day).date().isoformat() == want


def test_instants_and_zones() -> None:
    assert parse_bound("24h", timezone.utc, end=False, now=NOW) == Bound(instant=NOW.timestamp() - 86400)
    tokyo = ZoneInfo("Asia/Tokyo")  # 00:30 on the 19th there: "today" is the 19th
    assert (
        datetime.fromordinal(parse_bound("today", tokyo, end=False, now=NOW.replace(hour=15)).day or 0).day
        == 19
    )
    local = parse_bound("2025-06-01T12:00", tokyo, end=False, now=NOW)
    assert local.instant == datetime(2025, 6, 1, 3, 0, tzinfo=timezone.utc).timestamp()
    assert (
        parse_bound("2025-06-01T12:00Z", tokyo, end=False).instant
        == datetime(2025, 6, 1, 12, tzinfo=timezone.utc).timestamp()
    )
    with pytest.raises(UsageError):
        parse_bound("soon", timezone.utc, end=False)
    with pytest.raises(UsageError):
        resolve_tz("Not/AZone")
    assert resolve_tz("utc") is timezone.utc


# -- ledger sql, parquet export, ledger index ---------------------------------------------------------
def test_sql_over_the_documented_views(ledger: Path) -> None:
    q = "SELECT project, count(*) AS runs, sum(cost_usd) AS usd FROM runs WHERE priced"
    q += " GROUP BY ALL ORDER BY ALL"
    out = run("sql", q, "--format", "json", ledger=ledger)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == [
        {"project": "api", "runs": 2, "usd": 0.3},
        {"project": "web", "runs": 1, "usd": 0.3},
    ]
    table = run("sql", "SELECT id, model FROM parts ORDER BY id", ledger=ledger)
    assert table.returncode == 0 and b"01JTEST0003  gw-model" in table.stdout
    as_csv = run(
        "sql",
        "SELECT count(*) AS n, bool_and(counted) AS all_counted FROM all_records",
        "--format",
        "csv",
        ledger=ledger,
    )
    assert as_csv.stdout == b"n,all_counted\n4,True\n"
    # Text from the ledger never drives the terminal: control characters are shown escaped.
    esc = run("sql", "SELECT chr(27) || '[31mred' AS x", ledger=ledger)
    assert b"\x1b" not in esc.stdout and b"\\x1b[31mred" in esc.stdout


def test_sql_errors_are_one_line_and_exit_2(ledger: Path) -> None:
    for bad in ("SELEKT 1", "SELECT nope FROM runs", "SELECT * FROM no_such_view"):
        out = run("sql", bad, ledger=ledger)
        assert out.returncode == 2, (bad, out.stderr)
        lines = out.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("claude-run: SQL error:"), lines
    assert run("sql", "SELECT 1", "--format", "xml", ledger=ledger).returncode == 2
    # The views only: no file read or written through the query, the ledger least of all.
    before = ledger.read_bytes()
    for escape in (
        f"COPY (SELECT 1) TO '{ledger}'",
        f"SELECT * FROM read_text('{ledger}')",
        "SET enable_external_access = true",
    ):
        assert run("sql", escape, ledger=ledger).returncode == 2, escape
    assert ledger.read_bytes() == before


def test_parquet_export_holds_the_runs_and_their_parts(ledger: Path, tmp_path: Path) -> None:
    import duckdb

    target = tmp_path / "runs.parquet"
    out = run("export", "--format", "parquet", "--output", str(target), ledger=ledger)
    assert out.returncode == 0, out.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    rows = duckdb.sql(
        f"SELECT id, project, cost_usd, len(parts) FROM read_parquet('{target}') ORDER BY id"
    ).fetchall()
    assert [(r[0], r[1], None if r[2] is None else float(r[2]), r[3]) for r in rows] == [
        ("01JTEST0001", "api", 0.1, 1),
        ("01JTEST0002", "api", 0.2, 1),
        ("01JTEST0003", "api", None, 1),
        ("01JTEST0004", "web", 0.3, 1),
    ]
    assert run("export", "--format", "parquet", ledger=ledger).returncode == 2  # needs --output


def test_ledger_index_builds_and_reports_use_it(ledger: Path) -> None:
    out = run("index", ledger=ledger)
    assert out.returncode == 0, out.stderr
    root = ledger.with_name(ledger.name + ".index")
    assert (root / "engine.json").is_file()
    assert {oct(p.stat().st_mode & 0o777) for p in root.glob("runs-*.duckdb")} == {"0o600"}
    before = run("summary", "--format", "json", "--tz", "UTC", ledger=ledger).stdout
    ledger.write_bytes(ledger.read_bytes() + orjson.dumps(rec(5, "2025-06-03T11:00:00.000Z")) + b"\n")
    after = orjson.loads(run("summary", "--format", "json", "--tz", "UTC", ledger=ledger).stdout)
    assert after["total"]["runs"] == orjson.loads(before)["total"]["runs"] + 1  # the tail is read


def test_tag_values_that_are_numbers_sort_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    rows = [
        rec(i, "2025-06-01T10:00:00.000Z", tags={"pr": pr}) for i, pr in enumerate(["10", "9", "x", "100"])
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out = orjson.loads(run("summary", "--by", "tag:pr", "--format", "json", ledger=path).stdout)
    assert [r["key"]["tag:pr"] for r in out["rows"]] == ["9", "10", "100", "x"]


def test_list_shows_the_peak_context(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    rows = [
        rec(
            1,
            "2025-06-01T10:00:00.000Z",
            context={"peak_tokens": 90_000, "window": 200_000, "peak_pct": 45.0},
        )
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out = run("list", ledger=path)
    assert out.returncode == 0 and b" ctx " in out.stdout and b" 45% " in out.stdout


def test_long_labels_are_shortened_in_tables_not_in_json(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    branch = "feature/" + "x" * 200 + "-1234"
    rows = [rec(1, "2025-06-01T10:00:00.000Z", git={"branch": branch})]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    table = run("summary", "--by", "branch", ledger=path).stdout.decode()
    assert max(len(line) for line in table.splitlines()) < 160 and "…" in table and "-1234" in table
    data = orjson.loads(run("summary", "--by", "branch", "--format", "json", ledger=path).stdout)
    assert data["rows"][0]["key"]["branch"] == branch
