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
- Before a run: recorded + in-flight >= limit refuses the run (`BudgetExceeded`, exit 75). After
  it: the run's own cost is added; spent >= limit is reported as "budget reached".
- Shared while runs go: a tracked -p run reserves an entry in the in-flight file beside
  the ledger (`budgets/inflight.py`) in the same locked step as its check, keeps its live spend there, and
  is stopped when recorded + in-flight spend of any of its budgets reaches the limit (`LiveRun`).
  Claude also gets `--max-budget-usd` = what is left (`BudgetState.cap`), so a lone run stops itself.

The spend is read by the one read engine (`query`), so budgets count exactly what reports count.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, LedgerError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ledger.identity import Identity
    from .inflight import Entry, InflightFile, State

PERIODS = ("daily", "monthly")
RESERVE_USD = 0.05  # what a run counts for before it has spent anything: about one request


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
    in_flight: float = 0.0  # what the other runs going now had spent (or reserved) at the check
    in_flight_runs: int = 0

    @property
    def spent(self) -> float:
        return self.before.usd + self.in_flight + (self.run_cost or 0.0)

    @property
    def exceeded(self) -> bool:
        return self.spent >= self.limit

    @property
    def left(self) -> float:
        """What is left for this run at the check: the limit less recorded and in-flight spend."""
        return self.limit - self.before.usd - self.in_flight

    def counts(self, started_at: str, project: str | None, tags: Mapping[str, str], spec: BudgetSpec) -> bool:
        """Whether a run started at `started_at` (our ISO format) with this project and tags counts here."""
        if (
            not _iso_ms(self.start.astimezone(timezone.utc))
            <= started_at
            < _iso_ms(self.end.astimezone(timezone.utc))
        ):
            return False
        return _matches({"project": project, "tags": dict(tags)}, spec.tags, spec.project)

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
            "in_flight_usd": round(self.in_flight, 10),
            "spent_usd": round(self.spent, 10),
            "unpriced_runs": self.before.unpriced,
            "exceeded": self.exceeded,
        }


@dataclass
class BudgetState:
    spec: BudgetSpec
    periods: list[PeriodState]
    live: LiveRun | None = None  # this run's entry in the in-flight file (tracked -p runs)
    cap_usd: float | None = None  # the --max-budget-usd claude got
    capped_by_budget: bool = False  # ... and it was what is left of a budget (not --max-cost)

    def budget_cap(self) -> float | None:
        """The smallest of what is left of each budget, for claude's `--max-budget-usd`."""
        if not self.periods:
            return None
        # claude's flag is printed to the micro-dollar: never round a positive amount down to 0
        return max(min(p.left for p in self.periods), 0.000001)

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
    from ..query.engine import opened

    with opened(ledger, columns=("priced", "cost_usd", "cost_source", "project", "tags")) as eng:
        return spend_in(eng.con, start, end, tags=tags, project=project)


def period_spends(
    ledger: Path, spec: BudgetSpec, windows: list[tuple[datetime, datetime]], now: datetime
) -> list[Spend]:
    """`spend_since` of each of the budget's period windows: from the spend file beside the ledger
    when it can answer exactly (`spendfile`: no DuckDB on the run path), else from the read engine."""
    from . import spendfile

    if not os.path.exists(ledger):
        from ..ledger.store import rotated_segments

        if not rotated_segments(ledger):
            return [Spend() for _ in windows]  # no ledger yet: nothing spent
    tz_key = "UTC" if spec.tz.upper() in ("UTC", "Z") else spec.tz
    return spendfile.spends(ledger, zone(spec.tz), tz_key, spec.project, spec.tags, windows, now)


