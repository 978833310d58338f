"""Ledger -> the dashboard's view model, answered by the one read engine (`claude_run.query`).

The page never sees records, only aggregates and the latest N runs, so a 1,000,000-record ledger
costs the browser the same as a ten-record one.

Every figure comes from the engine's counted rows (`_lines`, one per record line with `counted`
from the fold; `_parts`, the counted records' model parts with the residual on the main part), with
the filters of `ledger summary` (`query.summary.where_sql`) and its labels (`dim_sql`), so the page
and `ledger summary` cannot disagree:
- totals and the panels by group (project, branch, user, status, mode, CI job, PR, tag, day) count
  whole records, priced or unpriced by the record's own cost (as `ledger summary --by project`);
  the charts by model count model parts, priced by the part's own cost (as `--by day,model`), so a
  priced part of a partly priced run is never drawn under its unpriced model; unpriced usage is
  kept apart, never $0;
- under the model filter (an exact model name) everything counts that model's parts;
- cache savings: cache reads of priced usage per model, times the model's list-price rate.

`Live` keeps one engine open and reopens it when the ledger files changed (the server's watcher);
`view(filters)` answers any filter set from it, cached until the ledger changes. `model.View` is
the contract with `render`, `page` and `server`; `periods` turns the period asked for into days.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import LedgerError, UsageError
from ..ledger.store import segments
from ..query.filters import Filters as QueryFilters
from ..query.timeparse import Bound, resolve_tz
from . import periods
from .model import (
    Change,
    Group,
    Month,
    Quota,
    QuotaDay,
    QuotaLatest,
    Run,
    RunPart,
    Totals,
    View,
)

if TYPE_CHECKING:
    from ..query.engine import Engine

LATEST_SHOWN = 50
MAX_TAG_VALUES = 64  # a tag key with more distinct values is left out of the tag chart and filter
NONE_LABEL = "(none)"
PERIODS: tuple[str, ...] = periods.CHOICES
MOVING_DAYS = 7  # the moving average of the daily cost chart
MAX_AXIS_DAYS = 3660  # a longer period's day axis starts at its first run, not at its first day

#: The plan quota a run reported (`rate_limits`): the quota chart's figures.
QUOTA_COLUMNS = ("quota_5h", "quota_7d", "quota_5h_resets_at", "quota_7d_resets_at", "quota_seen_at")
#: The CI panel's and the latest-runs table's CI columns. Not in a lean read (the `ci` object is the
#: costliest column to read: 21 s against 13 s on a million records); an engine on the index has
#: them, and `Live` reopens on the index once it is built.
CI_COLUMNS = ("ci_provider", "ci_workflow", "ci_job", "ci_pr", "ci_url")
#: What the dashboard reads of a record (a large ledger without an index is read for these alone).
COLUMNS = (
    "priced",
    "cost_usd",
    "cost_source",
    "input",
    "output",
    "cache_read",
    "cache_creation",
    "model",
    "models",
    "project",
    "branch",
    "tags",
    "status",
    "mode",
    "user",
    "duration_ms",
    *QUOTA_COLUMNS,
)


@dataclass(frozen=True)
class Budgets:
    """The daily / monthly budgets drawn as lines (`--budget-daily`/`--budget-monthly`, as runs take them)."""

    daily: float | None = None
    monthly: float | None = None


@dataclass(frozen=True)
class Filters:
    """What the page (or `ledger report --html`) asked for. None means everything."""

    period: str = "30d"
    project: str | None = None
    model: str | None = None
    tag: str | None = None  # "KEY=VALUE"

    def as_dict(self) -> dict[str, str | None]:
        return {"period": self.period, "project": self.project, "model": self.model, "tag": self.tag}


def parse_filters(
    period: str | None = None, project: str | None = None, model: str | None = None, tag: str | None = None
) -> Filters:
    """Validate filters from a query string or the command line; empty strings mean 'no filter'."""
    per = (period or "30d").strip().lower()
    periods.resolve(per, resolve_tz(None), date.today())  # the CLI's grammar; a UsageError if not
    tag_value = (tag or "").strip() or None
    if tag_value is not None and "=" not in tag_value:
        raise UsageError(f"bad tag filter {tag!r}: expected KEY=VALUE")
    return Filters(per, (project or "").strip() or None, (model or "").strip() or None, tag_value)


# ---------------------------------------------------------------- sums


@dataclass
class _Sums:
    """One group's figures, priced and unpriced apart as `ledger summary` keeps them."""

    runs: int = 0
    unpriced_runs: int = 0
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # input, output, read, write
    unpriced_tokens: int = 0
    partial_runs: int = 0
    partial_tokens: int = 0
    cost: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)
    savings: Decimal = Decimal(0)  # cache reads of priced usage times their model's rate
    priced_cache: int = 0  # cache reads of priced usage
    unknown_cache: int = 0  # ... of models without a list price
    rated: int = 0  # priced parts with cache reads and a list price

    def add(self, r: Sequence[Any]) -> None:
        """One row of `_FIGURES` (after the group's labels)."""
        priced, runs = bool(r[0]), int(r[1])
        toks = [int(x or 0) for x in r[2:6]]
        self.runs += runs
        for i in range(4):
            self.tokens[i] += toks[i]
        if priced:
            self.cost += r[6] or 0
            self.estimated += r[7] or 0
            self.savings += r[8] or 0
            self.unknown_cache += int(r[9] or 0)
            self.rated += int(r[10] or 0)
            self.priced_cache += toks[2]
            self.partial_runs += int(r[11] or 0)
            self.partial_tokens += int(r[12] or 0)
        else:
            self.unpriced_runs += runs
            self.unpriced_tokens += sum(toks)

    def merge(self, other: _Sums) -> None:
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, list):
                setattr(self, name, [a + b for a, b in zip(mine, theirs, strict=True)])
            else:
                setattr(self, name, mine + theirs)

    def totals(self) -> Totals:
        inp, out, read, write = self.tokens
        # `ledger summary`'s rule: unknown when cache reads were priced but none had a list price.
        known = self.rated > 0 or not self.priced_cache
        prompt = inp + read + write
        return {
            "runs": self.runs,
            "input": inp,
            "output": out,
            "cache_read": read,
            "cache_creation": write,
            "tokens": inp + out + read + write,
            "cost_usd": float(self.cost),
            "estimated_cost_usd": float(self.estimated),
            "unpriced_runs": self.unpriced_runs,
            "unpriced_tokens": self.unpriced_tokens,
            "partial_runs": self.partial_runs,
            "partial_tokens": self.partial_tokens,
            "cache_hit_ratio": read / prompt if prompt else None,
            "cache_savings_usd": float(self.savings) if known else None,
            "unpriced_savings_tokens": self.unknown_cache,
        }


