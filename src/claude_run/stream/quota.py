"""Window maths for `claude-run ledger quota`: pure functions of records and a time, no I/O.

The figures, and the rules behind them:
- **Utilization** of each plan window (5-hour, 7-day...) is the latest state any record reports
  (`rate_limits.windows`, see `ratelimits`), by when it was seen. A window whose reset time has
  passed since is *expired*: its figure says nothing about the window running now.
- **5-hour windows of the ledger** (spend and tokens): when the latest 5-hour figure is current,
  the current window is exactly Claude's, `[resets_at - 5h, resets_at)`. Before it (or without
  one: API-key users), windows are cut as ccusage cuts its blocks: a window starts at the first
  run's start floored to the UTC hour and lasts 5 hours; the next run after that starts the next.
  A run counts whole toward the window it started in. UTC hours, whatever the display zone: the
  windows are the same for everyone reading the ledger.
- **Burn rate**: the spend and tokens of the last hour, per hour. A run that overlaps the hour
  counts in proportion to the part of its duration inside it (spend is spread evenly over a run).
- **Projection**: the 5-hour utilization per dollar is estimated from the current window
  (`utilization at seen_at / ledger spend in the window up to seen_at`); the figure now is the one
  seen plus what the ledger spent since, and at the last hour's burn rate it reaches 100 % at
  `now + (1 - now's figure) / (burn * utilization per dollar)` — "not before reset" when that is at
  or after the reset, or when nothing burns. Usage outside the ledger (claude.ai, other machines)
  is in the utilization but not the spend, so the ratio absorbs it as long as the mix stays alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..record.schema import parse_iso, total_tokens
from .ratelimits import FIVE_HOUR

FIVE_HOURS = timedelta(hours=5)
BURN_SPAN = timedelta(hours=1)


@dataclass(frozen=True)
class Run:
    start: datetime  # aware
    end: datetime  # aware, >= start
    cost: float
    tokens: int
    priced: bool = True


@dataclass(frozen=True)
class Observation:
    """One window's state as a record reported it."""

    window: str
    utilization: float | None
    resets_at: datetime | None
    status: str | None
    seen_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.resets_at is not None and self.resets_at <= now


@dataclass
class Block:
    start: datetime
    end: datetime
    current: bool = False
    runs: int = 0
    cost: float = 0.0
    tokens: int = 0
    unpriced: int = 0  # runs with no cost (counted in runs and tokens, not in cost)

    def add(self, run: Run) -> None:
        self.runs += 1
        self.cost += run.cost
        self.tokens += run.tokens
        if not run.priced:
            self.unpriced += 1


@dataclass(frozen=True)
class Projection:
    at: datetime | None  # when the 5-hour window reaches 100 %; None: not before reset / unknown
    reason: str  # "reached", "projected", "not before reset", or why there is no projection
    utilization_now: float | None = None
    per_hour: float | None = None  # utilization per hour at the burn rate


@dataclass
class QuotaReport:
    now: datetime
    windows: dict[str, Observation] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    burn_cost_per_h: float = 0.0
    burn_tokens_per_h: float = 0.0
    projection: Projection | None = None
    runs: int = 0

    @property
    def current(self) -> Block | None:
        return self.blocks[-1] if self.blocks and self.blocks[-1].current else None


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def runs_from_records(records: Iterable[Mapping[str, Any]]) -> list[Run]:
    """The runs with a readable start, sorted by start; an end before the start counts as the start."""
    out: list[Run] = []
    for rec in records:
        start = _when(rec.get("started_at"))
        if start is None:
            continue
        end = _when(rec.get("ended_at")) or start
        raw_cost = rec.get("cost_usd")
        cost = (
            float(raw_cost) if isinstance(raw_cost, (int, float)) and not isinstance(raw_cost, bool) else None
        )
        tokens = rec.get("tokens")
        out.append(
            Run(
                start,
                max(end, start),
                cost or 0.0,
                total_tokens(tokens) if isinstance(tokens, dict) else 0,
                cost is not None,
            )
        )
    out.sort(key=lambda r: r.start)
    return out


def observations_from_records(records: Iterable[Mapping[str, Any]]) -> list[Observation]:
    out: list[Observation] = []
    for rec in records:
        limits = rec.get("rate_limits")
        if not isinstance(limits, dict):
            continue
        windows = limits.get("windows")
        if not isinstance(windows, dict):
            continue
        for name, state in windows.items():
            if not isinstance(state, dict):
                continue
            seen = _when(state.get("seen_at")) or _when(limits.get("seen_at"))
            if seen is None:
                continue
            u = state.get("utilization")
            status = state.get("status")
            out.append(
                Observation(
                    name,
                    float(u) if isinstance(u, (int, float)) and not isinstance(u, bool) else None,
                    _when(state.get("resets_at")),
                    status if isinstance(status, str) else None,
                    seen,
                )
            )
    return out


