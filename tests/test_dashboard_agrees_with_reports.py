"""The dashboard's numbers are `ledger summary`'s numbers, and both are the README's rule.

Issue 12: the dashboard once kept its own fold and its own multi-model split and said $12.50 over
5 runs where `ledger summary` said $36.75 over 7. Both now answer from the one engine
(`claude_run.query`); these tests hold the dashboard's totals and groups to
`query.summary.aggregate` and to the brute-force oracle (`support.reports_records`) on generated
ledgers full of the fold's corner cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.dashboard.data import NONE_LABEL, Filters, build_view
from claude_run.query import summary as query
from support import reports_records as rr

SRC = Path(__file__).resolve().parents[1] / "src"
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _utc() -> Iterator[None]:
    # The dashboard's days are local days; pin the zone so the oracle's days are UTC days.
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@st.composite
def odd_ledgers(draw: Any) -> list[dict[str, Any]]:
    """The oracle's ledgers, with `supersedes` also naming later records, the record itself and
    each other (cycles), and some lines written twice (ledgers joined with `cat`)."""
    records = draw(rr.ledgers(24))
    ids = [r["id"] for r in records]
    for r in records:
        if ids and draw(st.integers(0, 3)) == 0:
            r["supersedes"] = draw(st.sampled_from([*ids, r["id"], "NOPE"]))
    if len(records) >= 2 and draw(st.booleans()):  # a cycle of two
        a, b = draw(st.sampled_from(records)), draw(st.sampled_from(records))
        a["supersedes"], b["supersedes"] = b["id"], a["id"]
    out = list(records)
    for r in records:
        if draw(st.integers(0, 9)) == 0:
            out.append(dict(r, cost_usd=7.0))  # a duplicate line: its first copy counts
    return out


def _oracle_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    b = rr.brute(records, (), timezone.utc)
    p = b.get((True, ("__total__",)), [0, 0, 0, 0, 0, Fraction(0)])
    u = b.get((False, ("__total__",)), [0, 0, 0, 0, 0, Fraction(0)])
    return {
        "runs": p[0] + u[0],
        "tokens": sum(p[1:5]) + sum(u[1:5]),
        "cost": rr.usd(p[5]),
        "unpriced_runs": u[0],
        "unpriced_tokens": sum(u[1:5]),
    }


def _report_totals(report: query.Report) -> dict[str, Any]:
    t, u = report.total, report.unpriced_total
    return {
        "runs": t.runs + u.runs,
        "tokens": t.total_tokens + u.total_tokens,
        "cost": t.cost,
        "unpriced_runs": u.runs,
        "unpriced_tokens": u.total_tokens,
    }


def _dash_totals(t: Any) -> dict[str, Any]:
    return {
        "runs": t["runs"],
        "tokens": t["tokens"],
        "cost": Decimal(repr(t["cost_usd"])),
        "unpriced_runs": t["unpriced_runs"],
        "unpriced_tokens": t["unpriced_tokens"],
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal, costs within a micro-dollar (the dashboard carries them as floats)."""
    return {k: v for k, v in a.items() if k != "cost"} == {k: v for k, v in b.items() if k != "cost"} and abs(
        Decimal(a["cost"]) - Decimal(b["cost"])
    ) < Decimal("1e-6")


def _groups(view_groups: list[Any]) -> dict[str, dict[str, Any]]:
    return {g["key"]: _dash_totals(g["totals"]) for g in view_groups}


def _report_groups(report: query.Report) -> dict[str, dict[str, Any]]:
    out = {}
    for row in report.rows:
        t, u = row.priced, row.unpriced
        out[" · ".join(row.key)] = {
            "runs": t.runs + u.runs,
            "tokens": t.total_tokens + u.total_tokens,
            "cost": t.cost,
            "unpriced_runs": u.runs,
            "unpriced_tokens": u.total_tokens,
        }
    return out


