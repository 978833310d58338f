"""Ledger -> the dashboard's view model: the ONE module that knows how records are aggregated.

The page never sees records, only aggregates and the latest N runs, so a 1,000,000-record ledger
costs the browser the same as a ten-record one.

`Rollup` folds records into small sums keyed by (day, model, project, branch), plus the same sums per
tag KEY=VALUE, and remembers how far it has read each ledger file (by inode), so a live dashboard
re-reads only the bytes appended since the last look. A file that shrank or vanished (repair, prune,
reset) triggers a rebuild from scratch; a rotation is just a known inode under a new name.

`view(filters)` then answers any filter combination from those sums. When the `reports` package
grows a shared aggregation API, swapping to it is a change to this module only: `view` is the
contract with `render` and `server`.
"""

from __future__ import annotations

import gc
import heapq
import os
import re
import threading
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict

import orjson

from ..errors import LedgerError, UsageError
from ..ledger.store import segments
from ..record import is_record, parse_iso

# Sums are plain lists (fast to add into); these name the slots.
RUNS, INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, COST, EST_COST, UNPRICED_RUNS, UNPRICED_TOKENS = range(9)
LATEST_KEPT = 2000  # newest runs kept in memory for the "latest runs" table (filtered at view time)
LATEST_SHOWN = 50
MAX_TAG_VALUES = 64  # a tag key with more distinct values is left out of the tag chart and filter
NONE_LABEL = "(none)"
PERIODS: tuple[str, ...] = ("7d", "30d", "90d", "365d", "all")
_PERIOD_RE = re.compile(r"^(\d{1,5})d$")
_CHUNK = 8 * 1024 * 1024

Key = tuple[str, str, str, str]  # day, model, project, branch


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


def _new() -> list[Any]:
    return [0, 0, 0, 0, 0, 0.0, 0.0, 0, 0]


def _add(a: list[Any], b: list[Any]) -> None:
    # Unrolled: this runs once per row per group on every view.
    a[0] += b[0]
    a[1] += b[1]
    a[2] += b[2]
    a[3] += b[3]
    a[4] += b[4]
    a[5] += b[5]
    a[6] += b[6]
    a[7] += b[7]
    a[8] += b[8]


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _str(value: Any) -> str:
    return value if type(value) is str and value else NONE_LABEL


def _cost(value: Any) -> float | None:
    return float(value) if type(value) is float or type(value) is int else None


class _DayOf:
    """UTC ISO timestamp -> local calendar day, cached per hour (1M records share ~9k hours a year)."""

    def __init__(self) -> None:
        self.hours: dict[str, str | datetime] = {}

    def __call__(self, stamp: Any) -> str | None:
        if type(stamp) is not str:
            return None
        if len(stamp) >= 16 and stamp[10] == "T" and stamp.endswith(("Z", "+00:00")):
            hour = stamp[:13]
            cached = self.hours.get(hour)
            if cached is None:
                try:
                    utc = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
                except ValueError:
                    return None
                local = utc.astimezone()
                # Whole-hour offsets: the minute cannot move the day, so the day string is the answer.
                cached = local.strftime("%Y-%m-%d") if local.minute == 0 else local
                self.hours[hour] = cached
            if type(cached) is str:
                return cached
            try:
                return (cached + timedelta(minutes=int(stamp[14:16]))).strftime("%Y-%m-%d")  # type: ignore[operator]
            except ValueError:
                return None
        try:
            return parse_iso(stamp).astimezone().strftime("%Y-%m-%d")
        except ValueError:
            return None