def _order(totals: dict[str, Totals]) -> list[str]:
    return sorted(totals, key=lambda k: (-totals[k]["cost_usd"], -totals[k]["runs"], k))


def _groups(sums: dict[str, _Sums], limit: int) -> list[Group]:
    totals = {k: s.totals() for k, s in sums.items()}
    ordered = _order(totals)
    out: list[Group] = [{"key": k, "totals": totals[k]} for k in ordered[:limit]]
    if len(ordered) > limit:
        rest = _Sums()
        for k in ordered[limit:]:
            rest.merge(sums[k])
        out.append({"key": f"{len(ordered) - limit} others", "totals": rest.totals()})
    return out


# ---------------------------------------------------------------- SQL

#: Per opened engine, the counted model parts with their record's labels and each part's cache
#: savings (`_dash`), so that a view is a few scans of one table instead of joins of the views.
#: Tags are a reference (`th`) to the record's tag set in `_tagsets`: a million records carry a
#: few thousand distinct sets, and copying the maps would be half the cost of the table.
#: `partial`: a priced record with a part of a model with no known price (its cost is the priced
#: parts'). Reads `_lines l`, `_parts p` and `_rates r`; `{day}` is `query.summary.dim_sql("day", …)`.
_DASH_SQL = """
CREATE OR REPLACE TEMP TABLE _dash AS
SELECT l.rid, true AS counted, l.started_at, {day} AS day, l.project, l.branch, hash(l.tags) AS th,
       {dims},
       l.priced AS lpr, coalesce(l.cost_source = 'estimate', false) AS est,
       l.priced AND l.rid IN (SELECT rid FROM _parts WHERE NOT part_priced) AS partial,
       p.model, p.part_priced AS pp, p.is_main, p.input, p.output, p.cache_read, p.cache_creation, p.cost,
       CAST(p.cache_read * r.delta AS DECIMAL(38, 18)) AS sav,
       CASE WHEN r.delta IS NULL THEN p.cache_read ELSE 0 END AS unk, r.delta IS NOT NULL AS rated
FROM _lines l JOIN _parts p USING (rid) LEFT JOIN _rates r ON r.model = p.model
WHERE l.counted AND l.started_at IS NOT NULL
"""
#: The record columns `_dash` copies when the engine read them (a lean read may lack some).
_DASH_DIMS = ("status", "mode", "user", "ci_workflow", "ci_job", "ci_pr", "ci_url")
#: The columns of `_dash` that `_figures` and the charts by model read.
_DASH_FIGURES = (
    "model, pp, lpr, est, partial, is_main, input, output, cache_read, cache_creation, cost, sav, unk, rated"
)
_TAGSETS_SQL = """
CREATE OR REPLACE TEMP TABLE _tagsets AS
SELECT hash(tags) AS th, any_value(tags) AS tags FROM _lines
WHERE counted AND started_at IS NOT NULL AND cardinality(tags) > 0 GROUP BY th
"""


