"""Every view of the ledger against one brute-force oracle written from the README's rules.

Hypothesis draws ledgers full of the fold's corner cases (tests/support/engine_ledgers.py); the
oracle (`reports_records.brute`, `engine_ledgers.counted_totals`) reads each record as the README
says and applies the fold and the sums plainly. Checked: `ledger summary` by day, model, project and
tag, `ledger compare`, `ledger sql`, the Prometheus metrics, budgets and the dashboard's view.
"""

from __future__ import annotations

import math
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.budgets import check as budget
from claude_run.query.engine import opened
from claude_run.query.filters import Filters
from claude_run.query.summary import aggregate
from claude_run.reports.compare import compare_periods
from claude_run.telemetry.outbound import prometheus
from support import engine_ledgers as el
from support import reports_records as rr

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GROUPS = [("day",), ("model",), ("project",), ("tag:team",)]


def _metric(text: str, name: str, **match: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in labels for k, v in match.items()):
            total += float(value)
    return total


@SETTINGS
@given(drawn=el.ledgers(), group=st.sampled_from(GROUPS))
def test_every_view_equals_the_oracle(
    drawn: tuple[list[dict[str, Any]], list[bytes]], group: tuple[str, ...]
) -> None:
    raw, lines = drawn
    records = [el.clean(r) for r in raw]
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        el.write(ledger, lines)
        tz = timezone.utc

        # ledger summary, by one dimension (built, then warm)
        want = rr.normalised(rr.brute(records, group, tz))
        for _ in range(2):
            assert rr.as_table(aggregate(ledger, group, Filters(), tz)) == want, group
        # ... and the one-off read of a large ledger without an index (lean columns, parts as a view)
        assert rr.as_table(aggregate(ledger, group, Filters(), tz, persist=False)) == want, group

        # ledger compare: two explicit ranges
        comp = compare_periods(ledger, "2025-03-31..2025-04-02", "2025-03-28..2025-03-30", Filters(), tz)
        for period, (lo, hi) in (
            (comp.period, ("2025-03-31", "2025-04-03")),
            (comp.against, ("2025-03-28", "2025-03-31")),
        ):
            since = datetime.fromisoformat(lo).replace(tzinfo=tz).timestamp()
            until = datetime.fromisoformat(hi).replace(tzinfo=tz).timestamp()
            b = rr.brute(records, (), tz, since=since, until=until).get((True, ("__total__",)))
            runs, cost = (b[0], rr.usd(b[5])) if b else (0, 0)
            assert (period.totals.runs, period.totals.cost) == (runs, cost)

        totals = el.counted_totals(records)
        with opened(ledger) as eng:
            # ledger sql, over the documented views
            row = eng.con.execute(
                "SELECT count(*), count(*) FILTER (WHERE priced),"
                " coalesce(sum(cost_usd) FILTER (WHERE priced), 0),"
                " coalesce(sum(input), 0), coalesce(sum(cache_read), 0) FROM runs"
            ).fetchone()
            assert row == (
                totals["runs"],
                totals["priced_runs"],
                el.usd(totals["cost"]),
                totals["input"],
                totals["cache_read"],
            )
            parts = eng.con.execute("SELECT coalesce(sum(output), 0) FROM parts").fetchone()
            assert parts == (totals["output"],)

            # Prometheus metrics
            text = prometheus.exposition(eng)
        assert _metric(text, "claude_run_runs_total") == totals["runs"]
        assert _metric(text, "claude_run_ledger_records") == totals["runs"]
        assert _metric(text, "claude_run_tokens_total", type="cache_read") == totals["cache_read"]
        # cost by model: the priced model parts (the residual on the main part), dated or not
        assert math.isclose(
            _metric(text, "claude_run_cost_usd_total"), float(totals["model_cost"]), abs_tol=1e-6
        )

        # the dashboard's view (and so the HTML report), all time
        from claude_run.dashboard.data import Filters as ViewFilters
        from claude_run.dashboard.data import build_view

        view = build_view(ledger, ViewFilters(period="all"))["totals"]
        b_all = rr.brute(records, (), tz)
        p_all, u_all = b_all.get((True, ("__total__",))), b_all.get((False, ("__total__",)))
        assert view["runs"] == (p_all[0] if p_all else 0) + (u_all[0] if u_all else 0)
        assert view["unpriced_runs"] == (u_all[0] if u_all else 0)
        assert math.isclose(view["cost_usd"], float(p_all[5]) if p_all else 0.0, abs_tol=1e-6)
        assert view["input"] == sum(b[1] for b in (p_all, u_all) if b)

        # budgets: all time
        spend = budget.spend_since(ledger, datetime(2000, 1, 1, tzinfo=tz))
        b = rr.brute(records, (), tz)
        priced, unpriced = b.get((True, ("__total__",))), b.get((False, ("__total__",)))
        assert spend.records == (priced[0] if priced else 0) + (unpriced[0] if unpriced else 0)
        assert math.isclose(spend.usd, float(priced[5]) if priced else 0.0, abs_tol=1e-6)


def test_a_plain_tracked_run_never_imports_duckdb(tmp_path: Path) -> None:
    """The read engine stays off the run path: a whole tracked run (fake claude), imports traced."""
    import os
    import subprocess
    import sys

    from support.fake_claude import make_fake_claude

    claude = make_fake_claude(tmp_path, "text")
    ledger = tmp_path / "ledger.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_RUN_", "OTEL_"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    argv = [sys.executable, "-X", "importtime", "-m", "claude_run", "say hi", "--track", "--quiet"]
    argv += ["--claude-bin", str(claude), "--ledger", str(ledger), "--no-telemetry"]
    out = subprocess.run(argv, capture_output=True, env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    imported = {
        line.split("|")[-1].strip().split(".")[0] for line in out.stderr.decode().splitlines() if "|" in line
    }
    assert "claude_run" in imported and "orjson" in imported  # the trace is real
    assert "duckdb" not in imported and "typer" not in imported
    assert ledger.read_bytes().count(b"\n") == 1