def _parts(rec: dict[str, Any], model: str) -> list[tuple[str, list[Any]]]:
    """A record's sums, split by model when every model's cost is known, else all on its main model."""
    raw_tokens = rec.get("tokens")
    tokens: dict[str, Any] = raw_tokens if type(raw_tokens) is dict else {}
    cost = _cost(rec.get("cost_usd"))
    models = rec.get("models")
    if cost is not None and type(models) is dict and len(models) > 1:
        split: list[tuple[str, list[Any]]] = []
        for name, mu in models.items():
            mu_cost = _cost(mu.get("cost_usd")) if type(mu) is dict else None
            if mu_cost is None:
                split = []
                break
            sums = _new()
            sums[INPUT] = _int(mu.get("input"))
            sums[OUTPUT] = _int(mu.get("output"))
            sums[CACHE_READ] = _int(mu.get("cache_read"))
            sums[CACHE_CREATION] = _int(mu.get("cache_creation"))
            sums[COST] = mu_cost
            if mu.get("cost_source") == "estimate":
                sums[EST_COST] = mu_cost
            split.append((str(name), sums))
        if split:
            # The run counts once, on its main model (or the first when the main one is not listed).
            names = [n for n, _ in split]
            split[names.index(model) if model in names else 0][1][RUNS] = 1
            return split
    inp = _int(tokens.get("input"))
    out = _int(tokens.get("output"))
    read = _int(tokens.get("cache_read"))
    write = _int(tokens.get("cache_creation"))
    if cost is not None:
        est = cost if rec.get("cost_source") == "estimate" else 0.0
        return [(model, [1, inp, out, read, write, cost, est, 0, 0])]
    used = inp + out + read + write
    # Unpriced usage is kept apart: folding it in as $0 would understate the spend. A run that used
    # nothing (it crashed before the first request) has nothing to price.
    return [(model, [1, inp, out, read, write, 0.0, 0.0, 1 if used else 0, used])]


def _ci(rec: dict[str, Any]) -> tuple[str | None, str | None]:
    ci = rec.get("ci")
    if type(ci) is not dict:
        return None, None
    url = ci.get("url") if type(ci.get("url")) is str else None
    if url is not None and not url.startswith(("https://", "http://")):
        url = None  # never render a javascript: or other scheme as a link
    bits = [str(ci[k]) for k in ("provider", "workflow", "job") if type(ci.get(k)) is str and ci.get(k)]
    return url, " / ".join(bits) or None


def _tags(rec: dict[str, Any]) -> dict[str, str]:
    raw = rec.get("tags")
    if type(raw) is not dict or not raw:
        return {}
    return {str(k): v for k, v in raw.items() if type(v) is str}


def _run(day: str, rec: dict[str, Any]) -> Run:
    """The latest-runs table's row, built only for the runs actually shown."""
    total = _new()
    for _, sums in _parts(rec, _str(rec.get("model"))):
        _add(total, sums)
    git = rec.get("git")
    duration = rec.get("duration_ms")
    url, label = _ci(rec)
    return {
        "id": str(rec.get("id")),
        "started_at": str(rec.get("started_at")),
        "day": day,
        "status": _str(rec.get("status")),
        "model": _str(rec.get("model")),
        "project": _str(rec.get("project")),
        "branch": _str(git.get("branch")) if type(git) is dict else NONE_LABEL,
        "tags": _tags(rec),
        "tokens": total[INPUT] + total[OUTPUT] + total[CACHE_READ] + total[CACHE_CREATION],
        "input": total[INPUT],
        "output": total[OUTPUT],
        "cache_read": total[CACHE_READ],
        "cache_creation": total[CACHE_CREATION],
        "cost_usd": _cost(rec.get("cost_usd")),
        "cost_source": _str(rec.get("cost_source")),
        "duration_ms": duration if type(duration) is int else None,
        "ci_url": url,
        "ci_label": label,
    }


@dataclass
class _FileState:
    offset: int = 0
    pending: bytes = b""


Cell = tuple[str, str, str]  # model, project, branch
DayRows = dict[str, dict[Cell, list[Any]]]  # day -> cell -> sums


def _bump(days: DayRows, day: str, cell: Cell, sums: list[Any]) -> None:
    rows = days.get(day)
    if rows is None:
        rows = days[day] = {}
    row = rows.get(cell)
    if row is None:
        rows[cell] = list(sums)
    else:
        _add(row, sums)


def _unbump(days: DayRows, day: str, cell: Cell, sums: list[Any]) -> None:
    row = days.get(day, {}).get(cell)
    if row is not None:
        for i, v in enumerate(sums):
            row[i] -= v


