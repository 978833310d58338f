"""Time zones, day numbers and the `--since/--until` grammar (dates, instants, relative periods).

Days are proleptic ordinals (`date.toordinal()`) in the report's time zone: integers group and compare
fast and survive JSON. Relative periods in days (`7d`) are calendar days in that zone, so a daily
table never starts with a partial day; hours (`24h`) are instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache

from ..errors import UsageError

_REL = re.compile(r"^(\d+)\s*([hdwm])$")
GRAMMAR = (
    "YYYY-MM-DD, an ISO date-time, today, yesterday, this-week, last-week, this-month, last-month,"
    " this-quarter, last-quarter, this-year, last-year, or N + h|d|w|m (24h, 7d, 4w, 3m)"
)
#: The named calendar periods, in the order a period picker lists them (the dashboard's filter).
CALENDAR_WORDS = (
    "today",
    "yesterday",
    "this-week",
    "last-week",
    "this-month",
    "last-month",
    "this-quarter",
    "last-quarter",
    "this-year",
    "last-year",
)
# Instants every reader can turn back into a date in any zone (a day of margin at both ends).
MIN_TS = datetime(1, 1, 2, tzinfo=timezone.utc).timestamp()
MAX_TS = datetime(9999, 12, 30, tzinfo=timezone.utc).timestamp()


def resolve_tz(name: str | None) -> tzinfo:
    """`None`/`local` → the system zone; `UTC`; any IANA name via zoneinfo. Bad names are a UsageError."""
    if name is None or name.lower() == "local":
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else timezone.utc
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - Python < 3.9
        raise UsageError(f"unknown time zone {name!r}") from None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown time zone {name!r} (use an IANA name like Europe/Paris, or UTC)") from exc


def tz_key(tz: tzinfo) -> str:
    """A stable, file-name-safe name for a zone: reports say which zone their days are in."""
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        name = key
    elif tz is timezone.utc:
        name = "UTC"
    else:
        # A fixed-offset local zone without a name: the offset identifies it.
        off = datetime.now(tz).utcoffset() or timedelta(0)
        name = f"UTC{int(off.total_seconds()) // 60:+05d}"
    return re.sub(r"[^A-Za-z0-9_+-]", "_", name)


def day_start(day: int, tz: tzinfo) -> float:
    """Epoch seconds of local midnight starting `day` (an ordinal) in `tz`."""
    return datetime.combine(date.fromordinal(day), time(0), tzinfo=tz).timestamp()


def day_of(ts: float, tz: tzinfo) -> int:
    return datetime.fromtimestamp(ts, tz).date().toordinal()


@lru_cache(maxsize=16384)
def _hour_epoch(prefix: str) -> float | None:
    try:
        return datetime.strptime(prefix, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def parse_ts(value: object) -> float | None:
    """Epoch seconds of a record timestamp; fast for our own `...Z` form, tolerant of the rest."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    if len(value) == 24 and value[-1] == "Z" and value[13] == ":" and value[19] == ".":
        base = _hour_epoch(value[:13])
        if base is not None:
            try:
                return base + int(value[14:16]) * 60 + int(value[17:19]) + int(value[20:23]) / 1000
            except ValueError:
                pass
    from ..record.schema import parse_iso

    try:
        return parse_iso(value).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Bound:
    """One end of a period: a day ordinal (a whole local day) or an exact instant."""

    day: int | None = None
    instant: float | None = None

    def ts(self, tz: tzinfo) -> float:
        return self.instant if self.instant is not None else day_start(self.day or 0, tz)


