"""`ledger compare`: two periods side by side, normalised per day when their lengths differ."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ..errors import UsageError
from ..query.filters import Filters
from ..query.timeparse import MAX_TS, MIN_TS, Bound, parse_bound, parse_range
from ..query.totals import Totals


@dataclass
class Period:
    label: str
    since: Bound
    until: Bound
    days: Decimal  # length in days (instants make fractional lengths)
    totals: Totals = field(default_factory=Totals)


@dataclass
class Comparison:
    period: Period
    against: Period
    per_day: bool
    warnings: list[str]
    tz: tzinfo


def _length(since: Bound, until: Bound, tz: tzinfo) -> Decimal:
    if since.day is not None and until.day is not None:
        return Decimal(until.day - since.day)
    return (Decimal(repr(until.ts(tz))) - Decimal(repr(since.ts(tz)))) / Decimal(86400)


def _range(text: str, tz: tzinfo, now: datetime) -> tuple[Bound, Bound]:
    start, until = parse_range(text, tz, now=now)
    if until is not None:
        return start, until
    return start, Bound(instant=now.timestamp()) if start.instant is not None else parse_bound(
        "today", tz, end=True, now=now
    )


def _preceding(text: str, end: Bound, tz: tzinfo, now: datetime) -> Bound:
    """A length (`30d`, `12h`, `4w`) counted back from `end`."""
    import re

    m = re.fullmatch(r"\s*(\d{1,5})\s*([hdw])\s*", text.lower())
    if not m:
        raise UsageError(f"bad --against {text!r}: use a length like 30d, 4w, 12h, or FROM..TO")
    n, unit = int(m.group(1)), m.group(2)
    if unit == "h":
        return Bound(instant=end.ts(tz) - n * 3600)
    days = n * (7 if unit == "w" else 1)
    if end.day is not None:
        return Bound(day=end.day - days)
    return Bound(instant=end.ts(tz) - days * 86400)


def compare_periods(
    ledger: Path, period: str, against: str | None, base: Filters, tz: tzinfo, now: datetime | None = None
) -> Comparison:
    """`period` and `against` (a range, or a length ending where `period` starts; default: the same
    length as `period`). Both are aggregated with the same other filters."""
    now = now or datetime.now(timezone.utc)
    p_since, p_until = _range(period, tz, now)
    p_len = _length(p_since, p_until, tz)
    if p_len <= 0:
        raise UsageError(f"--period {period!r} is empty")
    if against is None or ".." not in against:
        a_until = p_since
        if against is None:
            a_since = (
                Bound(day=p_since.day - int(p_len))
                if p_since.day is not None and p_len == int(p_len)
                else (Bound(instant=p_since.ts(tz) - float(p_len) * 86400))
            )
        else:
            a_since = _preceding(against, a_until, tz, now)
    else:
        a_since, a_until = _range(against, tz, now)
    try:
        in_range = MIN_TS <= a_since.ts(tz) <= MAX_TS
    except (ValueError, OverflowError):
        in_range = False
    if not in_range:
        raise UsageError("the baseline period (--against) would start before year 1; give it as FROM..TO")
    a_len = _length(a_since, a_until, tz)
    if a_len <= 0:
        raise UsageError(f"--against {against!r} is empty")
    from ..query.engine import opened
    from ..query.summary import aggregate

    warnings: list[str] = []
    out = []
    with opened(ledger) as eng:  # one engine for both periods
        for label, s, u, length in (
            ("period", p_since, p_until, p_len),
            ("against", a_since, a_until, a_len),
        ):
            f = dataclasses.replace(base, since=s, until=u)
            report = aggregate(eng, (), f, tz)
            warnings = report.warnings
            out.append(Period(label, s, u, length, report.total))
    return Comparison(out[0], out[1], p_len != a_len, warnings, tz)


def _metrics(p: Period, per_day: bool) -> dict[str, Any]:
    t = p.totals
    m: dict[str, Any] = {
        "runs": Decimal(t.runs),
        "cost_usd": t.cost,
        "cost_per_run_usd": t.avg_cost,
        "cache_hit_ratio": None if t.cache_hit_ratio is None else Decimal(repr(t.cache_hit_ratio)),
    }
    if per_day:
        m["runs_per_day"] = Decimal(t.runs) / p.days
        m["cost_per_day_usd"] = t.cost / p.days
    return m


def _change(a: Decimal | None, b: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    if a is None or b is None:
        return None, None
    return a - b, ((a - b) / b * 100 if b else None)


def _span(p: Period, tz: tzinfo) -> str:
    def fmt(b: Bound) -> str:
        return datetime.fromtimestamp(b.ts(tz), tz).strftime("%Y-%m-%d %H:%M")

    return f"{fmt(p.since)} → {fmt(p.until)} ({p.days.normalize():f} days)"


COMPARE_FORMATS = ("table", "markdown", "json", "csv")


def render_compare(c: Comparison, fmt: str) -> bytes:
    from .formats import _num, pico

    pm, am = _metrics(c.period, c.per_day), _metrics(c.against, c.per_day)
    if fmt == "json":
        payload = {
            "per_day_normalised": c.per_day,
            "period": {"since": c.period.since.ts(c.tz), "days": _num(c.period.days)},
            "against": {"since": c.against.since.ts(c.tz), "days": _num(c.against.days)},
            "metrics": {
                k: {
                    "period": _num(pm[k] if pm[k] is None or k == "runs" else pico(pm[k])),
                    "against": _num(am[k] if am[k] is None or k == "runs" else pico(am[k])),
                    "change": _num(None if _change(pm[k], am[k])[0] is None else _change(pm[k], am[k])[0]),
                    "change_pct": _num(_change(pm[k], am[k])[1]),
                }
                for k in pm
            },
            "warnings": c.warnings,
        }
        return orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["metric", "period", "against", "change", "change_pct"])
        for k in pm:
            delta, pct = _change(pm[k], am[k])
            writer.writerow([k, *("" if v is None else format(v, "f") for v in (pm[k], am[k], delta, pct))])
        return buf.getvalue().encode()
    from tabulate import tabulate

    def cell(k: str, v: Decimal | None) -> str:
        if v is None:
            return "—"
        if "usd" in k:
            return f"${v:,.4f}" if abs(v) < 1 else f"${v:,.2f}"
        if k == "cache_hit_ratio":
            return f"{v * 100:.1f}%"
        return f"{v:,.1f}" if k.endswith("per_day") else f"{v:,.0f}"

    rows = []
    for k in pm:
        delta, pct = _change(pm[k], am[k])
        if k == "cache_hit_ratio" and delta is not None:
            change = f"{delta * 100:+.1f} pts"
        else:
            change = (
                "—" if delta is None else ("+" if delta >= 0 else "") + cell(k, delta).replace("$-", "-$")
            )
        rows.append(
            [
                k.replace("_usd", "").replace("_", " "),
                cell(k, pm[k]),
                cell(k, am[k]),
                change,
                "—" if pct is None else f"{pct:+.1f}%",
            ]
        )
    tablefmt = "github" if fmt == "markdown" else "simple"
    text = tabulate(
        rows,
        headers=["", "period", "against", "change", "%"],
        tablefmt=tablefmt,
        disable_numparse=True,
        colalign=("left", "right", "right", "right", "right"),
    )
    tz = c.tz
    head = f"period:  {_span(c.period, tz)}\nagainst: {_span(c.against, tz)}\n"
    note = (
        "\nThe periods differ in length: compare the per-day rows"
        " (runs and cost divided by each period's days).\n"
        if c.per_day
        else ""
    )
    return (head + "\n" + text + "\n" + note).encode()
