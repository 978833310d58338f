"""Daily / monthly spend budgets across runs, summed from a ledger.

Semantics (docs/ci.md, "Budgets"):
- A period is the calendar day or month in `tz` (UTC unless told), from its first instant (00:00)
  up to, not including, the next period's first instant. A record counts when its `started_at`
  falls in the period.
- Every record counts whatever its status (a failed run was still billed), once per id (a ledger
  merged twice, or a record and one that `supersedes` it, are not double-counted).
- Narrowing: `project` keeps records of that project; `tags` keeps records carrying every given
  KEY=VALUE pair.
- `cost_usd` is summed as recorded (Claude's figure or our list-price estimate). Records with no cost
  (unpriced) add nothing and are counted apart, so the message can say the sum is a lower bound.
- Before a run: spent >= limit refuses the run (`BudgetExceeded`, exit 75). After it: the run's own
  cost is added; spent >= limit is reported as "budget reached" (the next run would be refused).

The spend query is one function, `spend_since`, so a faster rollup can replace the full read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from .errors import BudgetExceeded, UsageError

PERIODS = ("daily", "monthly")


@dataclass(frozen=True)
class BudgetSpec:
    """What the command line asked for. `ledger` None means the run's own ledger."""

    daily: float | None = None
    monthly: float | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    project: str | None = None
    tz: str = "UTC"
    ledger: Path | None = None

    def limits(self) -> list[tuple[str, float]]:
        out = []
        if self.daily is not None:
            out.append(("daily", self.daily))
        if self.monthly is not None:
            out.append(("monthly", self.monthly))
        return out


@dataclass
class Spend:
    usd: float = 0.0
    records: int = 0
    unpriced: int = 0
    estimated: int = 0


@dataclass
class PeriodState:
    period: str
    limit: float
    start: datetime
    end: datetime
    before: Spend
    run_cost: float | None = None  # this run's cost, known after it

    @property
    def spent(self) -> float:
        return self.before.usd + (self.run_cost or 0.0)

    @property
    def exceeded(self) -> bool:
        return self.spent >= self.limit

    @property
    def crossed(self) -> bool:
        """This run took the period from under its budget to at or over it."""
        return self.before.usd < self.limit <= self.spent

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "limit_usd": self.limit,
            "start": self.start.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "spent_before_usd": round(self.before.usd, 10),
            "spent_usd": round(self.spent, 10),
            "unpriced_runs": self.before.unpriced,
            "exceeded": self.exceeded,
        }


@dataclass
class BudgetState:
    spec: BudgetSpec
    periods: list[PeriodState]

    @property
    def exceeded(self) -> bool:
        return any(p.exceeded for p in self.periods)

    def with_run(self, cost: float | None) -> BudgetState:
        for p in self.periods:
            p.run_cost = cost
        return self

    def note(self) -> str:
        """A short clause for the run's summary line, empty while every budget has room."""
        hit = [p for p in self.periods if p.exceeded]
        if not hit:
            return ""
        return " · " + "; ".join(f"{p.period} budget reached: ${p.spent:.2f} of ${p.limit:.2f}" for p in hit)


def zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd names; one message for all
        raise UsageError(f"unknown --budget-tz {name!r}: use an IANA zone name like Europe/Paris") from None


