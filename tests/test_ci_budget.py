"""Budgets across runs: periods, which records count, refusal before the spawn, crossing after the run."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.budgets import check as budget
from claude_run.ci.outputs import parse_outputs
from claude_run.errors import BudgetExceeded, UsageError
from claude_run.ledger.store import append
from claude_run.record.schema import iso_utc, new_id
from support.ci_helpers import base_env, make_bin, sample_result

UTC = timezone.utc
SAMPLE_COST = float(sample_result()["total_cost_usd"])  # type: ignore[arg-type]


def rec(
    started: datetime | str,
    cost: float | None,
    *,
    tags: dict[str, str] | None = None,
    project: str | None = "widgets",
    rid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    when = started if isinstance(started, str) else iso_utc(started.timestamp())
    return {
        "v": 1,
        "id": rid or new_id(),
        "started_at": when,
        "cost_usd": cost,
        "cost_source": "claude" if cost is not None else "unpriced",
        "tags": tags or {},
        "project": project,
        **extra,
    }


# --- periods -------------------------------------------------------------------------------------------


def test_daily_period_is_the_utc_calendar_day() -> None:
    now = datetime(2026, 11, 23, 23, 59, 59, 999000, tzinfo=UTC)
    start, end = budget.period_bounds("daily", now, UTC)
    assert (start, end) == (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))


def test_monthly_period_rolls_over_the_year() -> None:
    start, end = budget.period_bounds("monthly", datetime(2026, 12, 31, 12, tzinfo=UTC), UTC)
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_periods_in_another_zone() -> None:
    paris = budget.zone("Europe/Paris")
    # 23:30 UTC is already the next day in Paris (UTC+1 in November).
    start, end = budget.period_bounds("daily", datetime(2026, 11, 23, 23, 30, tzinfo=UTC), paris)
    assert start.astimezone(UTC) == datetime(2026, 11, 23, 23, tzinfo=UTC)
    assert end - start == timedelta(hours=24)
    # The spring-forward day has 23 hours.
    start, end = budget.period_bounds("daily", datetime(2026, 3, 29, 12, tzinfo=UTC), paris)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_unknown_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        budget.zone("Mars/Olympus_Mons")


# --- which records count ---------------------------------------------------------------------------------


def sum_records(
    records: list[dict[str, Any]], start: datetime, end: datetime | None = None, **kw: Any
) -> Any:
    """The budget's spend of a ledger holding `records` (read by the engine, as a run's check is)."""
    import tempfile

    import orjson

    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        return budget.spend_since(ledger, start, end=end, **kw)  # (spend_since opens the engine)


DAY = datetime(2026, 11, 23, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def test_window_is_start_inclusive_end_exclusive() -> None:
    records = [
        rec(DAY - timedelta(milliseconds=1), 100.0),
        rec(DAY, 1.0),
        rec(NEXT - timedelta(milliseconds=1), 2.0),
        rec(NEXT, 100.0),
    ]
    spend = sum_records(records, DAY, NEXT)
    assert (spend.usd, spend.records) == (3.0, 2)


def test_unpriced_records_are_counted_apart() -> None:
    records = [rec(DAY, 1.5), rec(DAY, None), rec(DAY, None), rec(DAY, 0.5, cost_source="estimate")]
    spend = sum_records(records, DAY, NEXT)
    assert (spend.usd, spend.records, spend.unpriced, spend.estimated) == (2.0, 4, 2, 1)


def test_narrowing_by_tags_and_project() -> None:
    records = [
        rec(DAY, 1.0, tags={"team": "a", "job": "x"}),
        rec(DAY, 2.0, tags={"team": "a"}, project="other"),
        rec(DAY, 4.0, tags={"team": "b"}),
        rec(DAY, 8.0),
    ]
    assert sum_records(records, DAY, tags={"team": "a"}).usd == 3.0
    assert sum_records(records, DAY, project="widgets").usd == 13.0
    assert sum_records(records, DAY, tags={"team": "a"}, project="widgets").usd == 1.0
    assert sum_records(records, DAY, tags={"team": "a", "job": "x"}).usd == 1.0


def test_a_record_counts_once() -> None:
    original = rec(DAY, 1.0, rid="A")
    correction = rec(DAY + timedelta(hours=1), 1.25, rid="B", supersedes="A")
    records = [original, dict(original), rec(DAY, 2.0, rid="C"), correction]
    spend = sum_records(records, DAY, NEXT)
    assert (spend.usd, spend.records) == (3.25, 2)


def test_bad_timestamps_are_skipped() -> None:
    records = [rec("not a date", 5.0), {"v": 1, "id": "x", "cost_usd": 5.0}, rec(DAY, 1.0)]
    assert sum_records(records, DAY).usd == 1.0


@settings(deadline=None, max_examples=40)
@given(st.lists(st.tuples(st.integers(0, 29 * 24 * 60), st.integers(0, 10_000)), max_size=40))
def test_days_add_up_to_the_month(items: list[tuple[int, int]]) -> None:
    month = datetime(2026, 2, 1, tzinfo=UTC)
    import tempfile

    from claude_run.query.engine import opened

    records = [rec(month + timedelta(minutes=m), cents / 100) for m, cents in items]
    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        with opened(ledger, persist=False) as eng:
            total = budget.spend_in(eng.con, month, datetime(2026, 3, 1, tzinfo=UTC)).usd
            days = sum(
                budget.spend_in(eng.con, month + timedelta(days=d), month + timedelta(days=d + 1)).usd
                for d in range(28)
            )
    in_feb = sum(cents for m, cents in items if m < 28 * 24 * 60) / 100
    assert total == pytest.approx(days) == pytest.approx(in_feb)


def test_spend_since_reads_every_segment_and_skips_bad_lines(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    rotated = tmp_path / "ledger.20261101T000000Z.jsonl"
    rotated.write_bytes(orjson.dumps(rec(DAY, 1.0)) + b"\n")
    ledger.write_bytes(orjson.dumps(rec(DAY, 2.0)) + b"\n{torn\n")
    assert budget.spend_since(ledger, DAY).usd == 3.0


# --- check -------------------------------------------------------------------------------------------------


def test_check_refuses_when_the_budget_is_used_up(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    append(ledger, rec(now - timedelta(days=3), 40.0))  # this month, not today
    append(ledger, rec(now - timedelta(hours=1), 4.0, tags={"team": "a"}))
    append(ledger, rec(now - timedelta(hours=1), None, tags={"team": "a"}))
    state = budget.check(budget.BudgetSpec(daily=5.0, monthly=50.0), ledger, now)
    assert [(p.period, p.before.usd) for p in state.periods] == [("daily", 4.0), ("monthly", 44.0)]
    with pytest.raises(BudgetExceeded) as info:
        budget.check(budget.BudgetSpec(daily=4.0, tags={"team": "a"}), ledger, now)
    assert info.value.exit_code == 75
    assert info.value.message == (
        "daily budget exceeded for team=a: $4.00 spent of $4.00 on 2026-11-23 (UTC)"
        " (+1 unpriced run(s) not counted); the run was not started"
    )
    with pytest.raises(
        BudgetExceeded, match=r"monthly budget exceeded: \$44\.00 spent of \$44\.00 in 2026-11"
    ):
        budget.check(budget.BudgetSpec(monthly=44.0), ledger, now)


def test_crossing_after_the_run(tmp_path: Path) -> None:
    state = budget.check(budget.BudgetSpec(daily=1.0), tmp_path / "none.jsonl")
    assert not state.exceeded and state.note() == ""
    state.with_run(1.0)
    assert state.exceeded and state.periods[0].crossed
    assert state.note() == " · daily budget reached: $1.00 of $1.00"
    assert state.periods[0].as_dict()["exceeded"] is True


# --- the run command ---------------------------------------------------------------------------------------


def _run(
    tmp_path: Path, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = base_env(tmp_path, make_bin(tmp_path))
    env.update(
        {
            "CLAUDE_RUN_LEDGER": str(tmp_path / "ledger.jsonl"),
            "CI_FAKE_CLAUDE_MARKER": str(tmp_path / "claude-ran"),
            "GITHUB_OUTPUT": str(tmp_path / "github_output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
        }
    )
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _seed(tmp_path: Path, cost: float, **kw: Any) -> None:
    append(tmp_path / "ledger.jsonl", rec(datetime.fromtimestamp(time.time(), UTC), cost, **kw))


def test_refused_run_exits_75_with_one_line_and_never_spawns_claude(tmp_path: Path) -> None:
    _seed(tmp_path, 3.0, tags={"team": "a"})
    res = _run(
        tmp_path, "task", "--track", "--tag", "team=a", "--budget-daily", "2.5", "--budget-tag", "team"
    )
    assert res.returncode == 75
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("claude-run: daily budget exceeded for team=a: $3.00 spent of $2.50 on ")
    assert not (tmp_path / "claude-ran").exists()
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 1  # nothing recorded
    out = parse_outputs((tmp_path / "github_output").read_text())
    assert (out["status"], out["budget_exceeded"]) == ("refused", "true")
    assert "refused" in (tmp_path / "step_summary.md").read_text()


def test_other_scopes_do_not_count(tmp_path: Path) -> None:
    _seed(tmp_path, 3.0, tags={"team": "b"})
    res = _run(
        tmp_path, "task", "--track", "--tag", "team=a", "--budget-daily", "2.5", "--budget-tag", "team"
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "claude-ran").exists()
    out = parse_outputs((tmp_path / "github_output").read_text())
    assert out["budget_exceeded"] == "false"


def test_run_that_crosses_the_budget_is_reported(tmp_path: Path) -> None:
    _seed(tmp_path, 1.0)
    limit = 1.0 + SAMPLE_COST / 2  # under before the run, over after it
    res = _run(tmp_path, "task", "--track", "--budget-monthly", f"{limit}")
    assert res.returncode == 0, res.stderr
    assert "monthly budget reached: $1.02 of $1.01" in res.stderr
    out = parse_outputs((tmp_path / "github_output").read_text())
    assert out["budget_exceeded"] == "true"
    assert out["cost_usd"] == "0.01534125"
    assert "| Monthly budget | ⚠️ **reached**: $1.02 of $1.01" in (tmp_path / "step_summary.md").read_text()
    # ... and the next run is refused.
    again = _run(tmp_path, "task", "--track", "--budget-monthly", f"{limit}")
    assert again.returncode == 75
    assert len((tmp_path / "claude-ran").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--budget-project", "x"],
        ["--budget-daily", "0"],
        ["--budget-daily", "nan"],
        ["--budget-daily", "1", "--budget-tag", "team"],
        ["--budget-daily", "1", "--budget-tz", "Nowhere/Land"],
    ],
)
def test_bad_budget_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    res = _run(tmp_path, "task", *args)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert not (tmp_path / "claude-ran").exists()


@settings(deadline=None, max_examples=40)
@given(
    st.lists(st.integers(-3 * 86_400_000, 3 * 86_400_000), max_size=30),
    st.integers(-86_400_000, 86_400_000),
)
def test_fast_string_window_agrees_with_parsed_timestamps(offsets_ms: list[int], shift_ms: int) -> None:
    start = DAY + timedelta(milliseconds=shift_ms)
    end = start + timedelta(days=1)
    ours = [rec(DAY + timedelta(milliseconds=o), 1.0) for o in offsets_ms]
    # The same instants written another way (an offset instead of Z) take the parsing path.
    other = [
        {
            **r,
            "started_at": (DAY + timedelta(milliseconds=o))
            .astimezone(timezone(timedelta(hours=2)))
            .isoformat(),
        }
        for r, o in zip(ours, offsets_ms, strict=True)
    ]
    assert sum_records(ours, start, end).records == sum_records(other, start, end).records


def test_an_imported_copy_of_a_tracked_session_is_not_counted_twice() -> None:
    from datetime import datetime, timezone

    start = datetime(2026, 11, 23, tzinfo=timezone.utc)
    run = {
        "id": "A",
        "v": 1,
        "mode": "non-interactive",
        "session_id": "S",
        "cost_usd": 1.0,
        "cost_source": "claude",
        "started_at": "2026-11-23T10:00:00.000Z",
    }
    imported = {
        "id": "B",
        "v": 1,
        "mode": "imported",
        "session_id": "S",
        "cost_usd": 1.0,
        "cost_source": "claude",
        "started_at": "2026-11-23T09:59:00.000Z",
    }
    other = {
        "id": "C",
        "v": 1,
        "mode": "imported",
        "session_id": "T",
        "cost_usd": 0.5,
        "cost_source": "estimate",
        "started_at": "2026-11-23T11:00:00.000Z",
    }
    spend = sum_records([imported, run, other], start)
    assert spend.usd == 1.5 and spend.records == 2