def _where(f: Filters, tz: tzinfo, start: int | None, end: int | None) -> tuple[str, list[Any]]:
    """The WHERE over `_dash l` for days [start, end) (the units counted; under the model filter,
    that model's parts): `ledger summary`'s `where_sql`, with `--since`/`--until` as whole days."""
    from ..query.summary import where_sql

    since = None if start is None else Bound(day=start)
    until = None if end is None else Bound(day=end)
    projects = (f.project,) if f.project is not None and f.project != NONE_LABEL else ()
    where, params = where_sql(QueryFilters(since=since, until=until, projects=projects), tz, False)
    if f.project == NONE_LABEL:
        where += " AND l.project IS NULL"
    if f.tag is not None:  # `where_sql`'s tag test, on the record's tag set
        where += " AND l.th IN (SELECT th FROM _tagsets WHERE tags[?] = ?)"
        params += list(f.tag.partition("=")[::2])
    if f.model is not None:
        where += " AND l.model = ?"
        params.append(f.model)
    return where, params


def _figures(by_part: bool, savings: bool = True) -> str:
    """A unit is a record (priced by its own cost; its main part carries the run), or under the
    model filter a part (priced by its own cost: then no part is 'partial'). Without `savings`
    the cache savings are not summed (None in the totals): the panels by group do not show them,
    and their 38-digit sums are half the cost of those queries."""
    upr = "pp" if by_part else "lpr"
    run = "" if by_part else " FILTER (WHERE is_main)"
    partial = "false" if by_part else "partial"
    saved = (
        f"""sum(sav) FILTER (WHERE {upr}) AS f_sav, sum(unk) FILTER (WHERE {upr}) AS f_unk,
        count(*) FILTER (WHERE {upr} AND rated AND cache_read <> 0) AS f_rated"""
        if savings
        else "NULL AS f_sav, 0 AS f_unk, 0 AS f_rated"
    )
    return f"""
        {upr} AS upr, count(*){run} AS runs,
        sum(input) AS f_in, sum(output) AS f_out, sum(cache_read) AS f_cr, sum(cache_creation) AS f_cw,
        sum(cost) FILTER (WHERE {upr}) AS f_cost, sum(cost) FILTER (WHERE {upr} AND est) AS f_est,
        {saved},
        count(*) FILTER (WHERE {partial} AND is_main) AS f_partial,
        sum(input + output + cache_read + cache_creation) FILTER (WHERE {partial} AND NOT pp) AS f_ptok
    """


@dataclass
class _Static:
    """What a view needs that does not depend on its filters: counted once per opened engine."""

    tz: tzinfo
    projects: list[str]
    models: list[str]
    tags: list[str]
    uncharted: list[str]
    read: dict[str, int]
    has_quota: bool = True


def _prepare(eng: Engine, ledger: Path, total_bytes: int, tz: tzinfo | None = None) -> _Static:
    """Build `_dash` on a freshly opened engine and count what every view shows alike."""
    from ..query.index import index_dir
    from ..query.summary import dim_sql
    from ..query.totals import SavingsRates

    tz = tz or resolve_tz(None)
    con = eng.con
    con.execute("SET enable_progress_bar = false")  # a server's terminal is no place for one
    models = sorted(str(r[0]) for r in con.execute("SELECT DISTINCT model FROM _parts").fetchall())
    cache = index_dir(ledger)
    rates = SavingsRates(cache if cache.is_dir() else None)
    con.execute("CREATE OR REPLACE TEMP TABLE _rates (model VARCHAR, delta DECIMAL(38, 18))")
    known = [(m, rates.get(m)) for m in models]
    rates.save()
    if known:
        con.executemany("INSERT INTO _rates VALUES (?, ?)", [[m, d] for m, d in known])
    present = {str(r[0]) for r in con.execute("DESCRIBE SELECT * FROM _lines").fetchall()}
    dims = ", ".join(f'l."{c}"' if c in present else f'NULL::VARCHAR AS "{c}"' for c in _DASH_DIMS)
    con.execute(_DASH_SQL.format(day=dim_sql("day", tz, False), dims=dims))
    con.execute(_TAGSETS_SQL)
    projects = sorted(
        str(r[0])
        for r in con.execute(f"SELECT DISTINCT coalesce(project, '{NONE_LABEL}') FROM _dash").fetchall()
    )
    dated_models = sorted(str(r[0]) for r in con.execute("SELECT DISTINCT model FROM _dash").fetchall())
    tags: list[str] = []
    uncharted: list[str] = []
    rows = con.execute(
        f"""
        WITH t AS (SELECT unnest(map_keys(tags)) AS k, unnest(map_values(tags)) AS v FROM _tagsets)
        SELECT k, CASE WHEN count(DISTINCT v) <= {MAX_TAG_VALUES} THEN list(DISTINCT v) END
        FROM t WHERE v IS NOT NULL GROUP BY k
        """
    ).fetchall()
    for k, values in rows:
        if values is None:
            uncharted.append(str(k))
        else:
            tags += [f"{k}={v}" for v in values]
    counts = con.execute("SELECT count(*), count(*) FILTER (WHERE NOT counted) FROM _lines").fetchone()
    records, not_counted = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    return _Static(
        tz,
        projects,
        dated_models,
        sorted(tags),
        sorted(uncharted),
        {
            "records": records,
            "bad_lines": _bad_lines(eng.warnings),
            "not_counted": not_counted,
            "read_bytes": total_bytes,
            "total_bytes": total_bytes,
            "ci_columns": int(all(c in present for c in CI_COLUMNS)),
        },
        all(c in present for c in QUOTA_COLUMNS),
    )


