"""View model -> HTML fragments with SVG charts we draw ourselves (no chart library, nothing fetched).

Every mark carries its exact figure in data attributes (`data-day`, `data-model`, `data-value`) and a
`<title>` tooltip, so screen readers, tests and curious users can read the numbers behind a bar.
Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies);
every colour is also named in a text legend, so colour is never the only cue.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from ..record.schema import parse_iso
from .data import MAX_TAG_VALUES, Group, Run, Totals, View

# Okabe-Ito, strongest contrast first (yellow last: it is faint on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
OTHER_COLOUR = "#6E6E6E"
OTHER_MODELS = "other models"
BAR_COLOUR = "#0072B2"
NO_VALUE = "\u2013"  # an en dash for "no figure"
CACHE_COLOUR = "#009E73"


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


def nice_max(value: float) -> float:
    """A round axis top at or above value (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10**exp
        if top >= value * 0.999999:
            return float(top)
    return float(10 ** (exp + 1))


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """Colours by name order, not by spend: a model keeps its colour as live updates reorder spend."""
    named = sorted(m for m in models if m != OTHER_MODELS)
    colours = {m: PALETTE[i] for i, m in enumerate(named[: len(PALETTE)])}
    colours[OTHER_MODELS] = OTHER_COLOUR
    return colours


def chart_models(view: View) -> list[str]:
    """The models drawn in their own colour; the rest are stacked as one 'other models' segment."""
    models = view["models"]
    if len(models) <= len(PALETTE):
        return list(models)
    return [*models[: len(PALETTE) - 1], OTHER_MODELS]


# ---------------------------------------------------------------- charts


def stacked_by_day(
    view: View, metric: str, *, title: str, fmt: Callable[[float], str], axis: Callable[[float], str]
) -> str:
    """Bars per day, stacked by model. metric is 'cost_usd' or 'tokens'."""
    days = view["days"]
    shown = chart_models(view)
    colours = model_colours(shown)
    stacks: dict[str, dict[str, float]] = {d: {} for d in days}
    for row in view["by_day_by_model"]:
        model = row["model"] if row["model"] in colours else OTHER_MODELS
        day_stack = stacks.setdefault(row["day"], {})
        day_stack[model] = day_stack.get(model, 0) + row[metric]  # type: ignore[literal-required]
    grand = sum(sum(s.values()) for s in stacks.values())
    slug = metric.replace("_", "-")
    if not days:
        return _empty_chart(title, slug)
    width, height = 960, 280
    left, right, top, bottom = 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((sum(s.values()) for s in stacks.values()), default=0)
    ymax = nice_max(peak)
    band = plot_w / len(days)
    bar_w = min(max(1.0, band * 0.78), 56.0)
    parts = [
        f'<svg class="chart" id="chart-{slug}" data-total="{_num(grand)}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-labelledby="chart-{slug}-title"><title id="chart-{slug}-title">{_e(title)}</title>'
    ]
    for i in range(5):
        v = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(axis(v))}</text>'
        )
    label_every = max(1, math.ceil(len(days) / 12))
    for i, day in enumerate(days):
        x = left + band * i + (band - bar_w) / 2
        y_cursor: float = top + plot_h
        for model in shown:
            value = stacks.get(day, {}).get(model, 0)
            if not value:
                continue
            h = plot_h * value / ymax
            y_cursor -= h
            parts.append(
                _rect(x, y_cursor, bar_w, h, colours[model])
                + f' data-day="{_e(day)}" data-model="{_e(model)}" data-value="{_num(value)}">'
                f"<title>{_e(day)} · {_e(model)}: {_e(fmt(value))}</title></rect>"
            )
        if i % label_every == 0:
            cx = left + band * i + band / 2
            parts.append(_day_tick(cx, height - bottom + 16, day, days[0][:4] != days[-1][:4]))
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>'
    )
    return "".join(parts)


def legend(view: View) -> str:
    shown = chart_models(view)
    colours = model_colours(shown)
    items = "".join(
        f'<li><span class="swatch" style="background:{colours[m]}"></span>{_e(m)}</li>' for m in shown
    )
    return f'<ul class="legend" aria-label="Models">{items}</ul>'


