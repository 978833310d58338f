"""Ledger -> the dashboard's view model, answered by the one read engine (`claude_run.query`).

The page never sees records, only aggregates and the latest N runs, so a 1,000,000-record ledger
costs the browser the same as a ten-record one.

Every figure comes from the engine's counted rows (`_lines`, one per record line with `counted`
from the fold; `_parts`, the counted records' model parts with the residual on the main part), with
the filters of `ledger summary` (`query.summary.where_sql`) and its labels (`dim_sql`), so the page
and `ledger summary` cannot disagree:
- totals, projects, branches, tags and days count whole records, priced or unpriced by the record's
  own cost (as `ledger summary --by project`); the charts by model count model parts, priced by the
  part's own cost (as `--by day,model`); unpriced usage is kept apart, never $0;
- under the model filter (an exact model name) everything counts that model's parts;
- cache savings: cache reads of priced usage per model, times the model's list-price rate.

`Live` keeps one engine open and reopens it when the ledger files changed (the server's watcher);
`view(filters)` answers any filter set from it, cached until the ledger changes. `View` is the
contract with `render`, `page` and `server`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import orjson

from ..errors import LedgerError, UsageError
from ..ledger.store import segments
from ..reports.filters import Filters as QueryFilters
from ..reports.timeparse import Bound, resolve_tz

if TYPE_CHECKING:
    from ..query.engine import Engine

LATEST_SHOWN = 50
MAX_TAG_VALUES = 64  # a tag key with more distinct values is left out of the tag chart and filter
NONE_LABEL = "(none)"
PERIODS: tuple[str, ...] = ("7d", "30d", "90d", "365d", "all")
_PERIOD_RE = re.compile(r"^(\d{1,5})d$")

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
    "duration_ms",
    "ci_provider",
    "ci_workflow",
    "ci_job",
    "ci_url",
)


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
    if per != "all" and not _PERIOD_RE.match(per):
        raise UsageError(f"bad period {period!r}: expected Nd (e.g. 7d, 30d) or all")
    if per != "all" and int(per[:-1]) < 1:
        raise UsageError(f"bad period {period!r}: at least 1d")
    tag_value = (tag or "").strip() or None
    if tag_value is not None and "=" not in tag_value:
        raise UsageError(f"bad tag filter {tag!r}: expected KEY=VALUE")
    return Filters(per, (project or "").strip() or None, (model or "").strip() or None, tag_value)


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
    cache_hit_ratio: float | None
    cache_savings_usd: float | None
    unpriced_savings_tokens: int


class Group(TypedDict):
    key: str
    totals: Totals


class DayModel(TypedDict):
    day: str
    model: str
    runs: int
    tokens: int
    cost_usd: float
    unpriced_tokens: int


class CacheDay(TypedDict):
    day: str
    hit_ratio: float | None
    savings_usd: float | None


class Run(TypedDict):
    id: str
    started_at: str
    day: str
    status: str
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
    duration_ms: int | None
    ci_url: str | None
    ci_label: str | None


class View(TypedDict):
    generated_at: str
    ledger: str
    timezone: str
    filters: dict[str, str | None]
    options: dict[str, list[str]]
    days: list[str]
    models: list[str]
    totals: Totals
    by_day_by_model: list[DayModel]
    by_project: list[Group]
    by_tag: list[Group]
    by_branch: list[Group]
    cache: dict[str, Any]
    latest_runs: list[Run]
    read: dict[str, int]


# ---------------------------------------------------------------- sums


@dataclass
class _Sums:
    """One group's figures. `priced`/`unpriced` split as `ledger summary` does; cache reads of priced
    usage per model, for the savings."""

    runs: int = 0
    unpriced_runs: int = 0
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # input, output, read, write
    unpriced_tokens: int = 0
    cost: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)
    cache_by_model: dict[str, int] = field(default_factory=dict)

    def add(
        self, priced: bool, model: str, runs: int, toks: tuple[int, int, int, int], cost: Any, est: Any
    ) -> None:
        self.runs += runs
        for i in range(4):
            self.tokens[i] += toks[i]
        if priced:
            self.cost += cost or 0
            self.estimated += est or 0
            if toks[2]:
                self.cache_by_model[model] = self.cache_by_model.get(model, 0) + toks[2]
        else:
            self.unpriced_runs += runs
            self.unpriced_tokens += sum(toks)

    def merge(self, other: _Sums) -> None:
        self.runs += other.runs
        self.unpriced_runs += other.unpriced_runs
        for i in range(4):
            self.tokens[i] += other.tokens[i]
        self.unpriced_tokens += other.unpriced_tokens
        self.cost += other.cost
        self.estimated += other.estimated
        for m, n in other.cache_by_model.items():
            self.cache_by_model[m] = self.cache_by_model.get(m, 0) + n

    def totals(self, rates: Any) -> Totals:
        inp, out, read, write = self.tokens
        # The savings rule of `ledger summary` (query.summary._savings): per model, over priced usage;
        # unknown when no model with a list price had cache reads.
        savings: Decimal | None = None
        unknown = 0
        for model, n in self.cache_by_model.items():
            delta = rates.get(model)
            if delta is None:
                unknown += n
            else:
                savings = (savings or Decimal(0)) + delta * n
        if savings is None and not self.cache_by_model:
            savings = Decimal(0)
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
            "cache_hit_ratio": read / prompt if prompt else None,
            "cache_savings_usd": float(savings) if savings is not None else None,
            "unpriced_savings_tokens": unknown,
        }


def _groups(sums: dict[str, _Sums], rates: Any, limit: int) -> list[Group]:
    totals = {k: s.totals(rates) for k, s in sums.items()}
    ordered = sorted(totals, key=lambda k: (-totals[k]["cost_usd"], -totals[k]["runs"], k))
    out: list[Group] = [{"key": k, "totals": totals[k]} for k in ordered[:limit]]
    if len(ordered) > limit:
        rest = _Sums()
        for k in ordered[limit:]:
            rest.merge(sums[k])
        out.append({"key": f"{len(ordered) - limit} others", "totals": rest.totals(rates)})
    return out


# ---------------------------------------------------------------- SQL


def _where(f: Filters, tz: tzinfo, today: date) -> tuple[str, list[Any], str, list[Any]]:
    """The WHERE over `l` (and `p`) for the units counted, and an extra clause selecting whole
    records for the latest-runs table (a record used the filtered model)."""
    from ..query.summary import where_sql

    since = None if f.period == "all" else Bound(day=_cutoff(f.period, today).toordinal())
    projects = (f.project,) if f.project is not None and f.project != NONE_LABEL else ()
    tags: tuple[tuple[str, str], ...] = ()
    if f.tag is not None:
        k, _, v = f.tag.partition("=")
        tags = ((k, v),)
    where, params = where_sql(QueryFilters(since=since, projects=projects, tags=tags), tz, False)
    if f.project == NONE_LABEL:
        where += " AND l.project IS NULL"
    rec_where, rec_params = where, list(params)
    if f.model is not None:
        where += " AND p.model = ?"
        params.append(f.model)
        rec_where += " AND l.rid IN (SELECT rid FROM _parts WHERE model = ?)"
        rec_params.append(f.model)
    return where, params, rec_where, rec_params


def _cutoff(period: str, today: date) -> date:
    return today - timedelta(days=int(period[:-1]) - 1)


def _units(f: Filters, tz: tzinfo, where: str) -> str:
    """One row per counted model part, with the labels and whether its unit (the record, or the
    part under the model filter) is priced and is a run."""
    from ..query.summary import dim_sql

    by_part = f.model is not None
    unit_priced = "p.part_priced" if by_part else "l.priced"
    unit_run = "true" if by_part else "p.is_main"
    return f"""
        SELECT {dim_sql("day", tz, True)} AS day, {dim_sql("project", tz, True)} AS project,
               {dim_sql("branch", tz, True)} AS branch, p.model AS model, p.part_priced AS pp,
               {unit_priced} AS upr, {unit_run} AS urun, l.tags AS tags,
               p.input, p.output, p.cache_read, p.cache_creation, p.cost,
               coalesce(l.cost_source = 'estimate', false) AS est
        FROM _lines l JOIN _parts p USING (rid) WHERE {where}
    """


_FIGURES = """
    count(*) AS parts, count(*) FILTER (WHERE urun) AS runs,
    sum(input), sum(output), sum(cache_read), sum(cache_creation),
    sum(cost) FILTER (WHERE pp), sum(cost) FILTER (WHERE upr), sum(cost) FILTER (WHERE upr AND est)
