"""View model -> HTML fragments with SVG charts we draw ourselves (no chart library, nothing fetched).

Every mark carries its exact figure in data attributes (`data-day`, `data-model`, `data-value`) and a
`<title>` tooltip, so screen readers, tests and curious users can read the numbers behind a bar.
Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies);
every colour is also named in a text legend, so colour is never the only cue.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from ..record.schema import parse_iso
from .data import MAX_TAG_VALUES
from .model import CiGroup, Group, Run, View

# Okabe-Ito, strongest contrast first (yellow last: it is faint on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
OTHER_COLOUR = "#6E6E6E"
OTHER_MODELS = "other models"
BAR_COLOUR = "#0072B2"
NO_VALUE = "\u2013"  # an en dash for "no figure"
CACHE_COLOUR = "#009E73"
BUDGET_COLOUR = "#a3191f"


# ---------------------------------------------------------------- numbers


def fmt_int(n: int | float) -> str:
    return f"{round(n):,}"


def fmt_usd(x: float | None) -> str:
    """$ with cents; tiny non-zero costs keep two significant digits instead of showing $0.00."""
    if x is None:
        return "unpriced"
    if x == 0:
        return "$0.00"
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 0.01:
        return f"{sign}${a:,.2f}"
    digits = min(8, -math.floor(math.log10(a)) + 1)
    return f"{sign}${a:.{digits}f}"


def fmt_pct(r: float | None) -> str:
    return "n/a" if r is None else f"{r * 100:.1f}%"


def fmt_compact(n: float) -> str:
    """Axis labels: 1.2M, 35k."""
    a = abs(n)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            text = f"{n / div:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{n:.0f}" if float(n).is_integer() else f"{n:g}"


def fmt_axis_usd(x: float) -> str:
    if x == 0:
        return "$0"
    if x >= 1000:
        return "$" + fmt_compact(x)
    if x >= 1:
        return f"${x:,.0f}" if float(x).is_integer() else f"${x:,.2f}"
    return fmt_usd(x)


def fmt_duration(ms: int | None) -> str:
    if ms is None:
        return NO_VALUE
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_time(stamp: str) -> str:
    try:
        return parse_iso(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(x: float) -> str:
    """Exact figure for a data attribute (repr keeps every digit; ints stay ints)."""
    return str(x) if isinstance(x, int) else repr(float(x))


# ---------------------------------------------------------------- scales


def ticks(peak: float, most: int = 5) -> list[float]:
    """Round axis ticks from 0 to at or above `peak`: steps of 1, 2 or 5 x 10^k (never $6.25), at
    most `most` intervals."""
    if peak <= 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    raw = peak / most
    exp = math.floor(math.log10(raw))
    step = next(m * 10.0**e for e in (exp, exp + 1) for m in (1, 2, 5) if m * 10.0**e >= raw * (1 - 1e-9))
    count = max(1, math.ceil(peak / step - 1e-9))
    return [round(step * i, 12) for i in range(count + 1)]


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """Colours by name order over every model of the ledger (the filter bar's list), not those of
    the view: a model keeps its colour whatever is filtered and as live updates reorder spend."""
    named = sorted(m for m in models if m != OTHER_MODELS)
    own = len(PALETTE) if len(named) <= len(PALETTE) else len(PALETTE) - 1
    colours = {m: PALETTE[i] for i, m in enumerate(named[:own])}
    colours[OTHER_MODELS] = OTHER_COLOUR
    return colours


def _colours(view: View) -> dict[str, str]:
    return model_colours(view["options"]["models"] or view["models"])


def chart_models(view: View) -> list[str]:
    """The view's models that have their own colour; the rest are stacked as 'other models'."""
    colours = _colours(view)
    own = [m for m in view["models"] if m in colours]
    return [*own, OTHER_MODELS] if len(own) < len(view["models"]) else own


# ---------------------------------------------------------------- charts


def stacked_by_day(
    view: View, metric: str, *, title: str, fmt: Callable[[float], str], axis: Callable[[float], str]
) -> str:
    """Bars per day, stacked by model. metric is 'cost_usd' or 'tokens'. The cost chart also draws
    the 7-day moving average and the daily budget as lines; every bar's tooltip has its day's total."""
    days = view["days"]
    shown = chart_models(view)
    colours = _colours(view)
    stacks: dict[str, dict[str, float]] = {d: {} for d in days}
    for row in view["by_day_by_model"]:
        model = row["model"] if row["model"] in shown else OTHER_MODELS
        day_stack = stacks.setdefault(row["day"], {})
        day_stack[model] = day_stack.get(model, 0) + row[metric]  # type: ignore[literal-required]
    grand = sum(sum(s.values()) for s in stacks.values())
    slug = metric.replace("_", "-")
    if not days:
        return _empty_chart(title, slug)
    is_cost = metric == "cost_usd"
    per_day = {d["day"]: d for d in view["by_day"]}
    averages = {d["day"]: d["moving_avg_usd"] for d in view["by_day"]} if is_cost else {}
    budget = view["budgets"]["daily"] if is_cost else None
    width, height = 960, 280
    left, right, top, bottom = 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([sum(s.values()) for s in stacks.values()] + list(averages.values()) + [budget or 0])
    marks = ticks(peak)
    ymax = marks[-1]
    band = plot_w / len(days)
    bar_w = min(max(1.0, band * 0.78), 56.0)
    parts = [
        f'<svg class="chart" id="chart-{slug}" data-total="{_num(grand)}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-labelledby="chart-{slug}-title"><title id="chart-{slug}-title">{_e(title)}</title>'
    ]
    parts += _grid(marks, axis, left, width - right, top, plot_h)
    label_every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        x = left + band * i + (band - bar_w) / 2
        y_cursor: float = top + plot_h
        info = per_day.get(day)
        day_total = (
            f" (day: {fmt(info[metric])}, {_runs(info['runs'])})"  # type: ignore[literal-required]
            if info
            else ""
        )
        for model in shown:
            value = stacks.get(day, {}).get(model, 0)
            if not value:
                continue
            h = plot_h * value / ymax
            y_cursor -= h
            parts.append(
                _rect(x, y_cursor, bar_w, h, colours[model])
                + f' data-day="{_e(day)}" data-model="{_e(model)}" data-value="{_num(value)}">'
                f"<title>{_e(day)} · {_e(model)}: {_e(fmt(value))}{_e(day_total)}</title></rect>"
            )
        if i % label_every == 0:
            cx = left + band * i + band / 2
            parts.append(
                _day_tick(cx, height - bottom + 16, day, days[0][:4] != days[-1][:4], i // label_every)
            )
    if averages:
        points = [
            (left + band * i + band / 2, top + plot_h - plot_h * averages.get(d, 0.0) / ymax, d)
            for i, d in enumerate(days)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(
            f'<polyline class="avg" id="cost-moving-avg" points="{path}" fill="none" stroke="#1b1b1b"'
            f' stroke-width="2" stroke-dasharray="2 3"><title>7-day moving average</title></polyline>'
        )
        parts += [
            f'<circle class="avg-point" cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#1b1b1b" data-day="{_e(d)}"'
            f' data-value="{_num(averages.get(d, 0.0))}"><title>{_e(d)}: 7-day average'
            f" {_e(fmt(averages.get(d, 0.0)))} a day</title></circle>"
            for x, y, d in points
        ]
    if budget:
        parts.append(
            _budget_line(budget, f"daily budget {fmt_usd(budget)}", left, width - right, top, plot_h, ymax)
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>'
    )
    return "".join(parts)


def _grid(
    marks: list[float], axis: Callable[[float], str], x1: float, x2: float, top: float, plot_h: float
) -> list[str]:
    ymax = marks[-1]
    out = []
    for v in marks:
        y = top + plot_h - plot_h * v / ymax
        out.append(
            f'<line class="grid" x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{x1 - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(axis(v))}</text>'
        )
    return out


def _budget_line(
    value: float, text: str, x1: float, x2: float, top: float, plot_h: float, ymax: float
) -> str:
    y = top + plot_h - plot_h * value / ymax
    return (
        f'<line class="budget" x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}" stroke="{BUDGET_COLOUR}"'
        f' stroke-width="2" stroke-dasharray="8 4" data-value="{_num(value)}">'
        f"<title>{_e(text)}</title></line>"
        f'<text class="budget-label" x="{x2 - 4}" y="{y - 5:.1f}" text-anchor="end">{_e(text)}</text>'
    )


def month_chart(view: View) -> str:
    """This month's cost so far, day by day, the straight projection to the month's end and the
    monthly budget."""
    m = view["month"]
    title = "This month: cost so far, projection to the month's end and the monthly budget"
    width, height = 960, 220
    left, right, top, bottom = 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    budget = view["budgets"]["monthly"]
    peak = max(m["projection_usd"], m["cost_usd"], budget or 0)
    marks = ticks(peak)
    ymax = marks[-1]
    step = plot_w / m["days_in_month"]
    first = m["first"]
    parts = [
        f'<svg class="chart" id="chart-month" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="chart-month-title"><title id="chart-month-title">{_e(title)}</title>'
    ]
    parts += _grid(marks, fmt_axis_usd, left, width - right, top, plot_h)
    points = [
        (left + step * (i + 1), top + plot_h - plot_h * v / ymax) for i, (_, v) in enumerate(m["cumulative"])
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in [(left, top + plot_h), *points])
    parts.append(
        f'<polyline class="line" points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2.5"/>'
    )
    for (day, value), (x, y) in zip(m["cumulative"], points, strict=True):
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}" data-day="{_e(day)}"'
            f' data-value="{_num(value)}"><title>{_e(day)}: {_e(fmt_usd(value))} so far</title></circle>'
        )
    end_y = top + plot_h - plot_h * m["projection_usd"] / ymax
    x0, y0 = points[-1] if points else (left, top + plot_h)
    parts.append(
        f'<line class="projection" x1="{x0:.1f}" y1="{y0:.1f}" x2="{width - right}" y2="{end_y:.1f}"'
        f' stroke="{PALETTE[0]}" stroke-width="2" stroke-dasharray="6 5"'
        f' data-value="{_num(m["projection_usd"])}">'
        f"<title>projection {_e(fmt_usd(m['projection_usd']))}</title></line>"
    )
    if budget:
        parts.append(
            _budget_line(budget, f"monthly budget {fmt_usd(budget)}", left, width - right, top, plot_h, ymax)
        )
    for i in range(0, m["days_in_month"] - 2, 5):  # the 1st, 6th, ... (none cut at the right edge)
        parts.append(
            _day_tick(left + step * (i + 1), height - bottom + 16, f"{first[:8]}{i + 1:02d}", False, i // 5)
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>'
    )
    return "".join(parts)


def legend(view: View, *, average: bool = False) -> str:
    shown = chart_models(view)
    colours = _colours(view)
    items = "".join(
        f'<li><span class="swatch" style="background:{colours[m]}"></span>{_e(m)}</li>' for m in shown
    )
    if average:
        items += '<li><span class="swatch avg"></span>7-day moving average</li>'
        if view["budgets"]["daily"]:
            items += '<li><span class="swatch budget"></span>daily budget</li>'
    return f'<ul class="legend" aria-label="Models">{items}</ul>'


def group_bars(groups: list[Group], slug: str, title: str) -> str:
    """Horizontal bars of spend per group, with runs and tokens beside them. HTML, not SVG: the rows
    reflow on a phone (label above its bar) and the text keeps its size."""
    if not groups:
        return _empty_chart(title, slug)
    # The folded "N others" bar would dwarf every named one: scale by the named groups, draw it grey
    # and cut at the track's end (its exact figure is in the text beside it).
    has_other = len(groups) > 1 and groups[-1]["key"].endswith(" others")
    named = groups[:-1] if has_other else groups
    peak = max(g["totals"]["cost_usd"] for g in named)
    scale = peak if peak > 0 else 1.0
    total = sum(g["totals"]["cost_usd"] for g in groups)
    rows = []
    for i, g in enumerate(groups):
        t = g["totals"]
        share = min(100.0, 100 * t["cost_usd"] / scale) if t["cost_usd"] > 0 else 0.0
        other = " other" if has_other and i == len(groups) - 1 else ""
        # Unpriced usage goes on its own small line: never folded in, never drawn as $0.
        value = "unpriced" if t["unpriced_tokens"] and not t["cost_usd"] else fmt_usd(t["cost_usd"])
        unpriced = t["unpriced_tokens"] + t["partial_tokens"]
        sub = f"<small>+ {fmt_compact(unpriced)} tokens unpriced</small>" if unpriced else ""
        partial = ' <span class="partial">partial</span>' if t["partial_runs"] else ""
        tip = f"{g['key']}: {fmt_usd(t['cost_usd'])}, {_runs(t['runs'])}, {fmt_int(t['tokens'])} tokens"
        rows.append(
            f'<div class="bar-row" role="listitem" data-key="{_e(g["key"])}"'
            f' data-value="{_num(t["cost_usd"])}" data-runs="{t["runs"]}" data-tokens="{t["tokens"]}"'
            f' data-partial="{t["partial_runs"]}"'
            f' title="{_e(tip)}"><span class="bar-label">{_e(g["key"])}</span>'
            f'<span class="bar-track"><span class="bar-fill{other}" style="width:{share:.2f}%"></span></span>'
            f'<span class="bar-value">{_e(value)}{partial} · {_runs(t["runs"])}{sub}</span></div>'
        )
    return (
        f'<div class="bars" id="chart-{slug}" data-total="{_num(total)}" role="list"'
        f' aria-label="{_e(title)}">{"".join(rows)}</div>'
    )


def cache_chart(view: View) -> str:
    days = view["days"]
    ratios = {d["day"]: d for d in view["cache"]["by_day"]}
    title = "Cache hit ratio by day (cache reads / all input tokens)"
    if not days:
        return _empty_chart(title, "cache")
    width, height = 960, 200
    left, right, top, bottom = 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    band = plot_w / len(days)
    bar_w = min(max(1.0, band * 0.78), 56.0)
    parts = [
        f'<svg class="chart" id="chart-cache" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="chart-cache-title"><title id="chart-cache-title">{_e(title)}</title>'
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{25 * i}%</text>'
        )
    label_every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        entry = ratios.get(day)
        ratio = entry["hit_ratio"] if entry else None
        if ratio is not None:
            h = plot_h * ratio
            x = left + band * i + (band - bar_w) / 2
            savings = entry["savings_usd"] if entry else None
            parts.append(
                _rect(x, top + plot_h - h, bar_w, h, CACHE_COLOUR)
                + f' data-day="{_e(day)}" data-value="{_num(ratio)}">'
                f"<title>{_e(day)}: {fmt_pct(ratio)} cache hits, saved {_e(fmt_usd(savings))}</title></rect>"
            )
        if i % label_every == 0:
            cx = left + band * i + band / 2
            parts.append(_day_tick(cx, height - bottom + 16, day, days[0][:4] != days[-1][:4]))
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>'
    )
    return "".join(parts)


#: The quota chart's windows: key in `QuotaDay`, label, colour, dash (so colour is not the only cue).
QUOTA_SERIES = (
    ("five_hour", "5-hour window", PALETTE[0], ""),
    ("seven_day", "7-day window", PALETTE[3], "6 4"),
)


def _dashed(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def quota_legend() -> str:
    items = "".join(
        f'<li><svg width="28" height="12" aria-hidden="true"><line x1="1" x2="27" y1="6" y2="6"'
        f' stroke="{colour}" stroke-width="2.5"{_dashed(dash)}/></svg> {_e(label)}</li>'
        for _, label, colour, dash in QUOTA_SERIES
    )
    return f'<ul class="legend" aria-label="Quota windows">{items}</ul>'


def quota_chart(view: View) -> str:
    """Lines of each plan window's highest utilization per day, broken where a day has none."""
    days = view["days"]
    by_day = {q["day"]: q for q in view["quota"]["by_day"]}
    title = "Plan quota: highest utilization per day, 5-hour and 7-day windows"
    width, height = 960, 220
    left, right, top, bottom = 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((q[k] or 0 for q in by_day.values() for k, *_ in QUOTA_SERIES), default=0)  # type: ignore[literal-required]
    # Quarters up to 100 %; above 100 % happens, and the axis then says so in round steps.
    levels = [0.0, 0.25, 0.5, 0.75, 1.0] if peak <= 1 else ticks(peak, 4)
    ymax = levels[-1]
    band = plot_w / max(len(days), 1)
    parts = [
        f'<svg class="chart" id="chart-quota" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="chart-quota-title"><title id="chart-quota-title">{_e(title)}</title>'
    ]
    parts += _grid(levels, lambda v: f"{fmt_compact(round(v * 100, 1))}%", left, width - right, top, plot_h)
    label_every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        if i % label_every == 0:
            parts.append(
                _day_tick(left + band * i + band / 2, height - bottom + 16, day, days[0][:4] != days[-1][:4])
            )
    for key, label, colour, dash in QUOTA_SERIES:
        runs: list[list[tuple[float, float]]] = [[]]
        marks = []
        for i, day in enumerate(days):
            entry = by_day.get(day)
            value = entry[key] if entry else None  # type: ignore[literal-required]
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            x, y = left + band * i + band / 2, top + plot_h - plot_h * min(value, ymax) / ymax
            runs[-1].append((x, y))
            reported = entry["runs"] if entry else 0
            marks.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"'
                f' data-day="{_e(day)}" data-window="{key}" data-value="{_num(value)}">'
                f"<title>{_e(day)} · {_e(label)}: {fmt_pct(value)} at its highest"
                f" ({_runs(reported)} reported)</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(
                    f'<polyline class="line" points="{points}" fill="none" stroke="{colour}"'
                    f' stroke-width="2.5"{_dashed(dash)}/>'
                )
        parts += marks
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>'
    )
    return "".join(parts)