class _HashSet:
    """A set of 64-bit hashes at 8 bytes each (a sorted array plus a small set of recent ones).

    One per tracked run's session id: a million runs cost 8 MB (plus at most 2^18 recent ones as a
    Python set) instead of ~70 MB as one Python set.
    """

    _MERGE_AT = 1 << 18

    def __init__(self) -> None:
        self._sorted = array("q")
        self._recent: set[int] = set()

    def add(self, h: int) -> None:
        self._recent.add(h)
        if len(self._recent) >= self._MERGE_AT:
            # A streaming merge of two sorted runs: no million-int list in between.
            self._sorted = array("q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent.clear()

    def __contains__(self, h: int) -> bool:
        if h in self._recent:
            return True
        i = bisect_left(self._sorted, h)
        return i < len(self._sorted) and self._sorted[i] == h

    def clear(self) -> None:
        self._sorted = array("q")
        self._recent.clear()


@dataclass
class _Contrib:
    """What one side record (import, telemetry, superseding) added, so the fold can take it back."""

    day: str
    parts: list[tuple[Cell, list[Any]]]
    tag_keys: list[str]
    session: str | None


@dataclass
class Rollup:
    """Incremental sums over one ledger (all its segments), bucketed by day.

    Per day, sums are keyed by (model, project, branch): the filter dimensions plus the one extra
    grouping the page shows. The same again per tag KEY=VALUE. A view for the last N days touches
    only N buckets, whatever the ledger's age.
    """

    ledger: Path
    days: DayRows = field(default_factory=dict)
    tag_days: dict[str, DayRows] = field(default_factory=dict)
    latest: deque[tuple[str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=LATEST_KEPT))
    models: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    records: int = 0
    bad_lines: int = 0
    not_counted: int = 0
    version: int = 0
    read_bytes: int = 0
    total_bytes: int = 0
    # The fold `ledger summary` applies too: a record named by a later record's `supersedes` is not
    # counted, nor an imported session that a tracked run already recorded.
    superseded: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)
    _side: dict[str, _Contrib] = field(default_factory=dict)
    _imports_by_session: dict[str, str] = field(default_factory=dict)
    _run_sessions: _HashSet = field(default_factory=_HashSet)
    _rebuild: bool = False
    # Tag keys with too many values (a PR number, a commit) are not charted: they would swamp the page.
    tag_values: dict[str, set[str]] = field(default_factory=dict)
    dropped_tag_keys: set[str] = field(default_factory=set)
    _tag_memo: dict[Any, tuple[str, ...]] = field(default_factory=dict)
    _files: dict[tuple[int, int], _FileState] = field(default_factory=dict)
    _day_of: _DayOf = field(default_factory=_DayOf)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: dict[tuple[int, Filters, date, int], View] = field(default_factory=dict)

    def refresh(self, budget: int | None = None) -> bool:
        """Fold whatever was appended since the last call; True when anything changed.

        `budget` caps the bytes read in this call (oldest segment first), so a server can show a huge
        ledger while it is still being read; `behind` then says more is waiting.
        """
        with self._lock:
            before = self.records
            # The fold allocates millions of small containers and frees none: the cyclic GC would
            # rescan the growing heap again and again (about half the cold-read time). Nothing here
            # makes cycles, so pause it, and freeze what a big read built so later passes skip it.
            paused = gc.isenabled()
            gc.disable()
            try:
                changed = self._refresh(budget)
            finally:
                if paused:
                    gc.enable()
            if self.records - before > 50_000:
                gc.freeze()
            if changed:
                self.version += 1
                self._cache.clear()
            return changed

    def _reset(self) -> None:
        """Forget every sum; keep `superseded` (a rebuild needs it to skip what was replaced)."""
        self.days.clear()
        self.tag_days.clear()
        self.latest.clear()
        self.models.clear()
        self.projects.clear()
        self.records = 0
        self.bad_lines = 0
        self.not_counted = 0
        self.dropped.clear()
        self._side.clear()
        self._imports_by_session.clear()
        self._run_sessions.clear()
        self.tag_values.clear()
        self.dropped_tag_keys.clear()
        self._tag_memo.clear()
        self._files.clear()

    def _snapshot(self) -> list[tuple[Path, tuple[int, int], int]]:
        out = []
        for seg in segments(self.ledger):
            if seg.is_symlink():  # as every ledger reader: a symlink could point at anyone's file
                raise LedgerError(f"refusing to read ledger segment {seg}: it is a symbolic link")
            try:
                st = os.stat(seg, follow_symlinks=False)
            except FileNotFoundError:
                continue
            out.append((seg, (st.st_dev, st.st_ino), st.st_size))
        return out

    def _refresh(self, budget: int | None) -> bool:
        snap = self._snapshot()
        seen = {ident for _, ident, _ in snap}
        rebuild = any(ident not in seen for ident in self._files) or any(
            ident in self._files and size < self._files[ident].offset for _, ident, size in snap
        )
        if rebuild:
            self._reset()
        changed = rebuild
        left = budget
        for path, ident, size in snap:
            state = self._files.setdefault(ident, _FileState())
            if size > state.offset and (left is None or left > 0):
                stop = size if left is None else min(size, state.offset + left)
                if left is not None:
                    left -= stop - state.offset
                self._read(path, state, stop)
                changed = True
        if self._rebuild:
            # A record superseded one we had already summed and cannot take back: read it all again,
            # now knowing to skip it. Rare (imports and telemetry replace their own side records).
            self._rebuild = False
            self._reset()
            if budget is None:
                for path, ident, size in snap:
                    self._read(path, self._files.setdefault(ident, _FileState()), size)
            self._rebuild = False  # with a budget, the next calls read it all again from the start
        self.total_bytes = sum(size for _, _, size in snap)
        self.read_bytes = sum(
            min(self._files[ident].offset, size) for _, ident, size in snap if ident in self._files
        )
        return changed

    @property
    def behind(self) -> bool:
        """True while bytes already in the ledger files are not read yet (a budgeted first read)."""
        return self.read_bytes < self.total_bytes

    def _read(self, path: Path, state: _FileState, size: int) -> None:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed in finally
        except FileNotFoundError:
            return
        try:
            fh.seek(state.offset)
            remaining = size - state.offset
            while remaining > 0:
                chunk = fh.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                state.offset += len(chunk)
                data = state.pending + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    state.pending = data
                    continue
                # A tail without its newline may still be mid-write: keep it for the next look.
                state.pending = data[cut + 1 :]
                self.fold_lines(data[:cut].split(b"\n"))
        finally:
            fh.close()

    def fold_lines(self, lines: Iterable[bytes]) -> None:
        loads = orjson.loads
        fold = self.fold
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = loads(line)
            except orjson.JSONDecodeError:
                self.bad_lines += 1
                continue
            if not is_record(rec):
                self.bad_lines += 1
                continue
            fold(rec)

    def fold(self, rec: dict[str, Any]) -> None:
        # Hot path (a million calls on a cold start): locals, inlined lookups, no helper per field.
        stamp = rec.get("started_at")
        day: Any = None
        if type(stamp) is str and stamp[-1:] == "Z":
            day = self._day_of.hours.get(stamp[:13])
        if type(day) is not str:
            day = self._day_of(stamp)
            if day is None:
                self.bad_lines += 1
                return
        self.records += 1
        rid = rec["id"]
        target = rec.get("supersedes")
        if target and type(target) is str:
            self._supersede(target)
        mode = rec.get("mode")
        session = rec.get("session_id")
        if type(session) is not str or not session:
            session = None
        if rid in self.superseded or (mode == "imported" and session and hash(session) in self._run_sessions):
            self.not_counted += 1
            if rid not in self.superseded:
                self.dropped.add(rid)
            return
        model = rec.get("model")
        if type(model) is not str or not model:
            model = NONE_LABEL
        project = rec.get("project")
        if type(project) is not str or not project:
            project = NONE_LABEL
        git = rec.get("git")
        branch = git.get("branch") if type(git) is dict else None
        if type(branch) is not str or not branch:
            branch = NONE_LABEL
        raw_tags = rec.get("tags")
        tag_keys = self._tag_keys(raw_tags) if raw_tags and type(raw_tags) is dict else ()
        self.projects.add(project)
        days, tag_days = self.days, self.tag_days
        parts = _parts(rec, model)
        for part_model, sums in parts:
            self.models.add(part_model)
            cell = (part_model, project, branch)
            rows = days.get(day)
            if rows is None:
                rows = days[day] = {}
            row = rows.get(cell)
            if row is None:
                rows[cell] = list(sums)
            else:
                _add(row, sums)
            for tk in tag_keys:
                tagged = tag_days.get(tk)
                if tagged is None:
                    tagged = tag_days[tk] = {}
                _bump(tagged, day, cell, sums)
        if target or mode == "imported" or mode == "telemetry" or rec.get("source") != "run":
            self._side[rid] = _Contrib(
                day, [((m, project, branch), sums) for m, sums in parts], list(tag_keys), session
            )
            if mode == "imported" and session:
                self._imports_by_session[session] = rid
        if session and mode != "imported":
            # Any record but an import claims its session (fold.py): a tracked run, and the telemetry
            # service too. Python's str hash: stable within this process, all an in-memory set needs.
            self._run_sessions.add(hash(session))
            if self._imports_by_session:
                earlier = self._imports_by_session.pop(session, None)
                if earlier is not None:  # the import came first: the tracked run's record wins
                    self._take_back(earlier)
                    self.dropped.add(earlier)
                    self.not_counted += 1
        self.latest.append((day, rec))

    def _tag_keys(self, raw_tags: dict[str, Any]) -> tuple[str, ...]:
        """The charted KEY=VALUE strings of a record's tags (memoised per distinct tag set)."""
        try:
            memo_key: Any = tuple(raw_tags.items())
            memo = self._tag_memo.get(memo_key)
        except TypeError:  # a value that is not hashable (not a string): no memo, and not charted
            memo_key = memo = None
        if memo is not None:
            return memo
        out = []
        for k, v in raw_tags.items():
            if type(v) is not str or k in self.dropped_tag_keys:
                continue
            seen = self.tag_values.get(k)
            if seen is None:
                seen = self.tag_values[k] = set()
            if v not in seen:
                seen.add(v)
                if len(seen) > MAX_TAG_VALUES:
                    self._drop_tag_key(k)
                    continue
            out.append(f"{k}={v}")
        result = tuple(out)
        if memo_key is not None and len(self._tag_memo) < 100_000:
            self._tag_memo[memo_key] = result
        return result

    def _drop_tag_key(self, key: str) -> None:
        self.dropped_tag_keys.add(key)
        self._tag_memo.clear()
        prefix = key + "="
        for tk in [t for t in self.tag_days if t.startswith(prefix)]:
            del self.tag_days[tk]
        self.tag_values[key] = set()

    def _supersede(self, target: str) -> None:
        if target in self.superseded:
            return
        self.superseded.add(target)
        if target in self._side:
            self._take_back(target)
            self.not_counted += 1
        elif target not in self.dropped:
            # Either not read yet (it will be skipped when it comes) or summed as a tracked run,
            # whose contribution we did not keep: rebuild once, cheaply correct.
            self._rebuild = True

    def _take_back(self, rid: str) -> None:
        contrib = self._side.pop(rid, None)
        if contrib is None:
            return
        if contrib.session and self._imports_by_session.get(contrib.session) == rid:
            del self._imports_by_session[contrib.session]
        for cell, sums in contrib.parts:
            _unbump(self.days, contrib.day, cell, sums)
            for tk in contrib.tag_keys:
                if tk in self.tag_days:
                    _unbump(self.tag_days[tk], contrib.day, cell, sums)

    def view(self, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN) -> View:
        """The view model for one filter set; cached until the ledger changes (SSE clients share it)."""
        day = today or datetime.now().astimezone().date()
        with self._lock:
            key = (self.version, filters, day, latest)
            cached = self._cache.get(key)
            if cached is None:
                if len(self._cache) > 64:
                    self._cache.clear()
                cached = self._cache[key] = _view(self, filters, day, latest)
            return cached