def group_bars(groups: list[Group], slug: str, title: str) -> str:
    """Horizontal bars of spend per group, with runs and tokens in the label."""
    if not groups:
        return _empty_chart(title, slug)
    row_h, width = 36, 640
    label_w, value_w = 170, 250
    plot_w = width - label_w - value_w
    height = row_h * len(groups) + 8
    # The folded "N others" bar would dwarf every named one: scale by the named groups, draw it grey
    # and cut at the plot's edge (its exact figure is in the text beside it).
    has_other = len(groups) > 1 and groups[-1]["key"].endswith(" others")
    named = groups[:-1] if has_other else groups
    peak = max(g["totals"]["cost_usd"] for g in named)
    scale = nice_max(peak) if peak > 0 else 1.0
    total = sum(g["totals"]["cost_usd"] for g in groups)
    parts = [
        f'<svg class="chart" id="chart-{slug}" data-total="{_num(total)}" viewBox="0 0 {width} {height}"'
        f' style="max-width:{width}px"'
        f' role="img" aria-labelledby="chart-{slug}-title"><title id="chart-{slug}-title">{_e(title)}</title>'
    ]
    for i, g in enumerate(groups):
        t = g["totals"]
        y = 4 + i * row_h
        w = min(plot_w * t["cost_usd"] / scale, plot_w) if t["cost_usd"] > 0 else 0
        fill = OTHER_COLOUR if has_other and i == len(groups) - 1 else BAR_COLOUR
        label = g["key"] if len(g["key"]) <= 24 else g["key"][:23] + "…"
        # Unpriced usage goes on its own small line: never folded in, never drawn as $0.
        value = "unpriced" if t["unpriced_tokens"] and not t["cost_usd"] else fmt_usd(t["cost_usd"])
        sub = f"+ {fmt_compact(t['unpriced_tokens'])} tokens unpriced" if t["unpriced_tokens"] else ""
        x_text = label_w + max(w, 1) + 6
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 18}" text-anchor="end">{_e(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 1):.2f}" height="{row_h - 14}"'
            f' fill="{fill}" data-key="{_e(g["key"])}" data-value="{_num(t["cost_usd"])}"'
            f' data-runs="{t["runs"]}" data-tokens="{t["tokens"]}">'
            f"<title>{_e(g['key'])}: {_e(fmt_usd(t['cost_usd']))}, {_runs(t['runs'])},"
            f" {fmt_int(t['tokens'])} tokens</title></rect>"
            f'<text class="value" x="{x_text:.2f}" y="{y + 15}">{_e(value)} · {_runs(t["runs"])}</text>'
            + (f'<text class="sub" x="{x_text:.2f}" y="{y + 29}">{_e(sub)}</text>' if sub else "")
        )
    parts.append("</svg>")
    return "".join(parts)


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
    ymax = max(1.0, nice_max(peak))  # above 100 % happens; the axis then says so
    band = plot_w / max(len(days), 1)
    parts = [
        f'<svg class="chart" id="chart-quota" viewBox="0 0 {width} {height}" role="img"'
        f' aria-labelledby="chart-quota-title"><title id="chart-quota-title">{_e(title)}</title>'
    ]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(fmt_compact(round(ymax * 100 * i / 4, 1)))}%</text>"
        )
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


def _day_tick(x: float, y: float, day: str, with_year: bool = False) -> str:
    label = day if with_year else day[5:]  # MM-DD unless the range crosses a year
    return f'<text class="tick" x="{x:.1f}" y="{y}" text-anchor="middle">{_e(label)}</text>'


def _empty_chart(title: str, slug: str) -> str:
    return f'<p class="empty" id="chart-{slug}" data-total="0">{_e(title)}: no runs match these filters.</p>'


# ---------------------------------------------------------------- cards and tables


def _card(ident: str, title: str, big: str, sub: str = "", attrs: str = "", cls: str = "card") -> str:
    sub_html = f'<span class="sub">{sub}</span>' if sub else ""
    size = " long" if len(big) > 11 else ""  # 122,408,618,452 must fit its card
    head = f'<div class="{cls}" id="{ident}"{attrs}><h3>{title}</h3>'
    return f'{head}<p class="big{size}">{big}</p>{sub_html}</div>'