def quota_section(view: View) -> str:
    """The plan quota panel, or nothing when no run of the view reported one (API-key logins)."""
    quota = view["quota"]
    latest = quota["latest"]
    if not quota["by_day"] or latest is None:
        return ""
    bits = []
    for key, label in (("five_hour", "5-hour"), ("seven_day", "7-day")):
        value = latest[key]  # type: ignore[literal-required]
        if value is not None:
            resets = latest[f"{key}_resets_at"]  # type: ignore[literal-required]
            bits.append(f"{label} {fmt_pct(value)}" + (f" (resets {fmt_time(resets)})" if resets else ""))
    seen = f", as Claude reported it at {fmt_time(latest['seen_at'])}" if latest["seen_at"] else ""
    text = f'<p id="quota-latest">Latest: {_e("; ".join(bits))}{_e(seen)}.</p>'
    return _section("quota", "Plan quota", text + quota_legend() + quota_chart(view))


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    """An open <rect ...: callers add data attributes and close it (bars stay visible at 0.5 px)."""
    return (
        f'<rect class="bar" x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{max(h, 0.5):.2f}" fill="{fill}"'
    )


def _day_tick(x: float, y: float, day: str, with_year: bool = False, n: int = 0) -> str:
    label = day if with_year else day[5:]  # MM-DD unless the range crosses a year
    cls = "tick alt" if n % 2 else "tick"  # every other label: hidden on a phone, where text is larger
    return f'<text class="{cls}" x="{x:.1f}" y="{y}" text-anchor="middle">{_e(label)}</text>'