def check(ledger: Path, records: list[dict[str, Any]]) -> None:
    view = build_view(ledger, Filters(period="all"), latest=1000)
    mine = _dash_totals(view["totals"])
    assert _same(mine, _oracle_totals(records)), (mine, _oracle_totals(records))
    for dims, shown in (
        (("project",), view["by_project"]),
        (("project", "branch"), view["by_branch"]),  # a branch is labelled with its project
        (("status",), view["by_status"]),
        (("mode",), view["by_mode"]),
    ):
        report = query.aggregate(ledger, dims, None, timezone.utc)
        assert _same(mine, _report_totals(report))
        theirs = _report_groups(report)
        got = _groups(shown)
        assert set(got) == set(theirs), dims  # at most 12 values: no "N others" bar here
        for key, figures in got.items():
            assert _same(figures, theirs[key]), (dims, key, figures, theirs[key])
    # Cache savings: the same rule (priced usage, per model's rate; unknown when no rate applies).
    report = query.aggregate(ledger, ("project",), None, timezone.utc)
    savings, shown_savings = report.total.savings, view["totals"]["cache_savings_usd"]
    assert (shown_savings is None) == (savings is None)
    if savings is not None and shown_savings is not None:
        assert abs(Decimal(repr(shown_savings)) - savings) < Decimal("1e-9")
    assert view["totals"]["unpriced_savings_tokens"] == report.total.savings_unpriced_tokens
    # The chart by day and model counts model parts, as `ledger summary --by day,model` does.
    report = query.aggregate(ledger, ("day", "model"), None, timezone.utc)
    theirs = {}
    for row in report.rows:
        t, u = row.priced, row.unpriced
        theirs[row.key] = (t.runs + u.runs, t.total_tokens + u.total_tokens, t.cost, u.total_tokens)
    got = {
        (r["day"], r["model"]): (r["runs"], r["tokens"], Decimal(repr(r["cost_usd"])), r["unpriced_tokens"])
        for r in view["by_day_by_model"]
    }
    assert set(got) == set(theirs)
    for key, (runs, tokens, cost, unpriced) in got.items():
        want = theirs[key]
        assert (runs, tokens, unpriced) == (want[0], want[1], want[3]), key
        assert abs(cost - want[2]) < Decimal("1e-6"), key
    # The tag chart: one bar per KEY=VALUE, the figures of `--by tag:KEY` (runs without the tag
    # have no bar).
    for key in ("team", "env"):
        report = query.aggregate(ledger, (f"tag:{key}",), None, timezone.utc)
        theirs = {f"{key}={k}": v for k, v in _report_groups(report).items() if k != NONE_LABEL}
        got = {k: v for k, v in _groups(view["by_tag"]).items() if k.startswith(f"{key}=")}
        assert set(got) == set(theirs)
        for k, figures in got.items():
            assert _same(figures, theirs[k]), (k, figures, theirs[k])
    # Partly priced runs: priced records with a part of a model with no known price; their tokens
    # are the by-model unpriced parts of priced records (`ledger summary --by model`'s pieces).
    partial_runs, partial_tokens = 0, 0
    for rec in rr.folded(records):
        if rec.get("started_at") is None or rec.get("cost_source") == "unpriced":
            continue
        if not isinstance(rec.get("cost_usd"), (int, float)):
            continue
        unpriced = [sum(toks.values()) for _, priced, toks, _, _ in rr.pieces(rec, True) if not priced]
        partial_runs += bool(unpriced)
        partial_tokens += sum(unpriced)
    assert (view["totals"]["partial_runs"], view["totals"]["partial_tokens"]) == (
        partial_runs,
        partial_tokens,
    )
    # The latest-runs table lists exactly the counted, dated records.
    counted = {r["id"] for r in rr.folded(records) if r.get("started_at")}
    assert {r["id"] for r in view["latest_runs"]} == counted