def spend_in(
    con: Any,
    start: datetime,
    end: datetime | None = None,
    *,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
) -> Spend:
    """The budget's sum over an open engine's connection (see `spend_since`): the reports' own
    filter (`query.summary.where_sql`) of the period, the project and the tags."""
    from ..query.filters import Filters
    from ..query.summary import where_sql
    from ..query.timeparse import Bound

    narrowed = Filters(
        since=Bound(instant=start.timestamp()),
        until=Bound(instant=end.timestamp()) if end is not None else None,
        projects=(project,) if project is not None else (),
        tags=tuple(sorted((tags or {}).items())),
    )
    where, params = where_sql(narrowed, timezone.utc, model_view=False)
    row = con.execute(
        f"""SELECT count(*), sum(l.cost_usd) FILTER (WHERE l.priced), count(*) FILTER (WHERE NOT l.priced),
                   count(*) FILTER (WHERE l.priced AND l.cost_source = 'estimate')
            FROM _lines l WHERE {where}""",
        params,
    ).fetchone()
    records, usd, unpriced, estimated = row if row else (0, None, 0, 0)
    return Spend(float(usd or 0), int(records), int(unpriced), int(estimated))


def scope_text(spec: BudgetSpec) -> str:
    parts = [f"project={spec.project}"] if spec.project is not None else []
    parts += [f"{k}={v}" for k, v in sorted(spec.tags.items())]
    return f" for {', '.join(parts)}" if parts else ""


@dataclass(frozen=True)
class RunScope:
    """The run that asks: what its entry in the in-flight file says about it."""

    started_at: str
    project: str | None
    tags: Mapping[str, str]
    reserve: float = RESERVE_USD


def warm_prices() -> None:
    """Load the list prices (genai-prices, ~0.2 s of imports) a budgeted run's live spend needs."""
    from .. import pricing

    pricing.message_cost("claude-sonnet-4-5", input=1)


def reserve_usd() -> float:
    """`CLAUDE_RUN_BUDGET_RESERVE` (USD, 0 for none), else `RESERVE_USD`."""
    try:
        value = float(os.environ.get("CLAUDE_RUN_BUDGET_RESERVE", RESERVE_USD))
    except ValueError:
        return RESERVE_USD
    return value if 0 <= value < float("inf") else RESERVE_USD


def check(
    spec: BudgetSpec,
    ledger: Path,
    now: datetime | None = None,
    *,
    run: RunScope | None = None,
) -> BudgetState:
    """Recorded + in-flight spend of each budget's period; `BudgetExceeded` (exit 75) when one is used up.

    With `run`, the check and the run's reservation in the in-flight file are one locked step, so
    runs started together each see the others' reservations (`state.live` then holds the entry).
    """
    from .inflight import InflightFile

    now = now or datetime.now(timezone.utc)
    tz = zone(spec.tz)
    windows = [(period, limit, *period_bounds(period, now, tz)) for period, limit in spec.limits()]

    def recorded() -> list[Spend]:
        return period_spends(ledger, spec, [(start, end) for _, _, start, end in windows], now)

    flight = InflightFile(ledger)
    seq0 = flight.read().seq
    # Read the ledger outside the lock; only a run that settled meanwhile makes us read it again.
    spends = recorded()
    if run is not None:
        try:
            fd = flight.acquire()
        except LedgerError as exc:
            flight.warn(f"{exc.message}; this run's spend is not shared with runs going now")
            run = None
    if run is None:
        current = flight.read()
        if current.seq != seq0:
            spends = recorded()
        return _state(spec, windows, spends, current, flight)
    try:
        current = flight.read_fresh()
        if current.seq != seq0:
            spends = recorded()
        state = _state(spec, windows, spends, current, flight)
        state.live = LiveRun.reserve(flight, current, state, run)
        state.live.watch_ledger(ledger, spends)
        try:
            flight.commit(current)
        except LedgerError as exc:
            flight.warn(f"{exc.message}; this run's spend is not shared with runs going now")
            state.live = None
    finally:
        os.close(fd)
    return state


def _identity(ledger: Path) -> Identity | None:
    from ..ledger.identity import current

    try:
        return current(ledger)
    except (OSError, LedgerError):
        return None  # then the recorded spend is simply never read again