def _empty_chart(title: str, slug: str) -> str:
    return f'<p class="empty" id="chart-{slug}" data-total="0">{_e(title)}: no runs match these filters.</p>'


# ---------------------------------------------------------------- cards and tables


def _card(ident: str, title: str, big: str, sub: str = "", attrs: str = "", cls: str = "card") -> str:
    sub_html = f'<span class="sub">{sub}</span>' if sub else ""
    size = " long" if len(re.sub(r"<[^>]+>", "", big)) > 11 else ""  # 122,408,618,452 must fit its card
    head = f'<div class="{cls}" id="{ident}"{attrs}><h3>{title}</h3>'
    return f'{head}<p class="big{size}">{big}</p>{sub_html}</div>'


def _change_text(view: View) -> tuple[str, str]:
    """The cost card's line on the previous equal period, and its data attributes."""
    c = view["change"]
    if c is None:
        return "", ""
    span = c["first"] if c["first"] == c["last"] else f"{c['first']} to {c['last']}"
    if c["change_pct"] is None:
        moved = f"{'+' if c['change_usd'] >= 0 else '-'}{fmt_usd(abs(c['change_usd']))}"
    else:
        arrow = "▲" if c["change_usd"] > 0 else "▼" if c["change_usd"] < 0 else "="
        moved = f"{arrow} {c['change_pct']:+.0f}%"
    text = f"{moved} vs {fmt_usd(c['cost_usd'])} in {span}"
    attrs = (
        f' data-previous="{_num(c["cost_usd"])}" data-change="{_num(c["change_usd"])}"'
        f' data-change-pct="{_num(c["change_pct"]) if c["change_pct"] is not None else ""}"'
    )
    return text, attrs