_BAD = re.compile(r"skipped (\d+) unreadable")


def _bad_lines(warnings: list[str]) -> int:
    """The engine's count of unreadable lines (it reports them as a warning)."""
    for w in warnings:
        m = _BAD.search(w)
        if m:
            return int(m.group(1))
    return 0


def _link(url: Any) -> str | None:
    """Never render a javascript: or other scheme as a link."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _ci(provider: Any, workflow: Any, job: Any, url: Any) -> tuple[str | None, str | None]:
    bits = [str(b) for b in (provider, workflow, job) if isinstance(b, str) and b]
    return _link(url), " / ".join(bits) or None


def _latest(eng: Engine, tz: tzinfo, where: str, params: list[Any], limit: int) -> list[Run]:
    """The newest `limit` counted records among the units (by start time), with their parts."""
    rows = eng.con.execute(
        f"""
        WITH top AS (SELECT rid, max(started_at) AS started_at FROM _dash l WHERE {where}
                     GROUP BY rid ORDER BY started_at DESC, rid DESC LIMIT {int(limit)})
        SELECT d.rid, d.model, d.pp, d.cost, d.input + d.output + d.cache_read + d.cache_creation
        FROM _dash d SEMI JOIN top USING (rid) ORDER BY d.rid, d.is_main DESC, d.model
        """,
        params,
    ).fetchall()
    parts: dict[int, list[RunPart]] = {}
    for rid, model, pp, cost, tokens in rows:
        parts.setdefault(int(rid), []).append(
            {
                "model": str(model),
                "priced": bool(pp),
                "cost_usd": float(cost) if pp and cost is not None else None,
                "tokens": int(tokens or 0),
            }
        )
    if not parts:
        return []
    from ..query.summary import dim_sql

    present = {str(r[0]) for r in eng.con.execute("DESCRIBE SELECT * FROM _lines").fetchall()}
    ci = ", ".join(
        f"l.{c}" if c in present else "NULL" for c in ("ci_provider", "ci_workflow", "ci_job", "ci_url")
    )
    other = ", ".join(f"l.{c}" if c in present else "NULL" for c in ("mode", "user"))
    rows = eng.con.execute(
        f"""
        SELECT l.rid, l.id, strftime(timezone('UTC', l.started_at), '%Y-%m-%dT%H:%M:%S.%gZ'),
               {dim_sql("day", tz, False)},
               l.status, l.model, l.project, l.branch, l.tags, l.input, l.output, l.cache_read,
               l.cache_creation, CASE WHEN l.priced THEN l.cost_usd END, l.cost_source, l.duration_ms,
               {other}, {ci}
        FROM _lines l WHERE l.rid IN ({", ".join(str(r) for r in parts)})
        ORDER BY l.started_at DESC, l.rid DESC
        """
    ).fetchall()
    out: list[Run] = []
    for r in rows:
        url, label = _ci(*r[18:22])
        inp, outp, read, write = (int(x or 0) for x in r[9:13])
        cost = float(r[13]) if r[13] is not None else None
        mine = parts[int(r[0])]
        out.append(
            {
                "id": str(r[1]),
                "started_at": str(r[2]),
                "day": str(r[3]),
                "status": r[4] or NONE_LABEL,
                "mode": r[16] or NONE_LABEL,
                "user": r[17] or NONE_LABEL,
                "model": str(r[5]),
                "project": r[6] or NONE_LABEL,
                "branch": r[7] or NONE_LABEL,
                "tags": {str(k): str(v) for k, v in (r[8] or {}).items() if v is not None},
                "tokens": inp + outp + read + write,
                "input": inp,
                "output": outp,
                "cache_read": read,
                "cache_creation": write,
                "cost_usd": cost,
                "cost_source": r[14] or NONE_LABEL,
                "partial": cost is not None and any(not p["priced"] for p in mine),
                "parts": mine,
                "duration_ms": int(r[15]) if r[15] is not None else None,
                "ci_url": url,
                "ci_label": label,
            }
        )
    return out


_NO_QUOTA: Quota = {"by_day": [], "latest": None}


def _stamp(value: Any) -> str | None:
    """A TIMESTAMPTZ as the record writes times."""
    from ..record.schema import iso_utc

    return iso_utc(value.timestamp()) if value is not None else None


def _quota(eng: Engine, where: str, params: list[Any], has_quota: bool) -> Quota:
    """The plan quota the view's runs reported, per day of their start: each window's highest
    utilization that day (a 5-hour window fills and resets several times a day: the peak is what
    tells how close the day came to the limit); and each window's latest figure, by when it was seen."""
    if not has_quota:
        return _NO_QUOTA
    seen = "coalesce(q.quota_seen_at, q.started_at)"
    rows = eng.con.execute(
        f"""
        WITH r AS (SELECT DISTINCT rid, day FROM _dash l WHERE {where})
        SELECT r.day, max(q.quota_5h), max(q.quota_7d), count(*),
               arg_max(q.quota_5h, {seen}) FILTER (WHERE q.quota_5h IS NOT NULL),
               arg_max(q.quota_5h_resets_at, {seen}) FILTER (WHERE q.quota_5h IS NOT NULL),
               arg_max(q.quota_7d, {seen}) FILTER (WHERE q.quota_7d IS NOT NULL),
               arg_max(q.quota_7d_resets_at, {seen}) FILTER (WHERE q.quota_7d IS NOT NULL),
               max({seen})
        FROM r JOIN _lines q USING (rid)
        WHERE q.quota_5h IS NOT NULL OR q.quota_7d IS NOT NULL
        GROUP BY r.day ORDER BY r.day
        """,
        params,
    ).fetchall()
    if not rows:
        return _NO_QUOTA
    by_day: list[QuotaDay] = [
        {"day": str(r[0]), "five_hour": r[1], "seven_day": r[2], "runs": int(r[3])} for r in rows
    ]
    # The latest figure of each window: the last day that has one holds it.
    five = next((r for r in reversed(rows) if r[4] is not None), None)
    seven = next((r for r in reversed(rows) if r[6] is not None), None)
    latest: QuotaLatest = {
        "five_hour": five[4] if five else None,
        "five_hour_resets_at": _stamp(five[5]) if five else None,
        "seven_day": seven[6] if seven else None,
        "seven_day_resets_at": _stamp(seven[7]) if seven else None,
        "seen_at": _stamp(rows[-1][8]),
    }
    return {"by_day": by_day, "latest": latest}


