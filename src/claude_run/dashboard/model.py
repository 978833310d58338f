"""The view model: what `data` answers and `render`, `page`, `server` and `/api/view` read.

Plain typed dicts, so a view is JSON as it is (`data.to_json`). Costs are floats of USD; `None`
where a figure has no known value (never $0 for unpriced usage).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Totals(TypedDict):
    runs: int
    input: int
    output: int
    cache_read: int
    cache_creation: int
    tokens: int
    cost_usd: float
    estimated_cost_usd: float
    unpriced_runs: int
    unpriced_tokens: int
    partial_runs: int  # priced runs with a part of a model with no known price
    partial_tokens: int  # ... the tokens of those parts (in `tokens`, not in the cost)
    cache_hit_ratio: float | None
    cache_savings_usd: float | None
    unpriced_savings_tokens: int


class Group(TypedDict):
    key: str
    totals: Totals


class CiGroup(TypedDict):
    workflow: str
    job: str
    totals: Totals
    url: str | None  # the latest run's CI page


class DayModel(TypedDict):
    day: str
    model: str
    runs: int
    tokens: int
    cost_usd: float
    unpriced_tokens: int


class Day(TypedDict):
    day: str
    runs: int
    cost_usd: float
    tokens: int
    unpriced_tokens: int
    moving_avg_usd: float  # the mean daily cost of the 7 days ending this day


class CacheDay(TypedDict):
    day: str
    hit_ratio: float | None
    savings_usd: float | None


class RunPart(TypedDict):
    model: str
    priced: bool
    cost_usd: float | None  # None: no known price (never $0)
    tokens: int


class Run(TypedDict):
    id: str
    started_at: str
    day: str
    status: str
    mode: str
    user: str
    model: str
    project: str
    branch: str
    tags: dict[str, str]
    tokens: int
    input: int
    output: int
    cache_read: int
    cache_creation: int
    cost_usd: float | None
    cost_source: str
    partial: bool
    parts: list[RunPart]
    duration_ms: int | None
    ci_url: str | None
    ci_label: str | None


class QuotaDay(TypedDict):
    day: str
    five_hour: float | None  # the day's highest 5-hour utilization (a fraction)
    seven_day: float | None
    runs: int  # runs of the day that reported a quota


class QuotaLatest(TypedDict):
    five_hour: float | None
    five_hour_resets_at: str | None
    seven_day: float | None
    seven_day_resets_at: str | None
    seen_at: str | None


class Quota(TypedDict):
    by_day: list[QuotaDay]  # empty when no run of the view reported a quota (API-key logins)
    latest: QuotaLatest | None


class PeriodInfo(TypedDict):
    text: str  # as asked: 30d, this-month, 2026-01-01..2026-01-31, all
    label: str  # the dates covered: 2026-11-01 to 2026-11-05 (this-month)
    first: str | None  # first day, last day begun (None: all time)
    last: str | None


class Change(TypedDict):
    first: str  # the previous period's days
    last: str
    runs: int
    cost_usd: float
    change_usd: float
    change_pct: float | None  # None when the previous period cost nothing


class Month(TypedDict):
    first: str
    days_elapsed: int
    days_in_month: int
    runs: int
    cost_usd: float
    unpriced_runs: int
    partial_runs: int
    projection_usd: float  # month to date / days begun x days of the month
    cumulative: list[tuple[str, float]]  # (day, cost so far) for the days begun


class View(TypedDict):
    generated_at: str
    ledger: str
    timezone: str
    filters: dict[str, str | None]
    options: dict[str, list[str]]
    period: PeriodInfo
    days: list[str]
    models: list[str]
    totals: Totals
    change: Change | None
    month: Month
    budgets: dict[str, float | None]
    by_day: list[Day]
    by_day_by_model: list[DayModel]
    by_project: list[Group]
    by_tag: list[Group]
    by_branch: list[Group]  # keyed "project · branch": branch names repeat across projects
    by_user: list[Group]
    by_mode: list[Group]
    by_status: list[Group]
    by_pr: list[Group]
    by_ci: list[CiGroup]
    cache: dict[str, Any]
    latest_runs: list[Run]
    quota: Quota
    read: dict[str, int]