def totals_cards(view: View) -> str:
    """Six cards, one row on a 1,280 px screen: runs, cost (and its change), this month (and its
    projection), unpriced (and partly priced), tokens, cache."""
    t = view["totals"]
    est = t["estimated_cost_usd"]
    change, change_attrs = _change_text(view)
    cost_sub = " · ".join(bit for bit in (change, f"incl. {fmt_usd(est)} estimated" if est else "") if bit)
    m = view["month"]
    budget = view["budgets"]["monthly"]
    month_sub = (
        f"projected {fmt_usd(m['projection_usd'])} by month end"
        f" (day {m['days_elapsed']} of {m['days_in_month']})"
    )
    if budget:
        month_sub += f" · budget {fmt_usd(budget)} ({m['cost_usd'] / budget * 100:.0f}% used)"
    if m["unpriced_runs"] or m["partial_runs"]:
        month_sub += " · plus unpriced usage"
    unpriced = ""
    if t["unpriced_runs"] or t["unpriced_tokens"] or t["partial_runs"]:
        bits = [f"{fmt_int(t['unpriced_tokens'])} tokens with no known price, not in the cost"]
        if t["partial_runs"]:
            bits.append(
                f"{_runs(t['partial_runs'])} partly priced: {fmt_int(t['partial_tokens'])} more tokens"
                " of unpriced models"
            )
        unpriced = _card(
            "total-unpriced",
            "Unpriced",
            _runs(t["unpriced_runs"]),
            _e(" · ".join(bits)),
            f' data-runs="{t["unpriced_runs"]}" data-tokens="{t["unpriced_tokens"]}"'
            f' data-partial-runs="{t["partial_runs"]}" data-partial-tokens="{t["partial_tokens"]}"',
            cls="card warn",
        )
    savings = t["cache_savings_usd"]
    cache_sub = (
        f'<span id="total-cache-ratio" data-value="{_num(t["cache_hit_ratio"] or 0)}">'
        f"{fmt_pct(t['cache_hit_ratio'])} of input tokens read from cache</span>"
    )
    if t["unpriced_savings_tokens"]:
        # `ledger summary`'s footnote, word for word: these are priced runs' cache reads of a model
        # with no list price (no rate to value them at), not unpriced usage.
        cache_sub += (
            f" · excludes {fmt_int(t['unpriced_savings_tokens'])} cache-read tokens of models without a"
            " list price"
        )
    tokens_sub = (
        f"in {fmt_int(t['input'])} · out {fmt_int(t['output'])} · cache read {fmt_int(t['cache_read'])}"
        f" · cache write {fmt_int(t['cache_creation'])}"
    )
    return (
        '<div class="cards">'
        + _card("total-runs", "Runs", fmt_int(t["runs"]), attrs=f' data-value="{t["runs"]}"')
        + _card(
            "total-cost",
            "Cost",
            _e(fmt_usd(t["cost_usd"]))
            + (' <span class="partial">partial</span>' if t["partial_runs"] else ""),
            _e(cost_sub),
            f' data-value="{_num(t["cost_usd"])}"{change_attrs}',
        )
        + _card(
            "month-to-date",
            "This month",
            _e(fmt_usd(m["cost_usd"])),
            _e(month_sub),
            f' data-value="{_num(m["cost_usd"])}" data-projection="{_num(m["projection_usd"])}"'
            f' data-budget="{_num(budget) if budget else ""}"',
        )
        + unpriced
        + _card("total-tokens", "Tokens", fmt_int(t["tokens"]), tokens_sub, f' data-value="{t["tokens"]}"')
        + _card(
            "total-cache-savings",
            "Cache savings",
            _e(fmt_usd(savings) if savings is not None else "n/a"),
            cache_sub,
            f' data-value="{_num(savings or 0)}"',
        )
        + "</div>"
    )