#: The panels grouped in one scan (GROUPING SETS): name -> the label columns of `_g` it groups by.
_SETS: dict[str, tuple[str, ...]] = {
    "project": ("pj",),
    "branch": ("pj", "br"),
    "user": ("usr",),
    "mode": ("md",),
    "status": ("st",),
    "ci": ("wf", "jb"),
    "pr": ("pr",),
}
_LABELS = ("pj", "br", "usr", "md", "st", "wf", "jb", "pr")


def _mask(cols: tuple[str, ...]) -> int:
    """DuckDB's grouping() of `_LABELS` for a set grouped by `cols` (a 1 bit per label left out)."""
    n = len(_LABELS)
    return sum(1 << (n - 1 - i) for i, c in enumerate(_LABELS) if c not in cols)


def _by_day(eng: Engine, f: Filters, tz: tzinfo, start: int, end: int, figures: str) -> dict[str, _Sums]:
    """Day totals over [start, end): the one source of the period change, moving average and month."""
    where, params = _where(f, tz, start, end)
    out: dict[str, _Sums] = {}
    for r in eng.con.execute(
        f"SELECT day, {figures} FROM _dash l WHERE {where} GROUP BY day, upr", params
    ).fetchall():
        out.setdefault(str(r[0]), _Sums()).add(r[1:])
    return out


def _sum_days(by_day: dict[str, _Sums], start: int, end: int) -> _Sums:
    total = _Sums()
    for day in periods.day_range(start, end):
        if day in by_day:
            total.merge(by_day[day])
    return total


