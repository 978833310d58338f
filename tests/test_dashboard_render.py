"""Server-side SVG: figures in data attributes, scales that keep small bars visible, no injection."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from claude_run.dashboard.data import Filters, build_view
from claude_run.dashboard.page import document
from claude_run.dashboard.render import fmt_compact, group_bars, stacked_by_day, ticks
from support.dashboard_ledger import make_record, with_quota, write_ledger


def _totals(cost: float, runs: int = 1) -> dict[str, object]:
    return {
        "runs": runs, "input": 1, "output": 1, "cache_read": 0, "cache_creation": 0, "tokens": 2,
        "cost_usd": cost, "estimated_cost_usd": 0.0, "unpriced_runs": 0, "unpriced_tokens": 0,
        "partial_runs": 0, "partial_tokens": 0,
        "cache_hit_ratio": 0.0, "cache_savings_usd": 0.0, "unpriced_savings_tokens": 0,
    }  # fmt: skip


def test_others_bar_does_not_dwarf_named_groups() -> None:
    groups = [{"key": f"p{i}", "totals": _totals(10.0 - i / 2)} for i in range(12)]
    groups.append({"key": "30 others", "totals": _totals(500.0, 30)})
    html = group_bars(groups, "project", "Spend by project")  # type: ignore[arg-type]
    widths = {
        k: float(w)
        for k, w in re.findall(r'data-key="([^"]+)".*?class="bar-fill[^"]*" style="width:([\d.]+)%"', html)
    }
    assert widths["p0"] == 100  # the biggest named bar uses the track, not 2% of it
    assert widths["p11"] == 45  # the others in proportion to it
    assert widths["30 others"] == 100  # cut at the track's end, grey
    assert 'data-key="30 others" data-value="500.0"' in html and 'class="bar-fill other"' in html


def test_markup_in_names_is_escaped(tmp_path: Path) -> None:
    rec = make_record(when=datetime.now(timezone.utc), project='<script>alert("x")</script>', branch="a&b")
    rec["tags"] = {"k": '"><img src=x>'}
    view = build_view(write_ledger(tmp_path / "l.jsonl", [rec]), Filters())
    html = document(view, live=True)
    assert "<script>alert" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and "a&amp;b" in html


def test_day_ticks_show_the_year_across_years(tmp_path: Path) -> None:
    recs = [make_record(when=datetime(2025, 12, 30, 12, tzinfo=timezone.utc)),
            make_record(when=datetime(2026, 1, 2, 12, tzinfo=timezone.utc))]  # fmt: skip
    view = build_view(write_ledger(tmp_path / "l.jsonl", recs), Filters(period="all"))
    assert ">2025-12-30</text>" in document(view, live=False)


def test_fmt_compact() -> None:
    assert [fmt_compact(v) for v in (0, 999, 1000, 1500, 2_500_000, 3e9)] == [
        "0",
        "999",
        "1k",
        "1.5k",
        "2.5M",
        "3B",
    ]


def test_a_page_before_the_first_read_is_flagged(tmp_path: Path) -> None:
    from claude_run.dashboard.data import Live

    recs = [make_record(when=datetime.now(timezone.utc), cost=0.1) for _ in range(5)]
    live = Live(write_ledger(tmp_path / "l.jsonl", recs))
    assert live.behind  # the server listens before it opens a large ledger
    page = document(live.view(Filters()), live=True)
    assert 'id="loading"' in page and "Still reading the ledger" in page
    live.refresh()
    assert 'id="loading"' not in document(live.view(Filters()), live=True)
    live.close()


def test_quota_panel_only_with_quota_data(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    plain = [make_record(when=now)]
    html = document(build_view(write_ledger(tmp_path / "a.jsonl", plain), Filters(period="7d")), live=False)
    assert 'id="h-quota"' not in html and "chart-quota" not in html

    recs = [
        *plain,
        with_quota(make_record(when=now), 0.81, 0.4, now),
        with_quota(make_record(when=now), 0.5, None, now - timedelta(minutes=1)),
    ]
    html = document(build_view(write_ledger(tmp_path / "b.jsonl", recs), Filters(period="7d")), live=False)
    svg = re.search(r'<svg class="chart" id="chart-quota".*?</svg>', html)
    assert (
        svg is not None
        and 'role="img"' in svg.group(0)
        and 'aria-labelledby="chart-quota-title"' in svg.group(0)
    )
    points = re.findall(r'<circle class="point"[^>]*data-window="(\w+)" data-value="([\d.]+)">', svg.group(0))
    # The day's highest figure of each window, each with its tooltip.
    assert sorted(points) == [("five_hour", "0.81"), ("seven_day", "0.4")]
    assert "81.0% at its highest (2 runs reported)" in svg.group(0)
    assert "Latest: 5-hour 81.0%" in html and "7-day 40.0%" in html
    assert 'aria-label="Quota windows"' in html  # the legend names each line (colour and dash)


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_ticks_are_round(peak: float) -> None:
    """Steps of 1, 2 or 5 x 10^k from 0 to at or above the peak (never $6.25 / $12.50)."""
    marks = ticks(peak)
    step = marks[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5)
    assert marks[0] == 0 and marks[-1] >= peak * (1 - 1e-9) and len(marks) <= 6
    assert all(abs(m - i * step) <= step * 1e-9 for i, m in enumerate(marks))


def test_a_model_keeps_its_colour_whatever_is_filtered(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    models = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "mystery-z"]
    recs = [make_record(when=now - timedelta(hours=i), model=m, cost=1.0 + i) for i, m in enumerate(models)]
    ledger = write_ledger(tmp_path / "l.jsonl", recs)

    everything: dict[str, str] = {}
    for c, m in re.findall(
        r'fill="(#[0-9A-Fa-f]{6})" data-day="[^"]+" data-model="([^"]+)"',
        stacked_by_day(build_view(ledger, Filters()), "tokens", title="t", fmt=str, axis=str),
    ):
        everything[m] = c
    assert len(set(everything.values())) == len(models)
    for m in models:
        alone = re.findall(
            r'fill="(#[0-9A-Fa-f]{6})" data-day="[^"]+" data-model="([^"]+)"',
            stacked_by_day(build_view(ledger, Filters(model=m)), "tokens", title="t", fmt=str, axis=str),
        )
        assert alone == [(everything[m], m)]
