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

import os
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict

import orjson

from ..errors import UsageError
from ..ledger.store import segments
from ..record import is_record, parse_iso

# Sums are plain lists (fast to add into); these name the slots.
RUNS, INPUT, OUTPUT, CACHE_READ, CACHE_CREATION, COST, EST_COST, UNPRICED_RUNS, UNPRICED_TOKENS = range(9)
_WIDTH = 9
LATEST_KEPT = 2000  # newest runs kept in memory for the "latest runs" table (filtered at view time)
LATEST_SHOWN = 50
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


def _add(into: list[Any], other: list[Any]) -> None:
    for i in range(_WIDTH):
        into[i] += other[i]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) and value else NONE_LABEL


class _DayOf:
    """UTC ISO timestamp -> local calendar day, cached per hour (1M records share ~9k hours a year)."""

    def __init__(self) -> None:
        self._hours: dict[str, datetime] = {}

    def __call__(self, stamp: Any) -> str | None:
        if not isinstance(stamp, str):
            return None
        if len(stamp) >= 16 and stamp[10] == "T" and stamp.endswith(("Z", "+00:00")):
            hour = stamp[:13]
            local = self._hours.get(hour)
            if local is None:
                try:
                    utc = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
                except ValueError:
                    return None
                local = utc.astimezone()
                self._hours[hour] = local
            if local.minute == 0:  # whole-hour offset: the minute cannot move the day
                return local.strftime("%Y-%m-%d")
            try:
                return (local + timedelta(minutes=int(stamp[14:16]))).strftime("%Y-%m-%d")
            except ValueError:
                return None
        try:
            return parse_iso(stamp).astimezone().strftime("%Y-%m-%d")
        except ValueError:
            return None


def _parts(rec: dict[str, Any], model: str) -> list[tuple[str, list[Any]]]:
    """A record's sums, split by model when every model's cost is known, else all on its main model."""
    raw_tokens = rec.get("tokens")
    tokens: dict[str, Any] = raw_tokens if isinstance(raw_tokens, dict) else {}
    cost = rec.get("cost_usd")
    cost = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
    estimate = rec.get("cost_source") == "estimate"
    models = rec.get("models")
    if cost is not None and isinstance(models, dict) and len(models) > 1:
        split: list[tuple[str, list[Any]]] = []
        for name, mu in models.items():
            if not isinstance(mu, dict) or not isinstance(mu.get("cost_usd"), (int, float)):
                split = []
                break
            sums = _new()
            sums[INPUT] = _int(mu.get("input"))
            sums[OUTPUT] = _int(mu.get("output"))
            sums[CACHE_READ] = _int(mu.get("cache_read"))
            sums[CACHE_CREATION] = _int(mu.get("cache_creation"))
            sums[COST] = float(mu["cost_usd"])
            if mu.get("cost_source") == "estimate":
                sums[EST_COST] = sums[COST]
            split.append((str(name), sums))
        if split:
            # The run counts once, on its main model (or the first when the main one is not listed).
            names = [n for n, _ in split]
            main = names.index(model) if model in names else 0
            split[main][1][RUNS] = 1
            return split
    sums = _new()
    sums[RUNS] = 1
    sums[INPUT] = _int(tokens.get("input"))
    sums[OUTPUT] = _int(tokens.get("output"))
    sums[CACHE_READ] = _int(tokens.get("cache_read"))
    sums[CACHE_CREATION] = _int(tokens.get("cache_creation"))
    used = sums[INPUT] + sums[OUTPUT] + sums[CACHE_READ] + sums[CACHE_CREATION]
    if cost is not None:
        sums[COST] = cost
        if estimate:
            sums[EST_COST] = cost
    elif used:
        # Unpriced usage is kept apart: folding it in as $0 would understate the spend.
        sums[UNPRICED_RUNS] = 1
        sums[UNPRICED_TOKENS] = used
    return [(model, sums)]


def _ci(rec: dict[str, Any]) -> tuple[str | None, str | None]:
    ci = rec.get("ci")
    if not isinstance(ci, dict):
        return None, None
    url = ci.get("url") if isinstance(ci.get("url"), str) else None
    if url is not None and not url.startswith(("https://", "http://")):
        url = None  # never render a javascript: or other scheme as a link
    bits = [str(ci[k]) for k in ("provider", "workflow", "job") if isinstance(ci.get(k), str) and ci.get(k)]
    return url, " / ".join(bits) or None


@dataclass
class _FileState:
    offset: int = 0
    pending: bytes = b""


