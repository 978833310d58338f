"""`ledger savings`: exact figures on hand-made ledgers, against prices written out here.

The expected figures are computed in this file from Anthropic's list prices (USD per million
tokens, as genai-prices 0.2.5 lists them), never from the code under test.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from claude_run.query.savings import savings
from support import reports_records as rr

SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET, HAIKU, OPUS = "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"

# USD per million tokens: input, output, cache read, cache write 5 min, cache write 1 h.
OPUS_41 = {"input": "15", "output": "75", "cache_read": "1.5", "w5m": "18.75", "w1h": "30"}
SONNET_45 = {"input": "3", "output": "15", "cache_read": "0.3", "w5m": "3.75", "w1h": "6"}
# Sonnet 4.5 for a request over 200,000 prompt tokens (all of that request's tokens).
SONNET_45_LONG = {"input": "6", "output": "22.5", "cache_read": "0.6", "w5m": "7.5", "w1h": "12"}
HAIKU_45 = {"input": "1", "output": "5", "cache_read": "0.1", "w5m": "1.25", "w1h": "2"}


def cost(prices: dict[str, str], i: int = 0, o: int = 0, cr: int = 0, w5m: int = 0, w1h: int = 0) -> Decimal:
    counts = {"input": i, "output": o, "cache_read": cr, "w5m": w5m, "w1h": w1h}
    return sum((Decimal(prices[k]) * n for k, n in counts.items()), Decimal(0)) / 1_000_000


def rec(
    i: int, model: str | None, tokens: dict[str, int], cost_usd: float | None, **over: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "v": 1,
        "id": f"01JSAVE{i:04d}",
        "started_at": f"2025-06-0{min(i, 9)}T10:00:00.000Z",
        "mode": "non-interactive",
        "status": "success",
        "model": model,
        "tokens": tokens,
        "cost_usd": cost_usd,
        "cost_source": "claude" if cost_usd is not None else "unpriced",
        "models": {},
        "project": "api",
        "session_id": f"s{i}",
    }
    out.update(over)
    return out


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "savings", *args],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        timeout=60,
    )


# R1: Sonnet, with its per-model 1 h split. R2: Haiku, no per-model map, 5-minute writes only.
# R3: Sonnet + Haiku in one run, each with its own 1 h split.
R1_TOKENS = {"input": 1000, "output": 2000, "cache_read": 10000, "cache_creation": 4000}
R1 = rec(
    1,
    SONNET,
    {**R1_TOKENS, "cache_creation_5m": 3000, "cache_creation_1h": 1000},
    float(cost(SONNET_45, 1000, 2000, 10000, 3000, 1000)),
    models={
        SONNET: {
            **R1_TOKENS,
            "cache_creation_5m": 3000,
            "cache_creation_1h": 1000,
            "cost_usd": float(cost(SONNET_45, 1000, 2000, 10000, 3000, 1000)),
            "cost_source": "claude",
        }
    },
)
R2 = rec(2, HAIKU, {"input": 500, "output": 300, "cache_read": 2000, "cache_creation": 800}, 0.0032)
R3_SONNET = {"input": 100, "output": 10, "cache_read": 0, "cache_creation": 200, "cache_creation_1h": 200}
R3_HAIKU = {"input": 50, "output": 20, "cache_read": 0, "cache_creation": 100, "cache_creation_1h": 0}
R3 = rec(
    3,
    SONNET,
    {"input": 150, "output": 30, "cache_read": 0, "cache_creation": 300, "cache_creation_1h": 200},
    float(cost(SONNET_45, 100, 10, 0, 0, 200) + cost(HAIKU_45, 50, 20, 0, 100, 0)),
    models={
        SONNET: {
            **R3_SONNET,
            "cost_usd": float(cost(SONNET_45, 100, 10, 0, 0, 200)),
            "cost_source": "claude",
        },
        HAIKU: {**R3_HAIKU, "cost_usd": float(cost(HAIKU_45, 50, 20, 0, 100, 0)), "cost_source": "claude"},
    },
)
# A model genai-prices does not know: its usage is shown apart, never as $0.
R4 = rec(4, "acme-llm-9", {"input": 700, "output": 100, "cache_read": 0, "cache_creation": 0}, None)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write(tmp_path / "ledger.jsonl", [R1, R2, R3, R4])


def test_sonnet_and_haiku_runs_repriced_at_opus_41(mixed: Path) -> None:
    report = savings(mixed, OPUS, ("model",), persist=False)
    sonnet_actual = cost(SONNET_45, 1000, 2000, 10000, 3000, 1000) + cost(SONNET_45, 100, 10, 0, 0, 200)
    sonnet_opus = cost(OPUS_41, 1000, 2000, 10000, 3000, 1000) + cost(OPUS_41, 100, 10, 0, 0, 200)
    haiku_actual = Decimal("0.0032") + cost(HAIKU_45, 50, 20, 0, 100, 0)
    haiku_opus = cost(OPUS_41, 500, 300, 2000, 800, 0) + cost(OPUS_41, 50, 20, 0, 100, 0)
    assert sonnet_opus == Decimal("0.27450")  # 0.26625 + 0.00825, worked by hand
    rows = {r.key: r for r in report.rows}
    assert set(rows) == {(SONNET,), (HAIKU,)}
    s, h = rows[(SONNET,)], rows[(HAIKU,)]
    assert (s.runs, h.runs) == (2, 2)
    assert s.baseline == sonnet_opus and h.baseline == haiku_opus
    assert s.actual == pytest.approx(sonnet_actual, abs=Decimal("1e-12"))
    assert h.actual == pytest.approx(haiku_actual, abs=Decimal("1e-12"))
    assert s.saved == pytest.approx(sonnet_opus - sonnet_actual, abs=Decimal("1e-12"))
    assert s.saved_pct == pytest.approx(80.0)  # Sonnet 4.5 is a fifth of Opus 4.1 on every kind
    t = report.total
    assert t.runs == 3 and t.baseline == sonnet_opus + haiku_opus
    assert t.actual == pytest.approx(sonnet_actual + haiku_actual, abs=Decimal("1e-12"))
    assert (t.input, t.output, t.cache_read, t.cache_creation) == (1650, 2330, 12000, 5100)
    # The unpriced run: apart, with its baseline and no actual cost.
    (u,) = report.unpriced_rows
    assert u.key == ("acme-llm-9",) and u.actual is None and u.saved is None
    assert u.baseline == cost(OPUS_41, 700, 100)
    assert report.tier is None  # Opus 4.1 has no long-context tier


def test_cli_json_what_if_and_baseline_read_the_same_figures(mixed: Path) -> None:
    base = run("--baseline", OPUS, "--by", "day", "--format", "json", "--ledger", str(mixed))
    what = run("--what-if", OPUS, "--by", "day", "--format", "json", "--ledger", str(mixed))
    assert base.returncode == 0 and what.returncode == 0, base.stderr + what.stderr
    b, w = orjson.loads(base.stdout), orjson.loads(what.stdout)
    assert b["mode"] == "baseline" and w["mode"] == "what_if"
    assert b["prices_per_mtok"] == {
        "input": 15,
        "output": 75,
        "cache_read": 1.5,
        "cache_write_5m": 18.75,
        "cache_write_1h": 30,
    }
    day1 = b["rows"][0]
    assert day1["key"] == {"day": "2025-06-01"}
    assert Decimal(str(day1["baseline_usd"])) == cost(OPUS_41, 1000, 2000, 10000, 3000, 1000)
    assert Decimal(str(day1["saved_usd"])) == cost(OPUS_41, 1000, 2000, 10000, 3000, 1000) - cost(
        SONNET_45, 1000, 2000, 10000, 3000, 1000
    )
    # --what-if: the same cost on the model, the change counted from the actual cost.
    assert w["total"]["baseline_usd"] == b["total"]["baseline_usd"]
    assert w["total"]["change_usd"] == b["total"]["saved_usd"]
    assert w["unpriced"]["total"]["actual_usd"] is None and w["unpriced"]["total"]["runs"] == 1


def test_cli_table_markdown_csv(mixed: Path) -> None:
    table = run("--baseline", OPUS, "--ledger", str(mixed))
    assert table.returncode == 0, table.stderr
    text = table.stdout.decode()
    assert f"at {OPUS}" in text and "saved %" in text and "80.0%" in text
    assert "without a price" in text and "no long-context tier" in text
    md = run("--what-if", HAIKU, "--format", "markdown", "--title", "What if", "--ledger", str(mixed))
    assert md.stdout.decode().startswith("### What if") and "| **total**" in md.stdout.decode()
    assert "-$" in md.stdout.decode()  # cheaper on Haiku: a negative change, sign before the dollar
    rows = list(
        csv.DictReader(
            io.StringIO(run("--baseline", OPUS, "--format", "csv", "--ledger", str(mixed)).stdout.decode())
        )
    )
    assert [r["priced"] for r in rows] == ["yes", "yes", "yes", "no", "no"]
    assert Decimal(rows[2]["baseline_usd"]) == cost(OPUS_41, 1000, 2000, 10000, 3000, 1000) + cost(
        OPUS_41, 500, 300, 2000, 800
    ) + cost(OPUS_41, 100, 10, 0, 0, 200) + cost(OPUS_41, 50, 20, 0, 100)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "acme-llm-9"], "no list price known for 'acme-llm-9'"),
        ([], "needs one of --baseline MODEL or --what-if MODEL"),
        (["--baseline", OPUS, "--what-if", HAIKU], "needs one of --baseline MODEL or --what-if MODEL"),
        (["--baseline", OPUS, "--by", "agent"], "bad --by 'agent'"),
        (["--baseline", OPUS, "--format", "xml"], "--format"),
    ],
)
def test_unpriced_baseline_and_bad_input_exit_2_in_one_line(
    mixed: Path, args: list[str], message: str
) -> None:
    proc = run(*args, "--ledger", str(mixed))
    assert proc.returncode == 2 and proc.stdout == b""
    err = proc.stderr.decode()
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_long_context_tier_applies_per_request_where_the_record_knows_requests(tmp_path: Path) -> None:
    tokens = {"input": 6000, "output": 1500, "cache_read": 250000, "cache_creation": 2000}
    # One of the run's requests had 5,000 + 240,000 prompt tokens: over 200k, priced at the tier.
    long = {"requests": 1, "input": 5000, "output": 1000, "cache_read": 240000, "cache_creation": 0}
    knows = rec(
        1,
        OPUS,
        tokens,
        1.0,
        attribution={
            "source": "telemetry",
            "complete": True,
            "agents": {},
            "tools": {},
            "long_context": {"over": 200000, "models": {OPUS: long}},
        },
    )
    short = rec(
        2,
        OPUS,
        tokens,
        1.0,
        attribution={
            "source": "telemetry",
            "complete": True,
            "agents": {},
            "tools": {},
            "long_context": {"over": 200000, "models": {}},
        },
    )
    totals_only = rec(3, OPUS, tokens, 1.0)
    path = write(tmp_path / "ledger.jsonl", [knows, short, totals_only])
    report = savings(path, SONNET, ("day",), persist=False)
    rows = {r.key[0]: r for r in report.rows}
    expected_long = cost(SONNET_45, 1000, 500, 10000, 2000) + cost(SONNET_45_LONG, 5000, 1000, 240000)
    assert expected_long == Decimal("0.2175")  # 0.021 + 0.1965, worked by hand
    assert rows["2025-06-01"].baseline == expected_long and rows["2025-06-01"].long_requests == 1
    assert rows["2025-06-02"].baseline == cost(SONNET_45, 6000, 1500, 250000, 2000)
    assert rows["2025-06-03"].baseline == cost(SONNET_45, 6000, 1500, 250000, 2000) == Decimal("0.123")
    assert (report.per_request_runs, report.totals_only_runs) == (2, 1)
    assert report.tier == {
        k: Decimal(v)
        for k, v in zip(
            ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h"),
            SONNET_45_LONG.values(),
            strict=True,
        )
    }
    text = run("--baseline", SONNET, "--ledger", str(path)).stdout.decode()
    assert "2 run(s) were priced per request (1 such request(s) at the tier price)" in text
    assert "1 run(s) record totals only" in text


def test_filters_and_an_empty_selection(mixed: Path) -> None:
    only = savings(mixed, OPUS, ("model",), persist=False, filters=None)
    assert only.total.runs == 3
    from claude_run.query.filters import build_filters
    from claude_run.query.timeparse import resolve_tz

    tz = resolve_tz("UTC")
    narrowed = savings(mixed, OPUS, ("model",), build_filters(tz, model="haiku"), tz, persist=False)
    assert [r.key for r in narrowed.rows] == [(HAIKU,)] and narrowed.total.runs == 2
    none = savings(mixed, OPUS, (), build_filters(tz, since="2030-01-01"), tz, persist=False)
    assert none.rows == [] and none.total.runs == 0 and none.total.baseline == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=rr.ledgers(max_size=12))
def test_savings_by_model_agrees_with_a_brute_force_over_the_fold(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    """Random ledgers (duplicates, supersedes, imports, multi-model records whose parts do not add up,
    unpriced models): each model row's baseline is its counted parts' tokens at Opus 4.1's prices."""
    path = tmp_path / f"l{abs(hash(str(records)))}.jsonl"
    rr.write(path, records)
    report = savings(path, OPUS, ("model",), persist=False)
    want: dict[tuple[str, bool], list[Any]] = {}
    for rec in rr.folded(records):
        for model, priced, toks, cost, _ in rr.pieces(rec, True):
            w = want.setdefault((model, priced), [Fraction(0), Fraction(0)])
            w[0] += cost
            w[1] += Fraction(cost_of(OPUS_41, toks))
    got = {(r.key[0], True): r for r in report.rows} | {(r.key[0], False): r for r in report.unpriced_rows}
    assert set(got) == set(want)
    for key, (actual, baseline) in want.items():
        assert Fraction(got[key].baseline) == baseline, key
        if key[1]:
            assert Fraction(got[key].actual or 0) == actual, key


def cost_of(prices: dict[str, str], toks: dict[str, int]) -> Decimal:
    return cost(prices, toks["input"], toks["output"], toks["cache_read"], toks["cache_creation"])