def totals_cards(t: Totals) -> str:
    est = t["estimated_cost_usd"]
    unpriced = ""
    if t["unpriced_runs"] or t["unpriced_tokens"]:
        unpriced = _card(
            "total-unpriced",
            "Unpriced",
            _runs(t["unpriced_runs"]),
            f"{fmt_int(t['unpriced_tokens'])} tokens with no known price, not in the cost",
            f' data-runs="{t["unpriced_runs"]}" data-tokens="{t["unpriced_tokens"]}"',
            cls="card warn",
        )
    savings = t["cache_savings_usd"]
    if t["unpriced_savings_tokens"]:
        savings_note = (
            f"{fmt_int(t['unpriced_savings_tokens'])} cache-read tokens of unpriced models not counted"
        )
    else:
        savings_note = "vs. paying full input price for cache reads"
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
            _e(fmt_usd(t["cost_usd"])),
            f"incl. {_e(fmt_usd(est))} estimated from list prices" if est else "",
            f' data-value="{_num(t["cost_usd"])}"',
        )
        + unpriced
        + _card("total-tokens", "Tokens", fmt_int(t["tokens"]), tokens_sub, f' data-value="{t["tokens"]}"')
        + _card(
            "total-cache-ratio",
            "Cache hit ratio",
            fmt_pct(t["cache_hit_ratio"]),
            "cache reads / all input tokens",
            f' data-value="{_num(t["cache_hit_ratio"] or 0)}"',
        )
        + _card(
            "total-cache-savings",
            "Cache savings",
            _e(fmt_usd(savings) if savings is not None else "n/a"),
            savings_note,
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
        link_text = _e(r["ci_label"] or "CI run")
        ci = (
            f'<a href="{_e(r["ci_url"])}" rel="noopener noreferrer" target="_blank">{link_text}</a>'
            if r["ci_url"]
            else _e(r["ci_label"] or NO_VALUE)
        )
        tags = ", ".join(f"{k}={v}" for k, v in r["tags"].items())
        rows.append(
            f'<tr data-id="{_e(r["id"])}" data-tokens="{r["tokens"]}" data-cost="{_num(r["cost_usd"] or 0)}">'
            f'<td><time datetime="{_e(r["started_at"])}">{_e(fmt_time(r["started_at"]))}</time></td>'
            f'<td><span class="status {ok}">{_STATUS_MARK.get(status, "?")} {_e(status)}</span></td>'
            f"<td>{_e(r['model'])}</td><td>{_e(r['project'])}</td><td>{_e(r['branch'])}</td>"
            f'<td class="tags">{_e(tags)}</td>'
            f'<td class="num" title="in {fmt_int(r["input"])}, out {fmt_int(r["output"])}, cache read'
            f' {fmt_int(r["cache_read"])}, cache write {fmt_int(r["cache_creation"])}">'
            f"{fmt_int(r['tokens'])}</td>"
            f'<td class="num">{_e(cost)}</td><td class="num">{_e(fmt_duration(r["duration_ms"]))}</td>'
            f"<td>{ci}</td></tr>"
        )
    heads = "".join(
        f'<th scope="col"{" class=num" if name in _NUMERIC else ""}>{name}</th>' for name in _COLUMNS
    )
    return f'<table id="latest-runs"><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


_COLUMNS = ("Started", "Status", "Model", "Project", "Branch", "Tags", "Tokens", "Cost", "Duration", "CI")
_NUMERIC = frozenset({"Tokens", "Cost", "Duration"})


def _period_label(period: str | None) -> str:
    if period in (None, "all"):
        return "all time"
    return f"last {period[:-1]} days" if period else "all time"


def _section(slug: str, heading: str, body: str) -> str:
    return f'<section aria-labelledby="h-{slug}"><h2 id="h-{slug}">{_e(heading)}</h2>{body}</section>'


def content(view: View) -> str:
    """Everything under the filter bar: what the live page swaps in on each update."""
    f = view["filters"]
    scope = [_period_label(f["period"])]
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
        + totals_cards(view["totals"])
        + _section("cost", "Cost per day, by model", legend(view) + cost_chart)
        + _section("tokens", "Tokens per day, by model", legend(view) + token_chart)
        + '<div class="two">'
        + _section(
            "project", "Spend by project", group_bars(view["by_project"], "project", "Spend by project")
        )
        + _section("branch", "Spend by branch", group_bars(view["by_branch"], "branch", "Spend by branch"))
        + "</div>"
        + _section("tag", "Spend by tag", group_bars(view["by_tag"], "tag", "Spend by tag"))
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