"""


@dataclass
class _Static:
    """What a view needs that does not depend on its filters: counted once per opened engine."""

    projects: list[str]
    models: list[str]
    tags: list[str]
    uncharted: list[str]
    read: dict[str, int]


def _static(eng: Engine, total_bytes: int) -> _Static:
    con = eng.con
    dated = "counted AND started_at IS NOT NULL"
    projects = sorted(
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT coalesce(project, '{NONE_LABEL}') FROM _lines WHERE {dated}"
        ).fetchall()
    )
    models = sorted(
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT p.model FROM _parts p JOIN _lines USING (rid) WHERE {dated}"
        ).fetchall()
    )
    tags: list[str] = []
    uncharted: list[str] = []
    rows = con.execute(
        f"""
        WITH t AS (SELECT unnest(map_keys(tags)) AS k, unnest(map_values(tags)) AS v
                   FROM _lines WHERE {dated} AND cardinality(tags) > 0)
        SELECT k, count(DISTINCT v), CASE WHEN count(DISTINCT v) <= {MAX_TAG_VALUES} THEN list(DISTINCT v) END
        FROM t WHERE v IS NOT NULL GROUP BY k
        """
    ).fetchall()
    for k, _, values in rows:
        if values is None:
            uncharted.append(str(k))
        else:
            tags += [f"{k}={v}" for v in values]
    counts = con.execute("SELECT count(*), count(*) FILTER (WHERE NOT counted) FROM _lines").fetchone()
    records, not_counted = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    return _Static(
        projects,
        models,
        sorted(tags),
        sorted(uncharted),
        {
            "records": records,
            "bad_lines": _bad_lines(eng.warnings),
            "not_counted": not_counted,
            "read_bytes": total_bytes,
            "total_bytes": total_bytes,
        },
    )


_BAD = re.compile(r"skipped (\d+) unreadable")


def _bad_lines(warnings: list[str]) -> int:
    for w in warnings:
        m = _BAD.search(w)
        if m:
            return int(m.group(1))
    return 0


def _ci(provider: Any, workflow: Any, job: Any, url: Any) -> tuple[str | None, str | None]:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        url = None  # never render a javascript: or other scheme as a link
    bits = [str(b) for b in (provider, workflow, job) if isinstance(b, str) and b]
    return url, " / ".join(bits) or None


def _latest(eng: Engine, tz: tzinfo, rec_where: str, params: list[Any], limit: int) -> list[Run]:
    from ..query.summary import dim_sql

    rows = eng.con.execute(
        f"""
        SELECT l.id, strftime(timezone('UTC', l.started_at), '%Y-%m-%dT%H:%M:%S.%gZ'),
               {dim_sql("day", tz, False)},
               l.status, l.model, l.project, l.branch, l.tags, l.input, l.output, l.cache_read,
               l.cache_creation, CASE WHEN l.priced THEN l.cost_usd END, l.cost_source, l.duration_ms,
               l.ci_provider, l.ci_workflow, l.ci_job, l.ci_url
        FROM _lines l WHERE {rec_where}
        ORDER BY l.started_at DESC, l.rid DESC LIMIT {int(limit)}
        """,
        params,
    ).fetchall()
    out: list[Run] = []
    for r in rows:
        url, label = _ci(*r[15:19])
        inp, outp, read, write = (int(x or 0) for x in r[8:12])
        out.append(
            {
                "id": str(r[0]),
                "started_at": str(r[1]),
                "day": str(r[2]),
                "status": r[3] or NONE_LABEL,
                "model": str(r[4]),
                "project": r[5] or NONE_LABEL,
                "branch": r[6] or NONE_LABEL,
                "tags": {str(k): str(v) for k, v in (r[7] or {}).items() if v is not None},
                "tokens": inp + outp + read + write,
                "input": inp,
                "output": outp,
                "cache_read": read,
                "cache_creation": write,
                "cost_usd": float(r[12]) if r[12] is not None else None,
                "cost_source": r[13] or NONE_LABEL,
                "duration_ms": int(r[14]) if r[14] is not None else None,
                "ci_url": url,
                "ci_label": label,
            }
        )
    return out


def _toks(r: tuple[Any, ...], at: int) -> tuple[int, int, int, int]:
    return (int(r[at] or 0), int(r[at + 1] or 0), int(r[at + 2] or 0), int(r[at + 3] or 0))


def compute(
    eng: Engine,
    ledger: Path,
    static: _Static,
    filters: Filters,
    *,
    today: date | None = None,
    latest: int = LATEST_SHOWN,
    tz: tzinfo | None = None,
    rates: Any = None,
) -> View:
    """The view model for one filter set, from an open engine."""
    from ..query.index import index_dir
    from ..reports.totals import SavingsRates

    tz = tz or resolve_tz(None)
    today = today or datetime.now(tz).date()
    if rates is None:
        cache = index_dir(ledger)
        rates = SavingsRates(cache if cache.is_dir() else None)
    where, params, rec_where, rec_params = _where(filters, tz, today)
    units = _units(filters, tz, where)
    con = eng.con
    total = _Sums()
    by_day: dict[str, _Sums] = {}
    by_project: dict[str, _Sums] = {}
    by_branch: dict[str, _Sums] = {}
    day_model: dict[tuple[str, str], list[Any]] = {}
    model_rank: dict[str, list[Any]] = {}
    rows = con.execute(
        f"""
        WITH u AS ({units})
        SELECT grouping(day, project, branch) AS g, day, project, branch, model, pp, upr, {_FIGURES}
        FROM u GROUP BY GROUPING SETS ((day, model, pp, upr), (project, model, upr), (branch, model, upr))
        """,
        params,
    ).fetchall()
    for r in rows:
        g, day, project, branch, model, pp, upr = r[:7]
        parts, runs = int(r[7]), int(r[8])
        toks = _toks(r, 9)
        cost_pp, cost_u, est_u = r[13], r[14], r[15]
        if g == 0b011:  # (day, model, pp, upr)
            by_day.setdefault(day, _Sums()).add(bool(upr), model, runs, toks, cost_u, est_u)
            total.add(bool(upr), model, runs, toks, cost_u, est_u)
            # The charts by model count parts, each priced by its own cost (`--by day,model`).
            dm = day_model.setdefault((day, model), [0, 0, Decimal(0), 0])
            dm[0] += parts
            dm[1] += sum(toks)
            if pp:
                dm[2] += cost_pp or 0
            else:
                dm[3] += sum(toks)
            rank = model_rank.setdefault(model, [Decimal(0), 0])
            if pp:
                rank[0] += cost_pp or 0
            rank[1] += sum(toks)
        elif g == 0b101:  # (project, model, upr)
            by_project.setdefault(project, _Sums()).add(bool(upr), model, runs, toks, cost_u, est_u)
        else:  # (branch, model, upr)
            by_branch.setdefault(branch, _Sums()).add(bool(upr), model, runs, toks, cost_u, est_u)

    by_tag: dict[str, _Sums] = {}
    wanted_tag = ""
    if filters.tag is not None:
        wanted_tag = " AND k = ? AND v = ?"
    tag_params = list(params) + (list(filters.tag.partition("=")[::2]) if filters.tag is not None else [])
    uncharted = static.uncharted
    skip = f" AND k NOT IN ({', '.join('?' * len(uncharted))})" if uncharted else ""
    for r in con.execute(
        f"""
        WITH u AS ({units}),
        t AS (SELECT unnest(map_keys(tags)) AS k, unnest(map_values(tags)) AS v, * EXCLUDE (tags)
              FROM u WHERE cardinality(tags) > 0)
        SELECT k, v, model, upr, {_FIGURES} FROM t WHERE v IS NOT NULL{wanted_tag}{skip} GROUP BY ALL
        """,
        tag_params + list(uncharted),
    ).fetchall():
        k, v, model, upr = r[:4]
        by_tag.setdefault(f"{k}={v}", _Sums()).add(bool(upr), model, int(r[5]), _toks(r, 6), r[11], r[12])

    totals = total.totals(rates)
    day_totals = {d: s.totals(rates) for d, s in by_day.items()}
    models = sorted(model_rank, key=lambda m: (-model_rank[m][0], -model_rank[m][1], m))
    if day_totals:
        first = (
            _cutoff(filters.period, today) if filters.period != "all" else date.fromisoformat(min(day_totals))
        )
        last = max(today, date.fromisoformat(max(day_totals)))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    else:
        days = []
    view: View = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ledger": str(ledger),
        "timezone": _tz_label(tz),
        "filters": filters.as_dict(),
        "options": {
            "periods": list(PERIODS),
            "projects": static.projects,
            "models": static.models,
            "tags": static.tags,
            "uncharted_tag_keys": static.uncharted,
        },
        "days": days,
        "models": models,
        "totals": totals,
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
        "by_project": _groups(by_project, rates, 12),
        "by_tag": _groups(by_tag, rates, 12),
        "by_branch": _groups(by_branch, rates, 12),
        "cache": {
            "hit_ratio": totals["cache_hit_ratio"],
            "savings_usd": totals["cache_savings_usd"],
            "unpriced_savings_tokens": totals["unpriced_savings_tokens"],
            "by_day": [
                {"day": d, "hit_ratio": t["cache_hit_ratio"], "savings_usd": t["cache_savings_usd"]}
                for d, t in sorted(day_totals.items())
            ],
        },
        "latest_runs": _latest(eng, tz, rec_where, rec_params, latest),
        "read": dict(static.read),
    }
    rates.save()
    return view


def _tz_label(tz: tzinfo) -> str:
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---------------------------------------------------------------- one-shot and live


def _signature(ledger: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What identifies the ledger's bytes: per segment its name, inode and size."""
    out = []
    for seg in segments(ledger):
        if seg.is_symlink():  # as every ledger reader: a symlink could point at anyone's file
            raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
        try:
            st = os.stat(seg, follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append((seg.name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def build_view(
    ledger: Path, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN
) -> View:
    """One-shot: open the ledger and answer one filter set (the HTML report's path)."""
    from ..query.engine import opened

    size = sum(s[2] for s in _signature(ledger))
    with opened(ledger, columns=COLUMNS) as eng:
        return compute(eng, ledger, _static(eng, size), filters, today=today, latest=latest)


class Live:
    """One engine over the ledger, reopened when its files changed (the live server's source).

    `refresh()` (the server's watcher) stats the segments and, when any grew, shrank, rotated or
    was replaced, opens a fresh engine: the engine reads its index plus the appended tail, so a
    reopen costs little once the index is warm. Views are cached per filter set until then.
    """

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self.version = 0
        self._sig: tuple[tuple[str, int, int, int], ...] | None = None
        self._eng: Engine | None = None
        self._static: _Static | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, Filters, date, int], View] = {}
        self.total_bytes = 0

    @property
    def behind(self) -> bool:
        """True until the ledger was first read: views are empty placeholders meanwhile."""
        return self._eng is None

    def refresh(self) -> bool:
        """Reopen the engine if the ledger changed since the last look; True when it did."""
        sig = _signature(self.ledger)
        if sig == self._sig and self._eng is not None:
            return False
        from ..query.engine import open_engine

        eng = open_engine(self.ledger, columns=COLUMNS)
        try:
            static = _static(eng, sum(s[2] for s in sig))
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

    def pending_bytes(self) -> int:
        """The ledger's size before its first read (for the 'still reading' banner)."""
        try:
            return sum(s[2] for s in _signature(self.ledger))
        except (OSError, LedgerError):
            return 0

    def view(self, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN) -> View:
        """The view model for one filter set; cached until the ledger changes (SSE clients share it)."""
        tz = resolve_tz(None)
        day = today or datetime.now(tz).date()
        with self._lock:
            if self._eng is None or self._static is None:
                return _placeholder(self.ledger, filters, tz, self.pending_bytes())
            key = (self.version, filters, day, latest)
            cached = self._cache.get(key)
            if cached is None:
                if len(self._cache) > 64:
                    self._cache.clear()
                cached = compute(
                    self._eng, self.ledger, self._static, filters, today=day, latest=latest, tz=tz
                )
                self._cache[key] = cached
            return cached

    def close(self) -> None:
        with self._lock:
            if self._eng is not None:
                self._eng.close()
                self._eng = None


def _placeholder(ledger: Path, filters: Filters, tz: tzinfo, size: int) -> View:
    """An empty view flagged as still reading: what a page shows before a large ledger is open."""
    empty = _Sums().totals({})
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ledger": str(ledger),
        "timezone": _tz_label(tz),
        "filters": filters.as_dict(),
        "options": {
            "periods": list(PERIODS),
            "projects": [],
            "models": [],
            "tags": [],
            "uncharted_tag_keys": [],
        },
        "days": [],
        "models": [],
        "totals": empty,
        "by_day_by_model": [],
        "by_project": [],
        "by_tag": [],
        "by_branch": [],
        "cache": {
            "hit_ratio": None,
            "savings_usd": empty["cache_savings_usd"],
            "unpriced_savings_tokens": 0,
            "by_day": [],
        },
        "latest_runs": [],
        "read": {
            "records": 0,
            "bad_lines": 0,
            "not_counted": 0,
            "read_bytes": 0,
            "total_bytes": max(size, 1),
        },
    }


def to_json(view: View) -> bytes:
    return orjson.dumps(view)