def _empty(sums: list[Any]) -> bool:
    """A cell whose records were all taken back (superseded): nothing to draw, not even $0."""
    return not (sums[RUNS] or sums[INPUT] or sums[OUTPUT] or sums[CACHE_READ] or sums[CACHE_CREATION])


def _cutoff(period: str, today: date) -> str:
    if period == "all":
        return ""
    return (today - timedelta(days=int(period[:-1]) - 1)).isoformat()


def _saving_rate(model: str, cache: dict[str, float | None]) -> float | None:
    """USD saved per cache-read token for a model (input price minus cache-read price)."""
    if model not in cache:
        from ..pricing import rates

        r = rates(model) if model != NONE_LABEL else None
        cache[model] = (r.input - r.cache_read) if r is not None else None
    return cache[model]


def _totals(sums: list[Any], savings: float | None, unpriced_savings_tokens: int) -> Totals:
    denominator = sums[INPUT] + sums[CACHE_READ] + sums[CACHE_CREATION]
    return {
        "runs": sums[RUNS],
        "input": sums[INPUT],
        "output": sums[OUTPUT],
        "cache_read": sums[CACHE_READ],
        "cache_creation": sums[CACHE_CREATION],
        "tokens": sums[INPUT] + sums[OUTPUT] + sums[CACHE_READ] + sums[CACHE_CREATION],
        "cost_usd": round(sums[COST], 10),
        "estimated_cost_usd": round(sums[EST_COST], 10),
        "unpriced_runs": sums[UNPRICED_RUNS],
        "unpriced_tokens": sums[UNPRICED_TOKENS],
        "cache_hit_ratio": sums[CACHE_READ] / denominator if denominator else None,
        "cache_savings_usd": savings,
        "unpriced_savings_tokens": unpriced_savings_tokens,
    }