def _month_start(d: date, delta: int) -> date:
    index = d.year * 12 + (d.month - 1) + delta
    return date(index // 12, index % 12 + 1, 1)


def parse_bound(text: str, tz: tzinfo, *, end: bool, now: datetime | None = None) -> Bound:
    """`--since`/`--until` values (and every other date option: one grammar). `end` makes a date
    inclusive (until the end of that day).

    Accepted: `YYYY-MM-DD` (or `YYYYMMDD`), ISO date-times (`2025-01-31T12:00Z`), `today`,
    `yesterday`, `this-week`, `last-week`, `this-month`, `last-month`, `this-quarter`, `last-quarter`,
    `this-year`, `last-year`, and `N` +
    `h|d|w|m` (hours ago as an instant; days/weeks/months as calendar periods ending today, so `7d` is
    today and the six days before). A value no reader could turn back into a date is a UsageError.
    """
    try:
        bound = _parse_bound(text, tz, end=end, now=now)
    except (OverflowError, OSError) as exc:
        raise UsageError(f"date {text.strip()!r} is out of range (years 1 to 9999)") from exc
    except ValueError:
        raise UsageError(f"bad date {text.strip()!r}: use {GRAMMAR}") from None
    try:
        ts = bound.ts(tz)
    except (OverflowError, ValueError, OSError):
        ts = None
    if ts is None or not MIN_TS <= ts <= MAX_TS:
        if bound.day is not None:  # a real date at the calendar's edge (`--until 9999-12-31`): clamp
            return Bound(instant=MAX_TS if bound.day > date(5000, 1, 1).toordinal() else MIN_TS)
        raise UsageError(f"date {text.strip()!r} is out of range (years 1 to 9999)")
    return bound


def parse_range(text: str, tz: tzinfo, *, now: datetime | None = None) -> tuple[Bound, Bound | None]:
    """`FROM..TO` (either side in the one grammar; TO inclusive), or a single start (then `None`)."""
    if ".." in text:
        a, _, b = text.partition("..")
        return parse_bound(a, tz, end=False, now=now), parse_bound(b, tz, end=True, now=now)
    return parse_bound(text, tz, end=False, now=now), None


def parse_instant(
    text: str, tz: tzinfo | None = None, *, end: bool = False, now: datetime | None = None
) -> datetime:
    """A date option as an aware UTC datetime (`prune --before`, `import --since`, `push --since`).

    `tz` is the zone of wall-clock dates (default: the local zone, as the user sees the day).
    """
    zone = tz if tz is not None else resolve_tz(None)
    return datetime.fromtimestamp(parse_bound(text, zone, end=end, now=now).ts(zone), timezone.utc)


def _parse_bound(text: str, tz: tzinfo, *, end: bool, now: datetime | None) -> Bound:
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty")
    current = (now or datetime.now(timezone.utc)).astimezone(tz)
    today = current.date()
    named: dict[str, date] = {
        "today": today,
        "yesterday": today - timedelta(days=1),
        "this-week": today - timedelta(days=today.weekday()),
        "last-week": today - timedelta(days=today.weekday() + 7),
        "this-month": today.replace(day=1),
        "last-month": _month_start(today, -1),
        "this-quarter": _month_start(today.replace(day=1), -((today.month - 1) % 3)),
        "last-quarter": _month_start(today.replace(day=1), -((today.month - 1) % 3) - 3),
        "this-year": today.replace(month=1, day=1),
        "last-year": date(today.year - 1, 1, 1),
    }
    if raw in named:
        start = named[raw]
        if not end:
            return Bound(day=start.toordinal())
        # `--until last-month` means up to the end of last month, and so on.
        after = {
            "today": today + timedelta(days=1),
            "yesterday": today,
            "this-week": start + timedelta(days=7),
            "last-week": start + timedelta(days=7),
            "this-month": _month_start(start, 1),
            "last-month": _month_start(start, 1),
            "this-quarter": _month_start(start, 3),
            "last-quarter": _month_start(start, 3),
            "this-year": start.replace(year=start.year + 1),
            "last-year": start.replace(year=start.year + 1),
        }[raw]
        return Bound(day=after.toordinal())
    match = _REL.match(raw)
    if match:
        digits, unit = match.group(1), match.group(2)
        if len(digits) > 9:  # int() of a huge digit string is slow and no such period fits in a date
            raise OverflowError(digits)
        n = int(digits)
        if unit == "h":
            return Bound(instant=current.timestamp() - n * 3600)
        try:
            if unit == "m":
                first = _month_start(today, -(n - 1)) if n > 0 else _month_start(today, 1)
                return Bound(day=first.toordinal())
            days = n * (7 if unit == "w" else 1)
            return Bound(day=(today - timedelta(days=max(days - 1, 0) if n else -1)).toordinal())
        except ValueError as exc:  # a year before 1: out of range, not malformed
            raise OverflowError(str(exc)) from exc
    if len(raw) == 8 and raw.isdigit():  # YYYYMMDD, as ccusage takes it
        raw = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    if len(raw) == 10:
        d = date.fromisoformat(raw)
        return Bound(day=d.toordinal() + (1 if end else 0))
    from ..record.schema import parse_iso

    if "t" in raw and raw[-1] != "z" and "+" not in raw[10:] and "-" not in raw[10:]:
        naive = datetime.fromisoformat(text.strip())  # a local wall-clock time in the report zone
        return Bound(instant=naive.replace(tzinfo=tz).timestamp())
    return Bound(instant=parse_iso(text).timestamp())