def _runs(n: int) -> str:
    return f"{fmt_int(n)} run" if n == 1 else f"{fmt_int(n)} runs"


_STATUS_MARK = {
    "success": "✓",
    "error": "✗",
    "crashed": "✗",
    "budget_exceeded": "$",
    "timeout": "⏱",
    "interrupted": "■",
}


def _parts_cell(r: Run) -> str:
    """The run's models; with several, each with its own cost, so a priced part's dollars are never
    shown under an unpriced model."""
    if len(r["parts"]) <= 1 and not r["partial"]:
        return f'<span class="part" data-model="{_e(r["model"])}">{_e(r["model"])}</span>'
    items = []
    for p in r["parts"]:
        cost = fmt_usd(p["cost_usd"]) if p["priced"] else "unpriced"
        items.append(
            f'<span class="part{"" if p["priced"] else " unpriced"}" data-model="{_e(p["model"])}"'
            f' data-priced="{int(p["priced"])}" title="{fmt_int(p["tokens"])} tokens">{_e(p["model"])}'
            f" <small>{_e(cost)}</small></span>"
        )
    return "<br>".join(items)


def runs_table(runs: list[Run]) -> str:
    if not runs:
        return '<p class="empty" id="latest-runs">No runs match these filters.</p>'
    rows = []
    for r in runs:
        status = r["status"]
        ok = "ok" if status == "success" else "bad"
        cost = fmt_usd(r["cost_usd"]) if r["cost_usd"] is not None or r["tokens"] else "$0.00"
        if r["cost_source"] == "estimate" and r["cost_usd"] is not None:
            cost += " (est.)"
        partial = (
            ' <span class="partial" title="a model of this run has no known price: its tokens are not in'
            ' the cost">partial</span>'
            if r["partial"]
            else ""
        )
        link_text = _e(r["ci_label"] or "CI run")
        ci = (
            f'<a href="{_e(r["ci_url"])}" rel="noopener noreferrer" target="_blank">{link_text}</a>'
            if r["ci_url"]
            else _e(r["ci_label"] or NO_VALUE)
        )
        tags = ", ".join(f'<span class="tag">{_e(k)}={_e(v)}</span>' for k, v in r["tags"].items())
        rows.append(
            f'<tr data-id="{_e(r["id"])}" data-tokens="{r["tokens"]}" data-cost="{_num(r["cost_usd"] or 0)}"'
            f' data-partial="{int(r["partial"])}">'
            f'<td><time datetime="{_e(r["started_at"])}">{_e(fmt_time(r["started_at"]))}</time></td>'
            f'<td><span class="status {ok}">{_STATUS_MARK.get(status, "?")} {_e(status)}</span></td>'
            f'<td class="models">{_parts_cell(r)}</td><td>{_e(r["project"])}</td><td>{_e(r["branch"])}</td>'
            f'<td class="tags">{tags}</td>'
            f'<td class="num" title="in {fmt_int(r["input"])}, out {fmt_int(r["output"])}, cache read'
            f' {fmt_int(r["cache_read"])}, cache write {fmt_int(r["cache_creation"])}">'
            f"{fmt_int(r['tokens'])}</td>"
            f'<td class="num cost">{_e(cost)}{partial}</td>'
            f'<td class="num">{_e(fmt_duration(r["duration_ms"]))}</td>'
            f"<td>{ci}</td></tr>"
        )
    heads = "".join(
        f'<th scope="col"{" class=num" if name in _NUMERIC else ""}>{name}</th>' for name in _COLUMNS
    )
    return (
        f'<div class="scroll"><table id="latest-runs"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def ci_table(groups: list[CiGroup]) -> str:
    """Spend per CI workflow and job, with a link to the latest run of each."""
    if not groups:
        return '<p class="empty" id="ci-jobs">No CI runs match these filters.</p>'
    rows = []
    for g in groups:
        t = g["totals"]
        link = (
            f'<a href="{_e(g["url"])}" rel="noopener noreferrer" target="_blank">latest run</a>'
            if g["url"]
            else NO_VALUE
        )
        unpriced = t["unpriced_tokens"] + t["partial_tokens"]
        rows.append(
            f'<tr data-workflow="{_e(g["workflow"])}" data-job="{_e(g["job"])}"'
            f' data-value="{_num(t["cost_usd"])}" data-runs="{t["runs"]}">'
            f"<td>{_e(g['workflow'])}</td><td>{_e(g['job'])}</td>"
            f'<td class="num">{fmt_int(t["runs"])}</td><td class="num">{_e(fmt_usd(t["cost_usd"]))}'
            f"{' <span class=partial>partial</span>' if t['partial_runs'] else ''}</td>"
            f'<td class="num">{fmt_compact(unpriced) if unpriced else NO_VALUE}</td><td>{link}</td></tr>'
        )
    heads = (
        '<th scope="col">Workflow</th><th scope="col">Job</th><th scope="col" class="num">Runs</th>'
        '<th scope="col" class="num">Cost</th><th scope="col" class="num">Unpriced tokens</th>'
        '<th scope="col">CI</th>'
    )
    return (
        f'<div class="scroll"><table id="ci-jobs"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


_COLUMNS = ("Started", "Status", "Model", "Project", "Branch", "Tags", "Tokens", "Cost", "Duration", "CI")
_NUMERIC = frozenset({"Tokens", "Cost", "Duration"})


def _period_label(period: str | None) -> str:
    """A filter-bar entry: the CLI's words, spelt out."""
    if period in (None, "all"):
        return "all time"
    rolling = re.fullmatch(r"(\d+)d", period)
    if rolling:
        return f"last {rolling.group(1)} days"
    return period.replace("-", " ")


def _section(slug: str, heading: str, body: str) -> str:
    return f'<section aria-labelledby="h-{slug}"><h2 id="h-{slug}">{_e(heading)}</h2>{body}</section>'


def _bars(view: View, key: str, slug: str, heading: str) -> str:
    return _section(slug, heading, group_bars(view[key], slug, heading))  # type: ignore[literal-required]


def content(view: View) -> str:
    """Everything under the filter bar: what the live page swaps in on each update."""
    f = view["filters"]
    scope = [view["period"]["label"]]
    for key in ("project", "model", "tag"):
        if f[key]:
            scope.append(f"{key} {f[key]}")
    read = view["read"]
    bad = f" · {fmt_int(read['bad_lines'])} unreadable lines skipped" if read["bad_lines"] else ""
    if read.get("not_counted"):
        bad += f" · {fmt_int(read['not_counted'])} superseded or duplicate imported records not counted"
    uncharted = view["options"].get("uncharted_tag_keys") or []
    if uncharted:
        bad += (
            f" · tag keys with more than {MAX_TAG_VALUES} values are not charted: {', '.join(uncharted)}"
            " (use `claude-run ledger summary --by tag:KEY`)"
        )
    stamp = view["generated_at"]
    cache = view["cache"]
    loading = ""
    if read.get("read_bytes", 0) < read.get("total_bytes", 0):
        share = read["read_bytes"] / read["total_bytes"]
        loading = (
            f'<p class="loading" id="loading" role="status" data-read="{read["read_bytes"]}"'
            f' data-total="{read["total_bytes"]}">Still reading the ledger: {share * 100:.0f}%'
            f" ({fmt_int(read['records'])} records so far). The figures below are partial and update by"
            " themselves.</p>"
        )
    savings = fmt_usd(cache["savings_usd"]) if cache["savings_usd"] is not None else "n/a"
    cost_chart = stacked_by_day(
        view, "cost_usd", title="Cost per day, stacked by model", fmt=fmt_usd, axis=fmt_axis_usd
    )
    token_chart = stacked_by_day(
        view, "tokens", title="Tokens per day, stacked by model", fmt=fmt_int, axis=fmt_compact
    )
    return (
        f'<p class="scope" id="scope">Showing {_e(", ".join(scope))} · days in {_e(view["timezone"])} ·'
        f" {fmt_int(read['records'])} records in the ledger{bad} · updated"
        f' <time id="generated-at" datetime="{_e(stamp)}">{_e(_clock(stamp))}</time></p>'
        + loading
        + totals_cards(view)
        + _section("cost", "Cost per day, by model", legend(view, average=True) + cost_chart)
        + _section("month", "This month", month_chart(view))
        + _section("tokens", "Tokens per day, by model", legend(view) + token_chart)
        + '<div class="two">'
        + _bars(view, "by_project", "project", "Spend by project")
        + _bars(view, "by_branch", "branch", "Spend by branch (project · branch)")
        + _bars(view, "by_user", "user", "Spend by user")
        + _bars(view, "by_status", "status", "Spend by status")
        + _bars(view, "by_mode", "mode", "Spend by mode")
        + _bars(view, "by_tag", "tag", "Spend by tag")
        + "</div>"
        + _section(
            "ci",
            "Spend by CI workflow and job",
            ci_table(view["by_ci"])
            if view["read"].get("ci_columns", 1)
            else '<p class="empty" id="ci-jobs">Still indexing the ledger: the CI panel fills in by itself'
            " when the index is built.</p>",
        )
        + (_bars(view, "by_pr", "pr", "Spend by pull request") if view["by_pr"] else "")
        + _section(
            "cache",
            "Cache",
            f"<p>Hit ratio {fmt_pct(cache['hit_ratio'])}; savings {_e(savings)}.</p>" + cache_chart(view),
        )
        + quota_section(view)
        + _section("runs", "Latest runs", runs_table(view["latest_runs"]))
    )


def _clock(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def filter_form(view: View) -> str:
    """The filter bar (a plain GET form: it works without JavaScript too)."""
    f = view["filters"]
    opts = view["options"]

    def select(name: str, label: str, values: list[str], current: str | None, everything: str | None) -> str:
        items = [f'<option value="">{_e(everything)}</option>'] if everything else []
        present = list(values)
        if current and current not in present:
            present.append(current)  # a filter naming nothing still shows what was asked
        for v in present:
            sel = " selected" if v == current else ""
            text = _period_label(v) if name == "period" else v
            items.append(f'<option value="{_e(v)}"{sel}>{_e(text)}</option>')
        return f'<label>{_e(label)} <select name="{name}" id="f-{name}">{"".join(items)}</select></label>'

    periods = opts["periods"]
    return (
        select("period", "Period", periods, f["period"], None)
        + select("project", "Project", opts["projects"], f["project"], "all projects")
        + select("model", "Model", opts["models"], f["model"], "all models")
        + select("tag", "Tag", opts["tags"], f["tag"], "all tags")
        + '<noscript><button type="submit">Apply</button></noscript>'
    )


def options_signature(view: View) -> str:
    raw = repr((view["options"], view["filters"])).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