@dataclass
class Rollup:
    """Incremental sums over one ledger (all its segments)."""

    ledger: Path
    base: dict[Key, list[Any]] = field(default_factory=dict)
    tagged: dict[str, dict[Key, list[Any]]] = field(default_factory=dict)
    latest: deque[Run] = field(default_factory=lambda: deque(maxlen=LATEST_KEPT))
    records: int = 0
    bad_lines: int = 0
    _files: dict[tuple[int, int], _FileState] = field(default_factory=dict)
    _day_of: _DayOf = field(default_factory=_DayOf)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> bool:
        """Fold whatever was appended since the last call; True when anything changed."""
        with self._lock:
            return self._refresh()

    def _reset(self) -> None:
        self.base.clear()
        self.tagged.clear()
        self.latest.clear()
        self.records = 0
        self.bad_lines = 0
        self._files.clear()

    def _snapshot(self) -> list[tuple[Path, tuple[int, int], int]]:
        out = []
        for seg in segments(self.ledger):
            try:
                st = os.stat(seg, follow_symlinks=False)
            except FileNotFoundError:
                continue
            out.append((seg, (st.st_dev, st.st_ino), st.st_size))
        return out

    def _refresh(self) -> bool:
        snap = self._snapshot()
        seen = {ident for _, ident, _ in snap}
        rebuild = any(ident not in seen for ident in self._files) or any(
            ident in self._files and size < self._files[ident].offset for _, ident, size in snap
        )
        if rebuild:
            self._reset()
        changed = rebuild
        for path, ident, size in snap:
            state = self._files.setdefault(ident, _FileState())
            if size > state.offset:
                self._read(path, state, size)
                changed = True
        return changed

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
            self.fold(rec)

    def fold(self, rec: dict[str, Any]) -> None:
        day = self._day_of(rec.get("started_at"))
        if day is None:
            self.bad_lines += 1
            return
        self.records += 1
        model = _str(rec.get("model"))
        project = _str(rec.get("project"))
        git = rec.get("git")
        branch = _str(git.get("branch")) if isinstance(git, dict) else NONE_LABEL
        raw_tags = rec.get("tags")
        tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
        tag_keys = [f"{k}={v}" for k, v in tags.items() if isinstance(v, str)]
        parts = _parts(rec, model)
        for part_model, sums in parts:
            key = (day, part_model, project, branch)
            row = self.base.get(key)
            if row is None:
                self.base[key] = list(sums)
            else:
                _add(row, sums)
            for tk in tag_keys:
                bucket = self.tagged.setdefault(tk, {})
                row = bucket.get(key)
                if row is None:
                    bucket[key] = list(sums)
                else:
                    _add(row, sums)
        total = _new()
        for _, sums in parts:
            _add(total, sums)
        cost = rec.get("cost_usd")
        url, label = _ci(rec)
        duration = rec.get("duration_ms")
        self.latest.append(
            {
                "id": str(rec.get("id")),
                "started_at": str(rec.get("started_at")),
                "day": day,
                "status": _str(rec.get("status")),
                "model": model,
                "project": project,
                "branch": branch,
                "tags": {k: v for k, v in tags.items() if isinstance(v, str)},
                "tokens": total[INPUT] + total[OUTPUT] + total[CACHE_READ] + total[CACHE_CREATION],
                "input": total[INPUT],
                "output": total[OUTPUT],
                "cache_read": total[CACHE_READ],
                "cache_creation": total[CACHE_CREATION],
                "cost_usd": float(cost)
                if isinstance(cost, (int, float)) and not isinstance(cost, bool)
                else None,
                "cost_source": _str(rec.get("cost_source")),
                "duration_ms": duration
                if isinstance(duration, int) and not isinstance(duration, bool)
                else None,
                "ci_url": url,
                "ci_label": label,
            }
        )

    def view(self, filters: Filters, *, today: date | None = None, latest: int = LATEST_SHOWN) -> View:
        with self._lock:
            return _view(self, filters, today or datetime.now().astimezone().date(), latest)


def _cutoff(period: str, today: date) -> str:
    if period == "all":
        return ""
    return (today - timedelta(days=int(period[:-1]) - 1)).isoformat()


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


def _saving_rate(model: str, cache: dict[str, float | None]) -> float | None:
    """USD saved per cache-read token for a model (input price minus cache-read price)."""
    if model not in cache:
        from ..pricing import rates

        r = rates(model) if model != NONE_LABEL else None
        cache[model] = (r.input - r.cache_read) if r is not None else None
    return cache[model]


class _Acc:
    """Sums plus cache savings for one group."""

    __slots__ = ("savings", "sums", "unpriced_savings")

    def __init__(self) -> None:
        self.sums = _new()
        self.savings = 0.0
        self.unpriced_savings = 0

    def add(self, sums: list[Any], rate: float | None) -> None:
        _add(self.sums, sums)
        if rate is None:
            self.unpriced_savings += sums[CACHE_READ]
        else:
            self.savings += sums[CACHE_READ] * rate

    def totals(self) -> Totals:
        known = self.savings if self.sums[CACHE_READ] > self.unpriced_savings else None
        return _totals(self.sums, round(known, 10) if known is not None else None, self.unpriced_savings)


