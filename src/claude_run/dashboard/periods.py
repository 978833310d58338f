"""The page's period: the CLI's date words (`reports.timeparse`, one grammar) as whole local days.

- a calendar word (`this-month`, `last-quarter`, ...) is that calendar period, as
  `ledger summary --since W --until W` counts it;
- a length or a date (`30d`, `4w`, `3m`, `2026-01-01`) runs from its start up to now, as `--since`;
- `FROM..TO` is `--since FROM --until TO`; an instant (`24h`, an ISO time) stands for its whole day;
- `all` is everything.

The previous period, for the cost card's change: a calendar period that is over is compared with
the whole one before (last month with the month before it, however long each is); one still going
with the same stretch of the one before (the first 5 days of this month with the first 5 of last
month); anything else with as many days just before it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from ..errors import UsageError
from ..query.timeparse import CALENDAR_WORDS, Bound, day_of, parse_bound, parse_range

#: What the period picker lists: rolling lengths, then the calendar words, then everything.
ROLLING = ("7d", "30d", "90d", "365d")
CHOICES: tuple[str, ...] = (*ROLLING, *CALENDAR_WORDS, "all")

#: How far back the previous calendar period lies: months for these words, else days.
_MONTHS_BACK = {"month": 1, "quarter": 3, "year": 12}
_DAYS_BACK = {"today": 1, "yesterday": 1, "week": 7}


@dataclass(frozen=True)
class Span:
    """Whole local days [start, end) as ordinals; None: open on that side."""

    text: str
    start: int | None
    end: int | None
    prev_start: int | None = None
    prev_end: int | None = None

    def elapsed_end(self, today: date) -> int:
        """The day after the last day that has begun (a calendar period may lie partly ahead)."""
        now = today.toordinal() + 1
        return now if self.end is None else min(self.end, now)


def _day(bound: Bound, tz: tzinfo) -> int:
    return bound.day if bound.day is not None else day_of(bound.ts(tz), tz)


def _end_day(bound: Bound, tz: tzinfo) -> int:
    """An exclusive end as a day: an instant inside a day keeps that whole day."""
    if bound.day is not None:
        return bound.day
    ts = bound.ts(tz)
    day = day_of(ts, tz)
    midnight = datetime.combine(date.fromordinal(day), time(0), tzinfo=tz).timestamp()
    return day if ts == midnight else day + 1


def _shift_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def resolve(text: str | None, tz: tzinfo, today: date) -> Span:
    """The period a filter names (a UsageError says what is accepted)."""
    raw = (text or "30d").strip().lower()
    if raw == "all":
        return Span("all", None, None)
    now = datetime.now(tz)
    if now.date() != today:  # a view asked for another day (tests, a page left open past midnight)
        now = datetime.combine(today, time(12), tzinfo=tz)
    try:
        if ".." in raw:
            first, until = parse_range(raw, tz, now=now)
            assert until is not None
            start, end = _day(first, tz), _end_day(until, tz)
        elif raw in CALENDAR_WORDS:
            start = _day(parse_bound(raw, tz, end=False, now=now), tz)
            end = _day(parse_bound(raw, tz, end=True, now=now), tz)
        else:
            start, end = _day(parse_bound(raw, tz, end=False, now=now), tz), None
    except UsageError as exc:
        raise UsageError(f"bad period {text!r}: {exc.message}; or all") from None
    if end is not None and end <= start:
        raise UsageError(f"bad period {text!r}: it is empty")
    if start > today.toordinal():
        raise UsageError(f"bad period {text!r}: it starts in the future")
    span = Span(raw, start, end)
    length = span.elapsed_end(today) - start
    if start - length - 31 * 12 < 1:  # no period before it fits in the calendar: no change to show
        return span
    unit = raw.rsplit("-", 1)[-1]
    if raw in CALENDAR_WORDS and unit in _MONTHS_BACK:
        prev = _shift_months(date.fromordinal(start), _MONTHS_BACK[unit]).toordinal()
        over = end is not None and end <= today.toordinal() + 1  # a whole month: the whole one before
        return Span(raw, start, end, prev, start if over else min(prev + length, start))
    back = _DAYS_BACK.get(unit, length) if raw in CALENDAR_WORDS else length
    return Span(raw, start, end, start - back, start - back + length)


def days_in_month(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def month_of(today: date) -> tuple[int, int]:
    """[first day of today's month, first day of the next) as ordinals."""
    first = today.replace(day=1)
    return first.toordinal(), first.toordinal() + days_in_month(first)


def label(span: Span, today: date) -> str:
    """`2026-11-01 to 2026-11-30 (this-month)`: the dates the figures cover, and the words asked."""
    if span.start is None:
        return "all time"
    last = date.fromordinal(span.elapsed_end(today) - 1)
    first = date.fromordinal(span.start)
    dates = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return f"{dates} ({span.text})"


def day_range(start: int, end: int) -> list[str]:
    return [(date.fromordinal(start) + timedelta(days=i)).isoformat() for i in range(end - start)]