def _collapse(
    by_model: dict[tuple[str, str], list[Any]], rates: dict[str, float | None]
) -> dict[str, Totals]:
    """(group, model) sums -> group totals; cache savings are priced per model, then summed."""
    acc: dict[str, list[Any]] = {}
    savings: dict[str, float] = {}
    unknown: dict[str, int] = {}
    for (group, model), sums in by_model.items():
        row = acc.get(group)
        if row is None:
            row = acc[group] = _new()
            savings[group] = 0.0
            unknown[group] = 0
        _add(row, sums)
        rate = _saving_rate(model, rates)
        if rate is None:
            unknown[group] += sums[CACHE_READ]
        else:
            savings[group] += sums[CACHE_READ] * rate
    out = {}
    for group, row in acc.items():
        # Savings are unknown only when every cache-read token belongs to an unpriced model.
        known = round(savings[group], 10) if row[CACHE_READ] > unknown[group] or not row[CACHE_READ] else None
        out[group] = _totals(row, known, unknown[group])
    return out


def _groups(totals: dict[str, Totals], limit: int) -> list[Group]:
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["runs"], kv[0]))
    out: list[Group] = [{"key": k, "totals": t} for k, t in ordered[:limit]]
    if len(ordered) > limit:
        rest = _new()
        savings = 0.0
        unknown = 0
        for _, t in ordered[limit:]:
            _add(
                rest,
                [t["runs"], t["input"], t["output"], t["cache_read"], t["cache_creation"], t["cost_usd"],
                 t["estimated_cost_usd"], t["unpriced_runs"], t["unpriced_tokens"]],
            )  # fmt: skip
            savings += t["cache_savings_usd"] or 0.0
            unknown += t["unpriced_savings_tokens"]
        out.append(
            {"key": f"{len(ordered) - limit} others", "totals": _totals(rest, round(savings, 10), unknown)}
        )
    return out