def _groups(accs: dict[str, _Acc], limit: int) -> list[Group]:
    ordered = sorted(accs.items(), key=lambda kv: (-kv[1].sums[COST], -kv[1].sums[RUNS], kv[0]))
    out: list[Group] = [{"key": k, "totals": a.totals()} for k, a in ordered[:limit]]
    if len(ordered) > limit:
        rest = _Acc()
        for _, a in ordered[limit:]:
            _add(rest.sums, a.sums)
            rest.savings += a.savings
            rest.unpriced_savings += a.unpriced_savings
        out.append({"key": f"{len(ordered) - limit} others", "totals": rest.totals()})
    return out


def _view(rollup: Rollup, filters: Filters, today: date, latest: int) -> View:
    cutoff = _cutoff(filters.period, today)
    rows = rollup.base if filters.tag is None else rollup.tagged.get(filters.tag, {})
    rates: dict[str, float | None] = {}
    total = _Acc()
    by_dm: dict[tuple[str, str], _Acc] = {}
    by_project: dict[str, _Acc] = {}
    by_branch: dict[str, _Acc] = {}
    by_day: dict[str, _Acc] = {}

    def keep(key: Key) -> bool:
        day, model, project, _ = key
        return (
            day >= cutoff
            and (filters.model is None or model == filters.model)
            and (filters.project is None or project == filters.project)
        )

    for key, sums in rows.items():
        if not keep(key):
            continue
        day, model, project, branch = key
        rate = _saving_rate(model, rates)
        total.add(sums, rate)
        for accs, k in ((by_project, project), (by_branch, branch), (by_day, day)):
            acc = accs.get(k)
            if acc is None:
                acc = accs[k] = _Acc()
            acc.add(sums, rate)
        dm = by_dm.get((day, model))
        if dm is None:
            dm = by_dm[(day, model)] = _Acc()
        dm.add(sums, rate)

    by_tag: dict[str, _Acc] = {}
    for tag, bucket in rollup.tagged.items():
        if filters.tag is not None and tag != filters.tag:
            continue
        acc = _Acc()
        for key, sums in bucket.items():
            if keep(key):
                acc.add(sums, _saving_rate(key[1], rates))
        if acc.sums[RUNS] or acc.sums[COST] or acc.sums[UNPRICED_TOKENS]:
            by_tag[tag] = acc

    model_cost: dict[str, list[float]] = {}
    for (_, model), acc in by_dm.items():
        entry = model_cost.setdefault(model, [0.0, 0.0])
        entry[0] += acc.sums[COST]
        entry[1] += acc.sums[INPUT] + acc.sums[OUTPUT] + acc.sums[CACHE_READ] + acc.sums[CACHE_CREATION]
    models = sorted(model_cost, key=lambda m: (-model_cost[m][0], -model_cost[m][1], m))

    if by_day:
        first = date.fromisoformat(min(by_day)) if not cutoff else date.fromisoformat(cutoff)
        last = max(today, date.fromisoformat(max(by_day)))
        days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    else:
        days = []

    options = {
        "periods": list(PERIODS),
        "projects": sorted({k[2] for k in rollup.base}),
        "models": sorted({k[1] for k in rollup.base}),
        "tags": sorted(rollup.tagged),
    }
    day_models: list[DayModel] = []
    for (day, model), acc in sorted(by_dm.items()):
        s = acc.sums
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
    cache_days: list[CacheDay] = []
    for day in sorted(by_day):
        t = by_day[day].totals()
        cache_days.append(
            {"day": day, "hit_ratio": t["cache_hit_ratio"], "savings_usd": t["cache_savings_usd"]}
        )
    totals = total.totals()
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ledger": str(rollup.ledger),
        "timezone": _tz_label(),
        "filters": filters.as_dict(),
        "options": options,
        "days": days,
        "models": models,
        "totals": totals,
        "by_day_by_model": day_models,
        "by_project": _groups(by_project, 12),
        "by_tag": _groups(by_tag, 12),
        "by_branch": _groups(by_branch, 12),
        "cache": {
            "hit_ratio": totals["cache_hit_ratio"],
            "savings_usd": totals["cache_savings_usd"],
            "unpriced_savings_tokens": totals["unpriced_savings_tokens"],
            "by_day": cache_days,
        },
        "latest_runs": _latest(rollup.latest, filters, cutoff, latest),
        "read": {"records": rollup.records, "bad_lines": rollup.bad_lines},
    }


def _latest(runs: Iterable[Run], filters: Filters, cutoff: str, limit: int) -> list[Run]:
    tag_key, _, tag_value = (filters.tag or "").partition("=")
    picked = [
        r
        for r in runs
        if r["day"] >= cutoff
        and (filters.project is None or r["project"] == filters.project)
        and (filters.model is None or r["model"] == filters.model)
        and (filters.tag is None or r["tags"].get(tag_key) == tag_value)
    ]
    picked.sort(key=lambda r: r["started_at"], reverse=True)
    return picked[:limit]


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