def compute(
    eng: Engine,
    static: _Static,
    ledger: Path,
    filters: Filters,
    *,
    today: date | None = None,
    latest: int = LATEST_SHOWN,
    budgets: Budgets | None = None,
) -> View:
    """The view model for one filter set, from an engine `_prepare`d into `static`."""
    from ..query.summary import dim_sql

    tz = static.tz
    today = today or datetime.now(tz).date()
    span = periods.resolve(filters.period, tz, today)
    where, params = _where(filters, tz, span.start, span.end)
    figures = _figures(filters.model is not None)
    con = eng.con
    total = _Sums()
    sums: dict[str, dict[Any, _Sums]] = {name: {} for name in ("day", *_SETS)}
    ci_links: dict[tuple[str, str], str | None] = {}
    day_model: dict[tuple[str, str], list[Any]] = {}
    model_rank: dict[str, list[Any]] = {}
    label = {
        "pj": dim_sql("project", tz, False),
        "br": dim_sql("branch", tz, False),
        "usr": f"coalesce(l.user, '{NONE_LABEL}')",
        "md": dim_sql("mode", tz, False),
        "st": dim_sql("status", tz, False),
        "wf": f"coalesce(l.ci_workflow, '{NONE_LABEL}')",
        "jb": f"coalesce(l.ci_job, '{NONE_LABEL}')",
        "pr": f"coalesce(l.ci_pr, '{NONE_LABEL}')",
    }
    # The charts by day and model, and the totals (one scan)...
    for day, model, pp, parts, part_cost, *figs in con.execute(
        f"""SELECT day, model, pp, count(*), sum(cost), {figures} FROM _dash l WHERE {where}
            GROUP BY day, model, pp, upr""",
        params,
    ).fetchall():
        sums["day"].setdefault(day, _Sums()).add(figs)
        total.add(figs)
        # The charts by model count parts, each priced by its own cost (`--by day,model`):
        # every part is a run of its row there, and an unpriced part is never $0 — nor is a
        # priced part of a partly priced run ever drawn under the unpriced main model.
        tokens = sum(int(x or 0) for x in figs[2:6])
        dm = day_model.setdefault((day, model), [0, 0, Decimal(0), 0])
        rank = model_rank.setdefault(model, [Decimal(0), 0])
        dm[0] += int(parts)
        dm[1] += tokens
        rank[1] += tokens
        if pp:
            dm[2] += part_cost or 0
            rank[0] += part_cost or 0
        else:
            dm[3] += tokens
    # ... then the panels by group (another, without savings).
    sets = ", ".join(f"({', '.join((*cols, 'upr'))})" for cols in _SETS.values())
    kinds = {_mask(cols): name for name, cols in _SETS.items()}
    light = _figures(filters.model is not None, savings=False)
    n = len(_LABELS)
    for r in con.execute(
        f"""
        SELECT grouping({", ".join(_LABELS)}), {", ".join(_LABELS)}, {light}
        FROM (SELECT {_DASH_FIGURES}, {", ".join(f"{v} AS {k}" for k, v in label.items())}
              FROM _dash l WHERE {where}) l
        GROUP BY GROUPING SETS ({sets})
        """,
        params,
    ).fetchall():
        kind = kinds[r[0]]
        lab = dict(zip(_LABELS, r[1 : n + 1], strict=True))
        if kind == "branch":
            key: Any = f"{lab['pj']} · {lab['br']}"
        elif kind == "ci":
            key = (lab["wf"], lab["jb"])
        else:
            key = lab[_SETS[kind][0]]
        sums[kind].setdefault(key, _Sums()).add(r[n + 1 :])

    # Each CI job's latest run, for its link: a few rows (those with a CI link), so a query apart.
    for wf, jb, url in con.execute(
        f"""
        SELECT {label["wf"]}, {label["jb"]}, arg_max(ci_url, started_at) FROM _dash l
        WHERE {where} AND ci_url IS NOT NULL AND is_main GROUP BY ALL
        """,
        params,
    ).fetchall():
        ci_links[(wf, jb)] = _link(url)

    by_tag: dict[str, _Sums] = {}
    wanted = ""
    tag_params = list(params)
    if filters.tag is not None:
        wanted = " AND k = ? AND v = ?"
        tag_params += list(filters.tag.partition("=")[::2])
    uncharted = static.uncharted
    if uncharted:
        wanted += f" AND k NOT IN ({', '.join('?' * len(uncharted))})"
        tag_params += uncharted
    # Grouped by tag set first (few distinct sets), then split into KEY=VALUE bars.
    for r in con.execute(
        f"""
        WITH g AS (SELECT th, {figures} FROM _dash l WHERE {where} GROUP BY th, upr),
        t AS (SELECT unnest(map_keys(s.tags)) AS k, unnest(map_values(s.tags)) AS v, g.* EXCLUDE (th)
              FROM g JOIN _tagsets s USING (th))
        SELECT k, v, upr, sum(runs), sum(f_in), sum(f_out), sum(f_cr), sum(f_cw), sum(f_cost), sum(f_est),
               sum(f_sav), sum(f_unk), sum(f_rated), sum(f_partial), sum(f_ptok)
        FROM t WHERE v IS NOT NULL{wanted} GROUP BY k, v, upr
        """,
        tag_params,
    ).fetchall():
        by_tag.setdefault(f"{r[0]}={r[1]}", _Sums()).add(r[2:])

    totals = total.totals()
    day_totals = {d: s.totals() for d, s in sums["day"].items()}
    models = sorted(model_rank, key=lambda m: (-model_rank[m][0], -model_rank[m][1], m))
    if span.start is not None and today.toordinal() - span.start <= MAX_AXIS_DAYS:
        first = span.start
    elif day_totals:
        first = date.fromisoformat(min(day_totals)).toordinal()
    else:
        first = today.toordinal()
    last = max([today.toordinal(), *(date.fromisoformat(d).toordinal() for d in day_totals)])
    if span.end is not None:
        last = min(last, span.end - 1)
    days = periods.day_range(first, last + 1) if day_totals or span.start is not None else []

    # The change, the moving average and the month to date: the period's day totals, and one
    # query of those around it (the previous period, the week before, the month).
    month_start, month_end = periods.month_of(today)
    lo = max(1, min(first - (MOVING_DAYS - 1), month_start, span.prev_start or first))
    hi = max(last + 1, today.toordinal() + 1)
    daily = dict(sums["day"])
    if lo < first:
        daily.update(_by_day(eng, filters, tz, lo, first, figures))
    if last + 1 < hi:
        daily.update(_by_day(eng, filters, tz, last + 1, hi, figures))
    cost = {d: float(s.cost) for d, s in daily.items()}

    def mean(day: str) -> float:
        end = date.fromisoformat(day).toordinal() + 1
        return sum(cost.get(d, 0.0) for d in periods.day_range(max(1, end - MOVING_DAYS), end)) / MOVING_DAYS

    change: Change | None = None
    if span.prev_start is not None and span.prev_end is not None and span.start is not None:
        now = _sum_days(daily, span.start, span.elapsed_end(today)).totals()
        prev = _sum_days(daily, span.prev_start, span.prev_end).totals()
        change = {
            "first": date.fromordinal(span.prev_start).isoformat(),
            "last": date.fromordinal(span.prev_end - 1).isoformat(),
            "runs": prev["runs"],
            "cost_usd": prev["cost_usd"],
            "change_usd": now["cost_usd"] - prev["cost_usd"],
            "change_pct": (now["cost_usd"] / prev["cost_usd"] - 1) * 100 if prev["cost_usd"] else None,
        }
    begun = today.toordinal() + 1 - month_start
    mtd = _sum_days(daily, month_start, today.toordinal() + 1).totals()
    running, cumulative = 0.0, []
    for day in periods.day_range(month_start, today.toordinal() + 1):
        running += cost.get(day, 0.0)
        cumulative.append((day, running))
    month: Month = {
        "first": date.fromordinal(month_start).isoformat(),
        "days_elapsed": begun,
        "days_in_month": month_end - month_start,
        "runs": mtd["runs"],
        "cost_usd": mtd["cost_usd"],
        "unpriced_runs": mtd["unpriced_runs"],
        "partial_runs": mtd["partial_runs"],
        "projection_usd": mtd["cost_usd"] / begun * (month_end - month_start),
        "cumulative": cumulative,
    }
    by_ci = [
        {"workflow": k[0], "job": k[1], "totals": t, "url": ci_links.get(k)}
        for t, k in (
            (t, k)
            for k, t in ((k, s.totals()) for k, s in sums["ci"].items())
            if k != (NONE_LABEL, NONE_LABEL)
        )
    ]
    by_ci.sort(key=lambda g: (-g["totals"]["cost_usd"], -g["totals"]["runs"], g["workflow"], g["job"]))
    budget = budgets or Budgets()
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ledger": str(ledger),
        "timezone": _tz_label(tz),
        "filters": filters.as_dict(),
        "options": _options(static),
        "period": {
            "text": span.text,
            "label": periods.label(span, today),
            "first": days[0] if days else None,
            "last": days[-1] if days else None,
        },
        "days": days,
        "models": models,
        "totals": totals,
        "change": change,
        "month": month,
        "budgets": {"daily": budget.daily, "monthly": budget.monthly},
        "by_day": [
            {
                "day": d,
                "runs": t["runs"],
                "cost_usd": t["cost_usd"],
                "tokens": t["tokens"],
                "unpriced_tokens": t["unpriced_tokens"],
                "moving_avg_usd": mean(d),
            }
            for d, t in sorted(day_totals.items())
        ],
        "by_day_by_model": [
            {
                "day": d,
                "model": m,
                "runs": v[0],
                "tokens": v[1],
                "cost_usd": float(v[2]),
                "unpriced_tokens": v[3],
            }
            for (d, m), v in sorted(day_model.items())
        ],
        "by_project": _groups(sums["project"], 12),
        "by_tag": _groups(by_tag, 12),
        "by_branch": _groups(sums["branch"], 12),
        "by_user": _groups(sums["user"], 12),
        "by_mode": _groups(sums["mode"], 12),
        "by_status": _groups(sums["status"], 12),
        "by_pr": _groups({k: v for k, v in sums["pr"].items() if k != NONE_LABEL}, 12),
        "by_ci": by_ci[:20],  # type: ignore[typeddict-item]
        "cache": {
            "hit_ratio": totals["cache_hit_ratio"],
            "savings_usd": totals["cache_savings_usd"],
            "unpriced_savings_tokens": totals["unpriced_savings_tokens"],
            "by_day": [
                {"day": d, "hit_ratio": t["cache_hit_ratio"], "savings_usd": t["cache_savings_usd"]}
                for d, t in sorted(day_totals.items())
            ],
        },
        "latest_runs": _latest(eng, tz, where, params, latest),
        "quota": _quota(eng, where, params, static.has_quota),
        "read": dict(static.read),
    }