def _view(rollup: Rollup, filters: Filters, today: date, latest: int) -> View:
    cutoff = _cutoff(filters.period, today)
    source = rollup.days if filters.tag is None else rollup.tag_days.get(filters.tag, {})
    want_model, want_project = filters.model, filters.project
    rates: dict[str, float | None] = {}
    by_dm: dict[tuple[str, str], list[Any]] = {}
    by_pm: dict[tuple[str, str], list[Any]] = {}
    by_bm: dict[tuple[str, str], list[Any]] = {}

    def acc(into: dict[tuple[str, str], list[Any]], key: tuple[str, str], sums: list[Any]) -> None:
        row = into.get(key)
        if row is None:
            into[key] = list(sums)
        else:
            _add(row, sums)

    def wanted(model: str, project: str, sums: list[Any]) -> bool:
        """The model and project filters, and no empty cell (all its records were taken back)."""
        return (
            (want_model is None or model == want_model)
            and (want_project is None or project == want_project)
            and not _empty(sums)
        )

    for day, rows in source.items():
        if day < cutoff:
            continue
        for (model, project, branch), sums in rows.items():
            if not wanted(model, project, sums):
                continue
            acc(by_dm, (day, model), sums)
            acc(by_pm, (project, model), sums)
            acc(by_bm, (branch, model), sums)

    by_tm: dict[tuple[str, str], list[Any]] = {}
    for tag, tag_rows in rollup.tag_days.items():
        if filters.tag is not None and tag != filters.tag:
            continue
        for day, rows in tag_rows.items():
            if day < cutoff:
                continue
            for (model, project, _), sums in rows.items():
                if wanted(model, project, sums):
                    acc(by_tm, (tag, model), sums)

    by_model = _collapse({(m, m): s for (_, m), s in _merge_first(by_dm).items()}, rates)
    by_day = _collapse(by_dm, rates)
    total = _collapse({("", m): s for (m, _), s in _merge_first(by_dm).items()}, rates).get("")
    totals = total if total is not None else _totals(_new(), None, 0)
    models = sorted(by_model, key=lambda m: (-by_model[m]["cost_usd"], -by_model[m]["tokens"], m))

    if by_day:
        first = date.fromisoformat(cutoff) if cutoff else date.fromisoformat(min(by_day))
        last = max(today, date.fromisoformat(max(by_day)))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    else:
        days = []

    day_models: list[DayModel] = []
    for (day, model), s in sorted(by_dm.items()):
        day_models.append(
            {
                "day": day,
                "model": model,
                "runs": s[RUNS],
                "tokens": s[INPUT] + s[OUTPUT] + s[CACHE_READ] + s[CACHE_CREATION],
                "cost_usd": round(s[COST], 10),
                "unpriced_tokens": s[UNPRICED_TOKENS],
            }
        )
    cache_days: list[CacheDay] = [
        {"day": d, "hit_ratio": t["cache_hit_ratio"], "savings_usd": t["cache_savings_usd"]}
        for d, t in sorted(by_day.items())
    ]
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ledger": str(rollup.ledger),
        "timezone": _tz_label(),
        "filters": filters.as_dict(),
        "options": {
            "periods": list(PERIODS),
            "projects": sorted(rollup.projects),
            "models": sorted(rollup.models),
            "tags": sorted(rollup.tag_days),
            "uncharted_tag_keys": sorted(rollup.dropped_tag_keys),
        },
        "days": days,
        "models": models,
        "totals": totals,
        "by_day_by_model": day_models,
        "by_project": _groups(_collapse(by_pm, rates), 12),
        "by_tag": _groups(_collapse(by_tm, rates), 12),
        "by_branch": _groups(_collapse(by_bm, rates), 12),
        "cache": {
            "hit_ratio": totals["cache_hit_ratio"],
            "savings_usd": totals["cache_savings_usd"],
            "unpriced_savings_tokens": totals["unpriced_savings_tokens"],
            "by_day": cache_days,
        },
        "latest_runs": _latest(rollup, filters, cutoff, latest),
        "read": {
            "records": rollup.records,
            "bad_lines": rollup.bad_lines,
            "not_counted": rollup.not_counted,
            "read_bytes": rollup.read_bytes,
            "total_bytes": rollup.total_bytes,
        },
    }