def _state(
    spec: BudgetSpec,
    windows: list[tuple[str, float, datetime, datetime]],
    spends: list[Spend],
    current: State,
    flight: InflightFile,
    *,
    refuse: bool = True,
) -> BudgetState:
    live = current.live()
    periods: list[PeriodState] = []
    for (period, limit, start, end), spent in zip(windows, spends, strict=True):
        p = PeriodState(period, limit, start, end, spent)
        for entry in live.values():
            if p.counts(entry.started_at, entry.project, entry.tags, spec):
                p.in_flight += entry.counted
                p.in_flight_runs += 1
        periods.append(p)
    state = BudgetState(spec, periods)
    for p in periods:
        if p.exceeded and refuse:
            raise BudgetExceeded(refusal_message(p, spec))
    return state


def status(spec: BudgetSpec, ledger: Path, now: datetime | None = None) -> tuple[BudgetState, State]:
    """Recorded and in-flight spend per budget, never refusing (`claude-run budget status`).

    Without a limit, both periods are shown with an infinite one. Returns the in-flight file's live
    state too, for listing the runs going now.
    """
    from .inflight import InflightFile

    now = now or datetime.now(timezone.utc)
    tz = zone(spec.tz)
    limits = spec.limits() or [(period, float("inf")) for period in PERIODS]
    windows = [(period, limit, *period_bounds(period, now, tz)) for period, limit in limits]
    flight = InflightFile(ledger)
    recorded = period_spends(ledger, spec, [(start, end) for _, _, start, end in windows], now)
    current = flight.read()
    current.runs = current.live()
    return _state(spec, windows, recorded, current, flight, refuse=False), current


@dataclass
class Reached:
    """A budget that the runs going now (this one included) have used up."""

    period: PeriodState
    total: float

    def message(self, spec: BudgetSpec) -> str:
        return (
            f"{self.period.period} budget reached{scope_text(spec)}: ${self.total:.2f} of"
            f" ${self.period.limit:.2f} recorded and in flight"
        )