def _options(static: _Static | None) -> dict[str, list[str]]:
    return {
        "periods": list(PERIODS),
        "projects": static.projects if static else [],
        "models": static.models if static else [],
        "tags": static.tags if static else [],
        "uncharted_tag_keys": static.uncharted if static else [],
    }


def _tz_label(tz: tzinfo) -> str:
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------- one-shot and live


def _signature(ledger: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What identifies the ledger's bytes: per segment its path, inode, size and mtime."""
    out = []
    for seg in segments(ledger):
        if seg.is_symlink():  # as every ledger reader: a symlink could point at anyone's file
            raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
        try:
            st = os.stat(seg, follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append((str(seg), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _whole_lines(sig: tuple[tuple[str, int, int, int], ...]) -> bool:
    """Does every segment end with a newline?"""
    for name, _, size, _ in sig:
        if size:
            try:
                with open(name, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        return False
            except OSError:
                return False
    return True


def build_view(
    ledger: Path,
    filters: Filters,
    *,
    today: date | None = None,
    latest: int = LATEST_SHOWN,
    budgets: Budgets | None = None,
) -> View:
    """One-shot: open the ledger and answer one filter set (the HTML report's path)."""
    from ..query.engine import opened

    size = sum(s[2] for s in _signature(ledger))
    with opened(ledger, columns=COLUMNS) as eng:
        static = _prepare(eng, ledger, size)
        return compute(eng, static, ledger, filters, today=today, latest=latest, budgets=budgets)


class Live:
    """One engine over the ledger, reopened when its files changed (the live server's source).

    `refresh()` (the server's watcher) stats the segments and, when any grew, shrank, rotated or
    was replaced, opens a fresh engine: the engine reads its index plus the appended tail, so a
    reopen costs little once the index is warm. Views are cached per filter set until then.
    """

    def __init__(self, ledger: Path, budgets: Budgets | None = None) -> None:
        self.ledger = ledger
        self.budgets = budgets
        self.version = 0
        self._sig: tuple[tuple[str, int, int, int], ...] | None = None
        self._eng: Engine | None = None
        self._static: _Static | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, Filters, date, int], View] = {}
        self._torn: tuple[tuple[str, int, int, int], ...] | None = None
        self._seen_index: str | None = None
        self.total_bytes = 0

    @property
    def behind(self) -> bool:
        """True until the ledger was first read: views are empty placeholders meanwhile."""
        return self._eng is None

    def refresh(self) -> bool:
        """Reopen the engine if the ledger changed since the last look; True when it did."""
        sig = _signature(self.ledger)
        if sig == self._sig and self._eng is not None and not self._index_landed():
            return False
        if sig != self._torn and not _whole_lines(sig):
            # A write in progress: look again next time rather than read half a line. A tail that
            # stays torn (a writer died) is read at the second look, as every reader reads it.
            self._torn = sig
            return False
        from ..query.engine import open_engine

        eng = open_engine(self.ledger, columns=COLUMNS)
        try:
            static = _prepare(eng, self.ledger, sum(s[2] for s in sig))
        except BaseException:
            eng.close()
            raise
        with self._lock:
            old, self._eng, self._static, self._sig = self._eng, eng, static, sig
            self.total_bytes = static.read["total_bytes"]
            self.version += 1
            self._cache.clear()
        if old is not None:
            old.close()
        return True

    def _index_landed(self) -> bool:
        """An engine from a lean read (no index yet) is reopened once, when the index it had built
        in the background is published: the index has every column (the CI links)."""
        if self._eng is None or self._eng.source != "memory":
            return False
        from ..query.index import load_manifest

        manifest = load_manifest(self.ledger)
        if manifest is None or manifest.file == self._seen_index:
            return False
        self._seen_index = manifest.file
        return True

    def pending_bytes(self) -> int:
        """The ledger's size before its first read (for the 'still reading' banner)."""
        try:
            return sum(s[2] for s in _signature(self.ledger))
        except (OSError, LedgerError):
            return 0

    def view(self, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN) -> View:
        """The view model for one filter set; cached until the ledger changes (SSE clients share it)."""
        with self._lock:
            if self._eng is None or self._static is None:
                return _placeholder(
                    self.ledger, filters, self.pending_bytes(), today=today, budgets=self.budgets
                )
            day = today or datetime.now(self._static.tz).date()
            key = (self.version, filters, day, latest)
            cached = self._cache.get(key)
            if cached is None:
                if len(self._cache) > 64:
                    self._cache.clear()
                cached = compute(
                    self._eng,
                    self._static,
                    self.ledger,
                    filters,
                    today=day,
                    latest=latest,
                    budgets=self.budgets,
                )
                self._cache[key] = cached
            return cached

    def close(self) -> None:
        with self._lock:
            if self._eng is not None:
                self._eng.close()
                self._eng = None


def _placeholder(
    ledger: Path, filters: Filters, size: int, *, today: date | None, budgets: Budgets | None
) -> View:
    """An empty view flagged as still reading: what a page shows before a large ledger is open."""
    from ..query.engine import opened

    nothing = ledger.parent / f".{ledger.name}.placeholder-{os.getpid()}"  # no such file: no rows
    with opened(nothing, persist=False) as eng:
        view = compute(eng, _prepare(eng, nothing, 0), ledger, filters, today=today, budgets=budgets)
    view["read"]["total_bytes"] = max(size, 1)
    return view


def to_json(view: View) -> bytes:
    return orjson.dumps(view)
