"""Daily / monthly spend budgets across runs, summed from a ledger.

Semantics (docs/ci.md, "Budgets"):
- A period is the calendar day or month in `tz` (UTC unless told), from its first instant (00:00)
  up to, not including, the next period's first instant. A record counts when its `started_at`
  falls in the period.
- Every record that the README's fold counts, whatever its status (a failed run was still billed):
  once per id (a ledger merged twice, or a record and one that `supersedes` it, are not
  double-counted), an imported session once.
- Narrowing: `project` keeps records of that project; `tags` keeps records carrying every given
  KEY=VALUE pair.
- `cost_usd` of priced records is summed as recorded (Claude's figure or our list-price estimate).
  Unpriced records add nothing and are counted apart, so the message can say the sum is a lower bound.
- Before a run: spent >= limit refuses the run (`BudgetExceeded`, exit 75). After it: the run's own
  cost is added; spent >= limit is reported as "budget reached" (the next run would be refused).

The spend is read by the one read engine (`query`), so budgets count exactly what reports count.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def spend_since(
    ledger: Path,
    start: datetime,
    *,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
    end: datetime | None = None,
) -> Spend:
    """Spend recorded in `ledger` (all segments) for runs started in [start, end), from the read
    engine: the records that count (the README's fold), narrowed by project and tags."""
    from .query.engine import opened

    with opened(ledger, columns=("priced", "cost_usd", "cost_source", "project", "tags")) as eng:
        return spend_in(eng.con, start, end, tags=tags, project=project)


def spend_in(
    con: Any,
    start: datetime,
    end: datetime | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
) -> Spend:
    """The budget's sum over an open engine's connection (see `spend_since`)."""
    clauses = ["counted", "started_at >= ?"]
    params: list[Any] = [start.astimezone(timezone.utc)]
    if end is not None:
        clauses.append("started_at < ?")
        params.append(end.astimezone(timezone.utc))
    if project is not None:
        clauses.append("project = ?")
        params.append(project)
    for key, value in sorted((tags or {}).items()):
        clauses.append("tags[?] = ?")
        params += [key, value]
    row = con.execute(
        f"""SELECT count(*), sum(cost_usd) FILTER (WHERE priced), count(*) FILTER (WHERE NOT priced),
                   count(*) FILTER (WHERE priced AND cost_source = 'estimate')
            FROM _lines WHERE {" AND ".join(clauses)}""",
        params,
    ).fetchone()
    records, usd, unpriced, estimated = row if row else (0, None, 0, 0)
    return Spend(float(usd or 0), int(records), int(unpriced), int(estimated))


def scope_text(spec: BudgetSpec) -> str:
    parts = [f"project={spec.project}"] if spec.project is not None else []
    parts += [f"{k}={v}" for k, v in sorted(spec.tags.items())]
    return f" for {', '.join(parts)}" if parts else ""


def check(spec: BudgetSpec, ledger: Path, now: datetime | None = None) -> BudgetState:
    """Sum each budget's period; raise `BudgetExceeded` (exit 75) when one is already used up."""
    from .query.engine import opened

    now = now or datetime.now(timezone.utc)
    tz = zone(spec.tz)
    periods: list[PeriodState] = []
    limits = spec.limits()
    if limits:
        with opened(ledger, columns=("priced", "cost_usd", "cost_source", "project", "tags")) as eng:
            for period, limit in limits:
                start, end = period_bounds(period, now, tz)
                spent = spend_in(eng.con, start, end, tags=spec.tags, project=spec.project)
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
