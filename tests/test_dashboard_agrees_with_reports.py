"""The dashboard's numbers are `ledger summary`'s numbers.

The dashboard folds the ledger in its own incremental rollup (`dashboard.data`, built for live
updates); the reports package has the shared aggregation API. Both apply the same rules (supersedes,
duplicate imports, unpriced usage apart, cache savings by model). This test holds them to the same
figures on a varied ledger. It needs `claude_run.reports` and skips on a branch that lacks it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from claude_run.dashboard.data import NONE_LABEL, Filters, build_view
from support.dashboard_ledger import known_records, make_record, write_ledger

query = pytest.importorskip("claude_run.reports.query", reason="the reports package is not on this branch")


def _ledger(tmp_path: Path) -> Path:
    now = datetime.now(timezone.utc)
    recs: list[dict[str, Any]] = known_records(now)
    for i in range(40):
        recs.append(
            make_record(
                when=now - timedelta(days=i % 9, hours=i),
                model=["claude-sonnet-4-5", "claude-haiku-4-5", "no-such-model", None][i % 4],
                project=["alpha", "beta", None][i % 3],
                branch=["main", "feat/y", None][i % 3],
                tokens=(100 + i, 10 * i, 1000 * (i % 5), 50 * (i % 3)),
                cost=None if i % 4 >= 2 else round(0.01 * i + 0.001, 6),
                tags={"team": ["web", "data"][i % 2]} if i % 5 else {},
            )
        )
    tel1 = make_record(when=now - timedelta(hours=2), cost=0.4)
    tel1.update(mode="telemetry", source="telemetry", session_id="t1")
    tel2 = make_record(when=now - timedelta(hours=1), cost=0.5)
    tel2.update(mode="telemetry", source="telemetry", session_id="t1", supersedes=tel1["id"])
    run = make_record(when=now - timedelta(hours=3), cost=0.7)
    run["session_id"] = "s-dup"
    imp = make_record(when=now - timedelta(hours=3), cost=0.7)
    imp.update(mode="imported", source="import", session_id="s-dup")
    # Imports of sessions the telemetry service recorded: not counted, before or after it (fold.py).
    imp_tel = make_record(when=now - timedelta(hours=1), cost=0.9)
    imp_tel.update(mode="imported", source="import", session_id="t1")
    imp_first = make_record(when=now - timedelta(hours=5), cost=1.1)
    imp_first.update(mode="imported", source="import", session_id="t2")
    tel3 = make_record(when=now - timedelta(hours=4), cost=0.2)
    tel3.update(mode="telemetry", source="telemetry", session_id="t2")
    recs += [tel1, tel2, run, imp, imp_first, imp_tel, tel3]
    return write_ledger(tmp_path / "ledger.jsonl", recs)


def test_budgets_metrics_and_the_fold_count_what_reports_count(tmp_path: Path) -> None:
    """One rule (fold.py) for every consumer: the same records, the same spend."""
    import orjson

    from claude_run.budget import sum_records
    from claude_run.fold import effective
    from claude_run.telemetry.prometheus import exposition

    ledger = _ledger(tmp_path)
    records = [orjson.loads(line) for line in ledger.read_bytes().splitlines()]
    report = query.aggregate(ledger, ("project",), None, None, save_rollup=False)
    counted = effective(records)
    assert len(counted) == report.total.runs + report.unpriced_total.runs == len(records) - 4
    assert {r["session_id"] for r in counted if r.get("mode") == "imported"} == set()
    priced = [r for r in counted if isinstance(r.get("cost_usd"), float)]
    assert abs(Decimal(repr(sum(r["cost_usd"] for r in priced))) - report.total.cost) < Decimal("1e-9")
    spend = sum_records(records, datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert spend.records == len(counted)
    assert abs(Decimal(repr(spend.usd)) - report.total.cost) < Decimal("1e-9")
    metric = [
        line for line in exposition(records).splitlines() if line.startswith("claude_run_cost_usd_total{")
    ]
    assert abs(
        Decimal(repr(sum(float(line.rsplit(" ", 1)[1]) for line in metric))) - report.total.cost
    ) < Decimal("1e-9")


def _totals(t: Any, u: Any) -> tuple[int, Decimal, int, int]:
    return (t.runs + u.runs, t.cost, t.total_tokens + u.total_tokens, t.cache_read + u.cache_read)


def _mine(tot: dict[str, Any]) -> tuple[int, Decimal, int, int]:
    return (tot["runs"], Decimal(repr(tot["cost_usd"])), tot["tokens"], tot["cache_read"])


def _close(a: tuple[int, Decimal, int, int], b: tuple[int, Decimal, int, int]) -> bool:
    return a[0] == b[0] and abs(a[1] - b[1]) < Decimal("1e-9") and a[2:] == b[2:]


def test_totals_and_groups_match_the_reports_api(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    view = build_view(ledger, Filters(period="all"), latest=1000)
    mine_by = {
        "project": {g["key"]: _mine(g["totals"]) for g in view["by_project"]},
        "branch": {g["key"]: _mine(g["totals"]) for g in view["by_branch"]},
        "tag:team": {
            g["key"][5:]: _mine(g["totals"]) for g in view["by_tag"] if g["key"].startswith("team=")
        },
    }
    for dim, mine in mine_by.items():
        report = query.aggregate(ledger, (dim,), None, None, save_rollup=False)
        assert _close(_mine(view["totals"]), _totals(report.total, report.unpriced_total))
        theirs = {r.key[0]: _totals(r.priced, r.unpriced) for r in report.rows}
        if dim == "tag:team":
            theirs.pop(NONE_LABEL, None)  # runs without the tag: the dashboard's tag chart has no such bar
        assert set(mine) == set(theirs), dim
        for key, figures in mine.items():
            assert _close(figures, theirs[key]), (dim, key, figures, theirs[key])
    report = query.aggregate(ledger, ("project",), None, None, save_rollup=False)
    savings = report.total.savings
    assert savings is not None
    assert abs(Decimal(repr(view["totals"]["cache_savings_usd"])) - savings) < Decimal("1e-9")