class LiveRun:
    """This run's entry in the in-flight file: its spend for the others, theirs for its own check."""

    def __init__(self, flight: InflightFile, key: str, entry: Entry, state: BudgetState) -> None:
        self.flight = flight
        self.key = key
        self.entry = entry
        self.state = state
        self.written_spend = 0.0
        self.written_at = entry.updated
        self.done = False
        self._failed = False
        self.counted_in_budget_ledger = True  # the run is recorded in the ledger the budget reads
        self.ledger: Path | None = None
        self.ledger_identity: Identity | None = None
        self.checked_at = entry.updated

    def watch_ledger(self, ledger: Path, spends: list[Spend]) -> None:
        """Remember which ledger the recorded spend was read from (`ledger.identity`), to notice when
        it is rewritten or replaced (reset, prune, a CI cache restore) rather than appended to."""
        self.ledger = ledger
        self.ledger_identity = _identity(ledger)

    def _rebase(self) -> None:
        """The ledger is not the one the recorded spend came from: read it again, under the lock, so
        the runs that settle from now on are exactly those after the new figure."""
        assert self.ledger is not None
        spec = self.state.spec
        with self.flight.locked() as current:
            windows = [(p.start, p.end) for p in self.state.periods]
            again = period_spends(self.ledger, spec, windows, datetime.now(timezone.utc))
            for p, spent in zip(self.state.periods, again, strict=True):
                p.before = spent
            self.entry.baseline_seq = current.seq
            current.runs[self.key] = self.entry
        self.ledger_identity = _identity(self.ledger)

    @classmethod
    def reserve(cls, flight: InflightFile, current: State, state: BudgetState, run: RunScope) -> LiveRun:
        """Add the run's entry to `current` (the caller holds the lock and writes it)."""
        from ..record.ids import new_id
        from .inflight import Entry, host

        now = time.time()
        entry = Entry(
            pid=os.getpid(),
            host=host(),
            started_at=run.started_at,
            project=run.project,
            tags=dict(run.tags),
            spend_usd=0.0,
            reserve_usd=run.reserve,
            updated=now,
            baseline_seq=current.seq,
        )
        key = new_id(int(now * 1000))
        current.runs[key] = entry
        return cls(flight, key, entry, state)

    def totals(self, current: State, spend: float) -> list[float]:
        """Per budget: recorded at the check + settled since + the others in flight + this run's spend."""
        spec = self.state.spec
        out = []
        live = current.live()
        for p in self.state.periods:
            total = p.before.usd + spend
            for s in current.settled:
                if s.seq > self.entry.baseline_seq and p.counts(s.started_at, s.project, s.tags, spec):
                    total += s.cost_usd
            for key, e in live.items():
                if key != self.key and p.counts(e.started_at, e.project, e.tags, spec):
                    total += e.counted
            out.append(total)
        return out

    def update(self, spend: float, now: float | None = None) -> Reached | None:
        """Publish this run's spend (when it changed, or as a heartbeat); the first budget reached, if any.

        Called from a worker thread a few times a second; never raises (a file that cannot be
        written is one warning, after which the run goes on with what it last saw).
        """
        from .inflight import HEARTBEAT_S

        if self.done:
            return None
        now = time.time() if now is None else now
        try:
            ledger, identity = self.ledger, self.ledger_identity
            if ledger is not None and identity is not None and now - self.checked_at >= HEARTBEAT_S:
                from ..ledger.identity import holds

                self.checked_at = now
                if not holds(identity, ledger):
                    self._rebase()
            current = self.flight.read()
            stale = self.key not in current.runs or now - self.written_at >= HEARTBEAT_S
            if (spend != self.written_spend or stale) and not self._failed:
                with self.flight.locked() as current:
                    self.entry.spend_usd, self.entry.updated = spend, now
                    current.runs[self.key] = self.entry  # back in, if the file was rebuilt meanwhile
                self.written_spend, self.written_at = spend, now
        except LedgerError as exc:
            if not self._failed:
                self._failed = True
                self.flight.warn(f"{exc.message}; this run's spend is no longer shared")
            return None
        for p, total in zip(self.state.periods, self.totals(current, spend), strict=True):
            if total >= p.limit:
                return Reached(p, total)
        return None

    def settle(self, append: Callable[[], None], cost: float | None, started_at: str, counted: bool) -> None:
        """Record the run (`append`) and, in the same locked step, move its entry to `settled`.

        `counted`: the record went into the ledger the budget reads. A lock that cannot be had never
        costs the record: it is appended anyway and the entry is left to go stale.
        """
        from .inflight import Settled, next_seq

        self.done = True
        try:
            fd = self.flight.acquire()
        except LedgerError as exc:
            self.flight.warn(f"{exc.message}; other runs see this run's spend at their next start")
            append()
            return
        try:
            current = self.flight.read_fresh()
            current.runs.pop(self.key, None)
            try:
                append()
            except BaseException:
                with contextlib.suppress(LedgerError):
                    self.flight.commit(current)
                raise
            if counted and cost:
                current.seq = next_seq(current.seq)
                current.settled.append(
                    Settled(started_at, self.entry.project, self.entry.tags, cost, current.seq)
                )
            try:
                self.flight.commit(current)
            except LedgerError as exc:
                self.flight.warn(f"{exc.message}; the run is recorded")
        finally:
            os.close(fd)

    def release(self) -> None:
        """Drop the entry of a run that ends unrecorded (never started, untracked, our own error)."""
        if self.done:
            return
        self.done = True
        with contextlib.suppress(LedgerError), self.flight.locked() as current:
            current.runs.pop(self.key, None)


def refusal_message(p: PeriodState, spec: BudgetSpec) -> str:
    when = p.start.strftime("on %Y-%m-%d" if p.period == "daily" else "in %Y-%m")
    tzname = "UTC" if spec.tz.upper() in ("UTC", "Z") else spec.tz
    extra = ""
    if p.before.unpriced:
        extra = f" (+{p.before.unpriced} unpriced run(s) not counted)"
    spent = f"${p.before.usd:.2f} spent"
    if p.in_flight_runs:
        spent += f" + ${p.in_flight:.2f} in flight ({p.in_flight_runs} run(s) going)"
    return (
        f"{p.period} budget exceeded{scope_text(spec)}: {spent} of ${p.limit:.2f}"
        f" {when} ({tzname}){extra}; the run was not started"
    )