@FAST
@given(records=odd_ledgers())
def test_dashboard_equals_summary_and_the_oracle(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        rr.write(ledger, records, garbage=True)
        check(ledger, records)
        view = build_view(ledger, Filters(period="all"))
        assert view["read"]["bad_lines"] == (1 if len(records) > 1 else 0)


@FAST
@given(records=odd_ledgers(), model=st.sampled_from(rr.MODELS))
def test_model_filter_counts_that_models_parts(records: list[dict[str, Any]], model: str) -> None:
    """Under the model filter (an exact name) the totals are that model's parts (`--model`)."""
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        rr.write(ledger, records)
        view = build_view(ledger, Filters(period="all", model=model))
        b = rr.brute(records, (), timezone.utc, model=model)  # every generated name is unique as text
        p = b.get((True, ("__total__",)), [0, 0, 0, 0, 0, Fraction(0)])
        u = b.get((False, ("__total__",)), [0, 0, 0, 0, 0, Fraction(0)])
        want = {
            "runs": p[0] + u[0],
            "tokens": sum(p[1:5]) + sum(u[1:5]),
            "cost": rr.usd(p[5]),
            "unpriced_runs": u[0],
            "unpriced_tokens": sum(u[1:5]),
        }
        assert _same(_dash_totals(view["totals"]), want)


# -- the issue's example -----------------------------------------------------------------------


def _rec(i: int, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": 1,
        "id": f"01K{i:023d}",
        "started_at": f"2026-03-0{1 + i % 5}T10:00:00.000Z",
        "mode": "non-interactive",
        "source": "run",
        "status": "success",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 100, "output": 10, "cache_read": 0, "cache_creation": 0},
        "cost_usd": 1.0,
        "cost_source": "claude",
        "models": {},
        "project": "demo",
    }
    rec.update(kw)
    return rec


def issue_ledger() -> list[dict[str, Any]]:
    """Nine records: an import of a tracked session, a telemetry rewrite, a `supersedes` naming a
    later record, one naming itself, and a two-model run whose parts do not add up to its cost."""
    two_models = {
        "claude-sonnet-4-5": {
            "input": 60,
            "output": 5,
            "cache_read": 0,
            "cache_creation": 0,
            "cost_usd": 4.0,
        },
        "claude-haiku-4-5": {"input": 20, "output": 2, "cache_read": 0, "cache_creation": 0, "cost_usd": 1.5},
    }
    return [
        _rec(1, session_id="s-tracked", cost_usd=2.25),  # a tracked run
        _rec(2, mode="imported", source="import", session_id="s-tracked", cost_usd=2.25),  # its import
        _rec(3, mode="telemetry", source="telemetry", session_id="s-tel", cost_usd=3.0),
        _rec(
            4,
            mode="telemetry",
            source="telemetry",
            session_id="s-tel",
            cost_usd=3.5,
            supersedes=f"01K{3:023d}",
        ),
        _rec(5, cost_usd=8.0, supersedes=f"01K{6:023d}"),  # names a later record: replaces nothing
        _rec(6, cost_usd=9.0),
        _rec(7, cost_usd=10.0, supersedes=f"01K{7:023d}"),  # names itself: replaces nothing
        _rec(8, cost_usd=7.0, models=two_models),  # parts: 5.50 of 7.00; the residual counts
        _rec(9, cost_usd=None, cost_source="unpriced", model="mystery-model"),  # unpriced, never $0
    ]


def test_the_issue_example_dashboard_and_summary_agree(tmp_path: Path) -> None:
    records = issue_ledger()
    ledger = tmp_path / "ledger.jsonl"
    rr.write(ledger, records)
    # Counted: 1, 4 (3 replaced), 5, 6, 7, 8, 9 (2 is an import of a tracked session).
    expected_cost = Decimal("2.25") + Decimal("3.5") + 8 + 9 + 10 + 7
    view = build_view(ledger, Filters(period="all"))
    t = view["totals"]
    assert (t["runs"], t["unpriced_runs"], Decimal(repr(t["cost_usd"]))) == (7, 1, expected_cost)
    assert _same(_dash_totals(t), _oracle_totals(records))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "claude_run",
            "ledger",
            "summary",
            "--ledger",
            str(ledger),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "TZ": "UTC"},
        timeout=60,
        check=True,
    )
    summary = json.loads(out.stdout)
    assert summary["total"]["runs"] + summary["unpriced"]["total"]["runs"] == t["runs"]
    assert Decimal(str(summary["total"]["cost_usd"])) == expected_cost
    assert summary["total"]["total_tokens"] + summary["unpriced"]["total"]["total_tokens"] == t["tokens"]
    # The two-model run's chart parts: its residual ($1.50, 20 input and 3 output tokens) is on
    # its main model, so the parts add up to the run.
    parts = {r["model"]: r for r in view["by_day_by_model"] if r["day"] == "2026-03-04"}
    assert parts["claude-sonnet-4-5"]["cost_usd"] + parts["claude-haiku-4-5"]["cost_usd"] == 7.0
    assert parts["claude-haiku-4-5"]["cost_usd"] == 1.5