def _merge_first(by_dm: dict[tuple[str, str], list[Any]]) -> dict[tuple[str, str], list[Any]]:
    """(day, model) -> (model, model) sums: drop the day, keep the model for pricing savings."""
    out: dict[tuple[str, str], list[Any]] = {}
    for (_, model), sums in by_dm.items():
        row = out.get((model, model))
        if row is None:
            out[(model, model)] = list(sums)
        else:
            _add(row, sums)
    return out


def _latest(rollup: Rollup, filters: Filters, cutoff: str, limit: int) -> list[Run]:
    tag_key, _, tag_value = (filters.tag or "").partition("=")
    picked = []
    for day, rec in rollup.latest:
        if day < cutoff or rec["id"] in rollup.superseded or rec["id"] in rollup.dropped:
            continue
        if filters.project is not None and _str(rec.get("project")) != filters.project:
            continue
        if filters.model is not None and _str(rec.get("model")) != filters.model:
            continue
        if filters.tag is not None and _tags(rec).get(tag_key) != tag_value:
            continue
        picked.append((day, rec))
    picked.sort(key=lambda dr: str(dr[1].get("started_at")), reverse=True)
    return [_run(day, rec) for day, rec in picked[:limit]]


def _tz_label() -> str:
    now = datetime.now().astimezone()
    offset = now.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def build_view(
    ledger: Path, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN
) -> View:
    """One-shot: read the whole ledger and answer one filter set (the HTML report's path)."""
    rollup = Rollup(ledger)
    rollup.refresh()
    return rollup.view(filters, today=today, latest=latest)


def to_json(view: View) -> bytes:
    return orjson.dumps(view)
