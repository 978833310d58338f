"""The window maths of `ledger quota` (`stream/quota.py`): boundaries, time zones, no runs, stale data."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_run.commands.ledger_quota import NO_UTILIZATION, as_json, render
from claude_run.record.schema import iso_utc
from claude_run.stream.quota import (
    FIVE_HOURS,
    Run,
    blocks,
    floor_hour,
    report,
    runs_from_records,
    share,
    spend_between,
)

UTC = timezone.utc
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SRC = str(Path(__file__).resolve().parents[1] / "src")


def iso(t: datetime) -> str:
    return iso_utc(t.timestamp())


def rec(
    start: datetime,
    minutes: float = 0,
    cost: float | None = 1.0,
    tokens: int = 1000,
    limits: dict[str, tuple[float, datetime]] | None = None,
    seen: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "v": 1,
        "id": f"r{start.timestamp():.0f}{minutes}",
        "started_at": iso(start),
        "ended_at": iso(start + timedelta(minutes=minutes)),
        "cost_usd": cost,
        "tokens": {"input": tokens, "output": 0, "cache_read": 0, "cache_creation": 0},
        **extra,
    }
    if limits is not None:
        at = iso(seen or start + timedelta(minutes=minutes))
        r["rate_limits"] = {
            "seen_at": at,
            "status": "allowed",
            "windows": {
                name: {"utilization": u, "resets_at": iso(reset), "status": "allowed", "seen_at": at}
                for name, (u, reset) in limits.items()
            },
        }
    return r


# -- proportional shares and boundaries ---------------------------------------------------------------


def test_share_is_half_open_at_both_ends() -> None:
    t = NOW
    instant = Run(t, t, 1.0, 10)
    assert share(instant, t, t + timedelta(hours=1)) == 1.0  # [lo, hi): the start is inside
    assert share(instant, t - timedelta(hours=1), t) == 0.0  # ...the end is not
    long = Run(t - timedelta(minutes=30), t + timedelta(minutes=30), 2.0, 100)
    assert share(long, t, t + timedelta(hours=2)) == pytest.approx(0.5)
    cost, tokens = spend_between([long, instant], t - timedelta(hours=1), t)
    assert (cost, tokens) == pytest.approx((1.0, 50.0))


@given(
    st.lists(
        st.tuples(st.integers(0, 20 * 3600), st.integers(0, 3 * 3600), st.floats(0, 50)),
        max_size=12,
    ),
    st.integers(1, 20 * 3600),
)
def test_spend_splits_exactly_at_any_cut(items: list[tuple[int, int, float]], cut_s: int) -> None:
    base = NOW - timedelta(days=1)
    runs = [Run(base + timedelta(seconds=s), base + timedelta(seconds=s + d), c, 7) for s, d, c in items]
    far_lo, far_hi = base - timedelta(days=1), base + timedelta(days=2)
    cut = base + timedelta(seconds=cut_s)
    left, right = spend_between(runs, far_lo, cut), spend_between(runs, cut, far_hi)
    whole = spend_between(runs, far_lo, far_hi)
    assert left[0] + right[0] == pytest.approx(whole[0]) == pytest.approx(sum(c for _, _, c in items))


def test_blocks_start_on_the_utc_hour_and_a_run_at_the_end_starts_the_next() -> None:
    first = datetime(2026, 12, 5, 1, 40, tzinfo=UTC)
    runs = runs_from_records(
        [
            rec(first),
            rec(first + timedelta(hours=3, minutes=19, seconds=59)),  # 04:59:59: still the first window
            rec(datetime(2026, 12, 5, 6, 0, tzinfo=UTC)),  # exactly the first window's end: a new one
            rec(datetime(2026, 12, 5, 11, 0, tzinfo=UTC)),  # the second window ends at 11:00
        ]
    )
    got = blocks(runs, NOW)
    assert [(b.start.hour, b.end.hour, b.runs, b.current) for b in got] == [
        (1, 6, 2, False),
        (6, 11, 1, False),
        (11, 16, 1, True),  # now (12:00) is inside
    ]


def test_time_zones_move_neither_windows_nor_sums() -> None:
    # The same instants written with other offsets (as another machine's clock would) give the same answer.
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: a local-hour floor would cut at :30 UTC
    utc_runs = [rec(datetime(2026, 12, 5, 9, 10, tzinfo=UTC)), rec(datetime(2026, 12, 5, 11, 0, tzinfo=UTC))]
    shifted = []
    for r in utc_runs:
        r2 = dict(r)
        for key in ("started_at", "ended_at"):
            r2[key] = datetime.fromisoformat(r[key].replace("Z", "+00:00")).astimezone(kolkata).isoformat()
        shifted.append(r2)
    a, b = report(utc_runs, NOW), report(shifted, NOW)
    assert [(x.start, x.end, x.runs) for x in a.blocks] == [(x.start, x.end, x.runs) for x in b.blocks]
    assert a.blocks[-1].start == floor_hour(datetime(2026, 12, 5, 9, 10, tzinfo=UTC))
    assert a.burn_cost_per_h == b.burn_cost_per_h == 1.0
    # Rendering in a zone shows local times of the same windows.
    text = render(a, kolkata)
    assert "14:30-19:30 (current)" in text  # 09:00-14:00 UTC in +05:30


def test_no_runs() -> None:
    rep = report([], NOW)
    assert rep.blocks == [] and rep.burn_cost_per_h == 0 and rep.projection is None
    text = render(rep, UTC)
    assert NO_UTILIZATION in text and "No runs in the ledger." in text
    assert as_json(rep)["note"] == NO_UTILIZATION


def test_a_window_with_no_runs_is_still_the_current_one_when_claude_placed_it() -> None:
    reset = NOW + timedelta(hours=2)
    old = rec(NOW - timedelta(hours=7), limits={"five_hour": (0.2, reset)}, seen=NOW - timedelta(minutes=5))
    rep = report([old], NOW)
    current = rep.current
    assert current is not None and (current.start, current.end, current.runs) == (
        reset - FIVE_HOURS,
        reset,
        0,
    )
    assert rep.blocks[0].runs == 1 and not rep.blocks[0].current


def test_api_key_runs_get_spend_and_burn_but_no_utilization() -> None:
    rows = [
        rec(NOW - timedelta(minutes=30), cost=0.6),
        rec(NOW - timedelta(minutes=90), cost=5.0, minutes=60),
    ]
    rep = report(rows, NOW)
    assert rep.windows == {} and rep.projection is None
    assert rep.burn_cost_per_h == pytest.approx(0.6 + 5.0 * 0.5)  # half the long run is in the hour
    text = render(rep, UTC)
    assert text.splitlines()[0] == NO_UTILIZATION


# -- projection ---------------------------------------------------------------------------------------


def test_projection_scales_the_burn_by_utilization_per_dollar() -> None:
    reset = NOW + timedelta(hours=3)
    start = reset - FIVE_HOURS  # 10:00
    seen = start + timedelta(minutes=30)
    rows = [
        rec(start + timedelta(minutes=10), cost=2.0),  # in the window before the figure: 2 $ → 40 %
        rec(seen, cost=0.0, tokens=0, limits={"five_hour": (0.4, reset)}, seen=seen),
        rec(NOW - timedelta(minutes=20), cost=2.0),  # after it, and in the last hour
    ]
    p = report(rows, NOW).projection
    assert p is not None and p.reason == "projected"
    assert p.utilization_now == pytest.approx(0.4 + 2.0 * 0.2)
    assert p.per_hour == pytest.approx(2.0 * 0.2)  # burn 2 $/h at 0.2 per $
    assert p.at == NOW + timedelta(hours=0.2 / 0.4)


def test_a_figure_with_nothing_to_scale_by() -> None:
    reset = NOW + timedelta(hours=3)
    seen = NOW - timedelta(minutes=30)
    rows = [
        rec(seen, cost=0.0, tokens=0, limits={"five_hour": (0.4, reset)}, seen=seen),
        rec(NOW - timedelta(minutes=5)),
    ]
    p = report(rows, NOW).projection
    assert p is not None and p.at is None and "to scale by" in p.reason


def test_projection_before_reset_and_not_before_reset() -> None:
    reset = NOW + timedelta(hours=2)
    start = reset - FIVE_HOURS
    seen = NOW - timedelta(minutes=30)
    base = [rec(start + timedelta(minutes=5), cost=1.0)]
    fig = rec(seen, cost=0.0, tokens=0, limits={"five_hour": (0.5, reset)}, seen=seen)
    # 1 $ in the window → 50 %: 0.5 per $. Spend since the figure: 0.4 $ in the last half hour.
    hot = report([*base, fig, rec(NOW - timedelta(minutes=10), cost=0.4)], NOW).projection
    assert hot is not None and hot.reason == "projected" and hot.at is not None
    assert hot.utilization_now == pytest.approx(0.7)
    assert hot.per_hour == pytest.approx(0.5 * 0.4)  # burn 0.4 $/h
    assert hot.at == NOW + timedelta(hours=0.3 / 0.2)  # 1.5 h: before the reset in 2 h
    cool = report([*base, fig, rec(NOW - timedelta(minutes=10), cost=0.1)], NOW).projection
    assert cool is not None and cool.at is None and cool.reason == "not before reset"
    idle = report([*base, fig], NOW).projection
    assert idle is not None and idle.reason == "not before reset" and idle.utilization_now == 0.5


def test_projection_reached() -> None:
    reset = NOW + timedelta(hours=1)
    rows = [rec(NOW - timedelta(minutes=5), limits={"five_hour": (1.02, reset)})]
    p = report(rows, NOW).projection
    assert p is not None and p.reason == "reached" and p.at == NOW


def test_stale_figures() -> None:
    # The 5-hour window reset since the last figure: shown as expired, no projection, no anchor.
    reset = NOW - timedelta(minutes=10)
    seven = NOW + timedelta(days=2)
    rows = [rec(NOW - timedelta(hours=3), limits={"five_hour": (0.9, reset), "seven_day": (0.5, seven)})]
    rep = report(rows, NOW)
    assert rep.windows["five_hour"].expired(NOW) and not rep.windows["seven_day"].expired(NOW)
    p = rep.projection
    assert p is not None and p.at is None and "reset after the last figure" in p.reason
    # No anchor from Claude: the run's own window (09:00-14:00 by its start) is the current one.
    current = rep.current
    assert current is not None and current.start == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    data = as_json(rep)
    assert data["windows"]["five_hour"]["expired"] is True
    assert data["windows"]["seven_day"]["age_s"] == 3 * 3600
    text = render(rep, UTC)
    assert "no figure since" in text and "3h00m ago" in text


def test_the_latest_figure_wins_whatever_the_ledger_order() -> None:
    reset = NOW + timedelta(hours=1)
    newer = rec(NOW - timedelta(minutes=5), limits={"five_hour": (0.6, reset)})
    older = rec(NOW - timedelta(minutes=50), limits={"five_hour": (0.3, reset)})
    assert report([newer, older], NOW).windows["five_hour"].utilization == 0.6
    # Odd shapes are skipped, never an error.
    odd = [
        {"v": 1, "id": "x"},
        {"started_at": "yesterday"},
        rec(NOW, rate_limits={"windows": [1]}),
        rec(NOW, rate_limits=5),
    ]
    assert report(odd, NOW).runs == 2


# -- the command --------------------------------------------------------------------------------------


def test_cli_table_and_json(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    reset = now + timedelta(hours=2)
    ledger = tmp_path / "ledger.jsonl"
    rows = [
        rec(
            now - timedelta(minutes=40),
            cost=1.5,
            limits={"five_hour": (0.3, reset), "seven_day": (0.1, now + timedelta(days=3))},
        ),
        rec(now - timedelta(minutes=20), cost=0.5, id="r0-superseded"),  # ids sort by creation
        rec(now - timedelta(minutes=10), cost=0.25, supersedes="r0-superseded"),
    ]
    ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        argv = [sys.executable, "-m", "claude_run", "ledger", "quota", "--ledger", str(ledger), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

    table = cli("--tz", "UTC")
    assert table.returncode == 0, table.stderr
    assert "5-hour" in table.stdout and "30 %" in table.stdout and "7-day" in table.stdout
    data = orjson.loads(cli("--format", "json").stdout)
    assert data["windows"]["five_hour"]["utilization"] == 0.3
    (current,) = [b for b in data["five_hour_windows"] if b["current"]]
    assert current["runs"] == 2 and current["cost_usd"] == pytest.approx(1.75)  # the superseded run is out
    assert data["burn"]["cost_usd_per_h"] == pytest.approx(1.75)
    bad = cli("--format", "xml")
    assert bad.returncode == 2 and "--format" in bad.stderr and "Traceback" not in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "quota", "--ledger", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert missing.returncode == 0 and "No runs in the ledger." in missing.stdout