def period_bounds(period: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the calendar day/month containing `now`, as aware datetimes in `tz`."""
    local = now.astimezone(tz)
    if period == "daily":
        start = datetime(local.year, local.month, local.day, tzinfo=tz)
        nxt = local.date() + timedelta(days=1)
        end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    elif period == "monthly":
        start = datetime(local.year, local.month, 1, tzinfo=tz)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = datetime(year, month, 1, tzinfo=tz)
    else:
        raise ValueError(period)
    return start, end


def _matches(rec: Mapping[str, Any], tags: Mapping[str, str], project: str | None) -> bool:
    if project is not None and rec.get("project") != project:
        return False
    if tags:
        rec_tags = rec.get("tags")
        if not isinstance(rec_tags, dict):
            return False
        return all(rec_tags.get(k) == v for k, v in tags.items())
    return True


def _iso_ms(dt: datetime) -> str:
    """`record.iso_utc`'s format, from the datetime itself (no float timestamp rounding)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def sum_records(
    records: Iterable[Mapping[str, Any]],
    start: datetime,
    end: datetime | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
) -> Spend:
    """Spend of `records` started in [start, end): the budget semantics, on any iterable of records."""
    from . import fold
    from .record import parse_iso

    start_utc = start.astimezone(timezone.utc)
    end_utc = end.astimezone(timezone.utc) if end is not None else None
    # Our own timestamps (iso_utc: fixed width, UTC, "Z") sort as strings: compare those without parsing.
    start_s = _iso_ms(start_utc)
    end_s = _iso_ms(end_utc) if end_utc is not None else None
    kept: dict[str, Mapping[str, Any]] = {}
    folding = fold.Fold()
    for rec in records:
        folding.see(rec)  # the fold needs every record, in or out of the window
        started = rec.get("started_at")
        if not isinstance(started, str):
            continue
        if len(started) == 24 and started[-1] == "Z" and started[10] == "T":
            if started < start_s or (end_s is not None and started >= end_s):
                continue
        else:
            try:
                when = parse_iso(started)
            except ValueError:
                continue
            if when < start_utc or (end_utc is not None and when >= end_utc):
                continue
        if not _matches(rec, tags or {}, project):
            continue
        kept[str(rec.get("id"))] = rec  # a later copy of the same id replaces the earlier one
    spend = Spend()
    for rec in kept.values():
        if not folding.counts(rec):
            continue
        spend.records += 1
        cost = rec.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            spend.usd += float(cost)
            if rec.get("cost_source") == "estimate":
                spend.estimated += 1
        else:
            spend.unpriced += 1
    return spend


def spend_since(
    ledger: Path,
    start: datetime,
    *,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
    end: datetime | None = None,
) -> Spend:
    """Spend recorded in `ledger` (all segments) for runs started at or after `start` (and before `end`).

    Reads the whole ledger for now; this is the one place to swap for an indexed rollup.
    """
    from .ledger.store import iter_records

    return sum_records(iter_records(ledger), start, end, tags=tags, project=project)


def scope_text(spec: BudgetSpec) -> str:
    parts = [f"project={spec.project}"] if spec.project is not None else []
    parts += [f"{k}={v}" for k, v in sorted(spec.tags.items())]
    return f" for {', '.join(parts)}" if parts else ""


def check(spec: BudgetSpec, ledger: Path, now: datetime | None = None) -> BudgetState:
    """Sum each budget's period; raise `BudgetExceeded` (exit 75) when one is already used up."""
    now = now or datetime.now(timezone.utc)
    tz = zone(spec.tz)
    periods: list[PeriodState] = []
    for period, limit in spec.limits():
        start, end = period_bounds(period, now, tz)
        spent = spend_since(ledger, start, end=end, tags=spec.tags, project=spec.project)
        periods.append(PeriodState(period, limit, start, end, spent))
    state = BudgetState(spec, periods)
    for p in periods:
        if p.exceeded:
            raise BudgetExceeded(refusal_message(p, spec))
    return state


def refusal_message(p: PeriodState, spec: BudgetSpec) -> str:
    when = p.start.strftime("on %Y-%m-%d" if p.period == "daily" else "in %Y-%m")
    tzname = "UTC" if spec.tz.upper() in ("UTC", "Z") else spec.tz
    extra = ""
    if p.before.unpriced:
        extra = f" (+{p.before.unpriced} unpriced run(s) not counted)"
    return (
        f"{p.period} budget exceeded{scope_text(spec)}: ${p.before.usd:.2f} spent of ${p.limit:.2f}"
        f" {when} ({tzname}){extra}; the run was not started"
    )