def latest_states(observations: Iterable[Observation]) -> dict[str, Observation]:
    """Each window's most recently seen state (ties: the later in ledger order)."""
    latest: dict[str, Observation] = {}
    for obs in observations:
        known = latest.get(obs.window)
        if known is None or obs.seen_at >= known.seen_at:
            latest[obs.window] = obs
    return latest


def share(run: Run, lo: datetime, hi: datetime) -> float:
    """The fraction of a run's duration inside [lo, hi); an instant run counts whole where it falls."""
    if run.end <= run.start:
        return 1.0 if lo <= run.start < hi else 0.0
    inside = (min(run.end, hi) - max(run.start, lo)).total_seconds()
    return max(inside, 0.0) / (run.end - run.start).total_seconds()


def spend_between(runs: Iterable[Run], lo: datetime, hi: datetime) -> tuple[float, float]:
    """(cost, tokens) of the runs' parts inside [lo, hi)."""
    cost = tokens = 0.0
    for run in runs:
        part = share(run, lo, hi)
        if part:
            cost += run.cost * part
            tokens += run.tokens * part
    return cost, tokens


def floor_hour(t: datetime) -> datetime:
    utc = t.astimezone(timezone.utc)
    return utc.replace(minute=0, second=0, microsecond=0)


def blocks(runs: list[Run], now: datetime, anchor: datetime | None = None, recent: int = 4) -> list[Block]:
    """The current 5-hour window (when there is one) and up to `recent` windows before it, oldest first.

    `anchor`: the known reset of the current 5-hour window (in the future); without it, the last
    block is current when `now` is inside it.
    """
    cut = anchor - FIVE_HOURS if anchor is not None else None
    out: list[Block] = []
    for run in runs:
        if cut is not None and run.start >= cut:
            break
        if not out or run.start >= out[-1].end:
            start = floor_hour(run.start)
            end = start + FIVE_HOURS
            if cut is not None:
                end = min(end, cut)
            out.append(Block(start, end))
        out[-1].add(run)
    if cut is not None and anchor is not None:
        current = Block(cut, anchor, current=True)
        for run in runs:
            if cut <= run.start < anchor:
                current.add(run)
        out.append(current)
    elif out and out[-1].start <= now < out[-1].end:
        out[-1].current = True
    keep = recent + 1 if out and out[-1].current else recent
    return out[-keep:] if keep > 0 else []


def project(
    five: Observation | None, runs: list[Run], now: datetime, burn_cost_per_h: float
) -> Projection | None:
    """When the 5-hour window reaches 100 % at the last hour's burn rate (see the module doc)."""
    if five is None:
        return None
    if five.utilization is None or five.resets_at is None:
        return Projection(None, "the last 5-hour figure has no utilization or reset time")
    if five.expired(now):
        return Projection(None, "the 5-hour window reset after the last figure; a new run will report it")
    if five.utilization >= 1:
        return Projection(now, "reached", five.utilization, None)
    start = five.resets_at - FIVE_HOURS
    before, _ = spend_between(runs, start, five.seen_at)
    after, _ = spend_between(runs, five.seen_at, now)
    per_usd = five.utilization / before if before > 0 else None
    u_now = five.utilization + per_usd * after if per_usd is not None else None
    if per_usd is None and after <= 0:
        u_now = five.utilization  # nothing spent since the figure: it still holds
    if u_now is not None and u_now >= 1:
        return Projection(now, "reached", u_now, per_usd * burn_cost_per_h if per_usd is not None else None)
    if burn_cost_per_h <= 0:
        return Projection(None, "not before reset", u_now, 0.0)
    if per_usd is None or u_now is None:
        return Projection(None, "no ledger spend in this window before the figure was seen, to scale by")
    per_hour = per_usd * burn_cost_per_h
    at = now + timedelta(hours=(1 - u_now) / per_hour)
    if at >= five.resets_at:
        return Projection(None, "not before reset", u_now, per_hour)
    return Projection(at, "projected", u_now, per_hour)


def report(records: Iterable[Mapping[str, Any]], now: datetime, recent: int = 4) -> QuotaReport:
    """Everything `ledger quota` shows, from the counted records and the time now (aware)."""
    rows = list(records)
    runs = runs_from_records(rows)
    states = latest_states(observations_from_records(rows))
    five = states.get(FIVE_HOUR)
    anchor = five.resets_at if five is not None and not five.expired(now) else None
    if anchor is not None and anchor - FIVE_HOURS > now:
        anchor = None  # a reset further away than a window is long: not a 5-hour window we can place
    cost, tokens = spend_between(runs, now - BURN_SPAN, now)
    hours = BURN_SPAN.total_seconds() / 3600
    rep = QuotaReport(
        now=now,
        windows=states,
        blocks=blocks(runs, now, anchor, recent),
        burn_cost_per_h=cost / hours,
        burn_tokens_per_h=tokens / hours,
        runs=len(runs),
    )
    rep.projection = project(five, runs, now, rep.burn_cost_per_h)
    return rep
