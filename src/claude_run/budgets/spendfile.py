"""Recorded spend of budget periods, kept up to date from the ledger's new bytes: the budget check's source.

A budget check runs before every budgeted run, where importing the read engine (DuckDB, ~75 ms)
alone would cost most of the check's allowance. So a small derived file beside the ledger,
`<ledger>.budgets.json`, holds per budget scope (zone, project, tags):

- the counted spend per local day from the first day of the month it was built in (the sums the
  engine gives: exact decimals, with the records, unpriced and estimated counts);
- what the fold (`query/fold.py`) needs to judge lines appended since, for ids at or above a floor
  (the ULID time prefix of a day before the build): every such id (a copy of one does not count),
  those a greater id names in `supersedes`, and the records that add to the sums and that a new line
  can still take out: those at or above the floor (a new line may name them) and the imported ones (a
  new line of their session claims it), with their day and cost;
- the live file's identity and the offset covered (daytotals' check: generation, device, inode and
  checksums of the first and last 4 KiB covered).

A check verifies the identity and folds the appended lines. Whatever it cannot judge exactly sends
it to the read engine, which answers and rebuilds the file: an id below the floor, a line naming an
id below it that it does not know, an imported record that would count (an older line may claim its
session), a field of an odd type, a start not in our own format, a window before the first day kept,
a rewritten or rotated ledger. So the figures are always the engine's. The file is disposable.
"""

from __future__ import annotations

import json
import os

from ..record.modes import IMPORTED
from .daytotals import edges, generation, last_line_end, read_tail, save_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime, tzinfo
    from decimal import Decimal
    from pathlib import Path
    from typing import Any

    from .check import Spend

VERSION = 1
SUFFIX = ".budgets.json"
FLOOR_S = 86400  # the floor id: a day before the build (a run's id is made when it starts)
MAX_KEPT = 20_000  # ids kept above the floor; past it the next check rebuilds (a new floor)
MAX_COST_USD = 100_000.0  # record.schema.MAX_RUN_COST_USD (a heavier import), checked equal by the tests


class Unsure(Exception):
    """The appended lines hold something only the read engine can judge."""


class Scope:
    """One budget scope's state: day sums and what the fold needs to judge new lines."""

    def __init__(self, first_day: str, floor: str) -> None:
        self.first_day = first_day
        self.floor = floor
        self.days: dict[str, list[Any]] = {}  # day -> [usd (decimal text), records, unpriced, estimated]
        self.ids: set[str] = set()
        self.named: set[str] = set()
        # id -> [day, cost (decimal text) or None when unpriced, estimated, session if imported]
        self.adds: dict[str, list[Any]] = {}
        self.identity: list[Any] = []
        self.covered = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day,
            "floor": self.floor,
            "days": self.days,
            "ids": sorted(self.ids),
            "named": sorted(self.named),
            "adds": self.adds,
            "identity": self.identity,
            "covered": self.covered,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Scope:
        s = cls(str(raw["first_day"]), str(raw["floor"]))
        s.days = {str(k): list(v) for k, v in raw["days"].items()}
        s.ids = set(raw["ids"])
        s.named = set(raw["named"])
        s.adds = {str(k): list(v) for k, v in raw["adds"].items()}
        s.identity = list(raw["identity"])
        s.covered = int(raw["covered"])
        return s

    def add(self, day: str, cost: Decimal | None, estimated: bool, sign: int) -> None:
        from decimal import Decimal

        row = self.days.setdefault(day, ["0", 0, 0, 0])
        if cost is not None:
            row[0] = str(Decimal(row[0]) + sign * cost)
        row[1] += sign
        row[2] += sign * (cost is None)
        row[3] += sign * (cost is not None and estimated)

    def spends(self, windows: list[tuple[str, str]]) -> list[Spend]:
        from decimal import Decimal

        from .check import Spend

        out = []
        for lo, hi in windows:
            usd, counts = Decimal(0), [0, 0, 0]
            for day, (d_usd, *d_counts) in self.days.items():
                if lo <= day < hi:
                    usd += Decimal(d_usd)
                    counts = [a + b for a, b in zip(counts, d_counts, strict=True)]
            out.append(Spend(float(usd), *counts))
        return out


def scope_key(tz_key: str, project: str | None, tags: Mapping[str, str]) -> str:
    return json.dumps([tz_key, project, sorted(tags.items())], separators=(",", ":"))


def path_of(ledger: Path) -> str:
    return str(ledger) + SUFFIX


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read())
        return raw if isinstance(raw, dict) and raw.get("v") == VERSION else {}
    except (OSError, ValueError):
        return {}


def _day_of(started: str, tz: tzinfo) -> str:
    """The local day of a start in our own format (`record.iso_utc`); Unsure for any other form,
    which the engine parses its own way."""
    from datetime import datetime, timezone

    if len(started) != 24 or started[10] != "T" or started[-1] != "Z":
        raise Unsure
    try:
        at = datetime.fromisoformat(started[:-1] + "+00:00")
    except ValueError:
        raise Unsure from None
    return started[:10] if tz is timezone.utc else at.astimezone(tz).strftime("%Y-%m-%d")


def _cost(rec: dict[str, Any]) -> Decimal | None:
    """The engine's priced cost (query/schema.py): a plausible JSON number not marked `unpriced`,
    as the decimal of its shortest text rounded half away from zero to 1e-12 USD; else None."""
    from decimal import ROUND_HALF_UP, Decimal

    cost = rec.get("cost_usd")
    if type(cost) not in (int, float) or rec.get("cost_source") == "unpriced":
        return None
    assert isinstance(cost, (int, float))
    if not 0 <= cost <= MAX_COST_USD:  # NaN too
        return None
    return Decimal(repr(cost)).quantize(Decimal("1e-12"), ROUND_HALF_UP)


def _text(rec: dict[str, Any], key: str) -> str | None:
    """A text field as the engine reads it ('' is missing); Unsure for another type."""
    value = rec.get(key)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise Unsure
    return value


def _matches(rec: dict[str, Any], project: str | None, tags: Mapping[str, str]) -> bool:
    if project is not None and _text(rec, "project") != project:
        return False
    if tags:
        have = rec.get("tags")
        if have is None:
            return False
        if type(have) is not dict or any(type(v) is not str for v in have.values()):
            raise Unsure
        return all(have.get(k) == v for k, v in tags.items())
    return True


def fold_tail(
    scope: Scope, lines: list[bytes], tz: tzinfo, project: str | None, tags: Mapping[str, str]
) -> None:
    """Fold appended lines into `scope` with the fold's rules, or raise Unsure."""
    recs: list[tuple[str, dict[str, Any]]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise Unsure from None  # the engine's judgement of a broken line may differ
        if type(rec) is not dict or rec.get("v") is None or rec.get("id") in (None, ""):
            continue  # a bad line to the engine too: never a record
        rid = rec["id"]
        if type(rec["v"]) is not int or type(rid) is not str:
            raise Unsure
        if rid < scope.floor:
            raise Unsure
        recs.append((rid, rec))
    # Rule 2: a line names its target when its id is greater; rule 3: a non-imported line claims its session.
    named: dict[str, str] = {}
    claimed: set[str] = set()
    for rid, rec in recs:
        target = _text(rec, "supersedes")
        if target is not None and rid > target:
            named[target] = max(rid, named.get(target, ""))
        session = _text(rec, "session_id")
        if session is not None and _text(rec, "mode") != IMPORTED:
            claimed.add(session)
    for target in named:
        if target in scope.adds:
            _take_out(scope, target)
        elif target < scope.floor:
            raise Unsure  # an older record we do not know: does it add to the sums?
    if claimed:
        for rid in [r for r, a in scope.adds.items() if a[3] is not None and a[3] in claimed]:
            _take_out(scope, rid)
    seen = scope.ids
    for rid, rec in recs:
        first = rid not in seen
        seen.add(rid)
        if not first or rid in scope.named or rid in named:
            continue
        imported = _text(rec, "mode") == IMPORTED
        session = _text(rec, "session_id")
        if imported and session is not None and session in claimed:
            continue
        started = rec.get("started_at")
        if started is None:
            continue  # no day: in no period
        if type(started) is not str:
            raise Unsure
        day = _day_of(started, tz)
        if day < scope.first_day or not _matches(rec, project, tags):
            continue
        if imported and session is not None:
            raise Unsure  # an older line of its session may claim it
        cost = _cost(rec)
        estimated = _text(rec, "cost_source") == "estimate" if cost is not None else False
        scope.add(day, cost, estimated, 1)
        scope.adds[rid] = [day, None if cost is None else str(cost), estimated, None]
    scope.named.update(t for t in named if t >= scope.floor)


def _take_out(scope: Scope, rid: str) -> None:
    from decimal import Decimal

    day, cost, estimated, _session = scope.adds.pop(rid)
    scope.add(day, None if cost is None else Decimal(cost), bool(estimated), -1)


def spends(
    ledger: Path,
    tz: tzinfo,
    tz_key: str,
    project: str | None,
    tags: Mapping[str, str],
    windows: list[tuple[datetime, datetime]],
    now: datetime,
) -> list[Spend]:
    """Recorded spend of each budget period window (local midnights in `tz`), from the file when it
    can answer exactly, else from the read engine (which then rebuilds the file's scope)."""
    path = path_of(ledger)
    key = scope_key(tz_key, project, tags)
    days = [
        (lo.astimezone(tz).strftime("%Y-%m-%d"), hi.astimezone(tz).strftime("%Y-%m-%d")) for lo, hi in windows
    ]
    found = _fresh(ledger, path, key, tz, project, tags, days)
    if found is not None:
        return found.spends(days)
    scope = _rebuild(ledger, tz, project, tags, now)
    if scope.identity:
        _store(path, _load(path), key, scope)
    return scope.spends(days)


def _store(path: str, stored: dict[str, Any], key: str, scope: Scope) -> None:
    """Save the scope with the others (a concurrent check may save its own: either is true)."""
    scopes = stored.get("scopes")
    scopes = dict(scopes) if isinstance(scopes, dict) else {}
    scopes[key] = scope.to_json()
    save_atomic(path, json.dumps({"v": VERSION, "scopes": scopes}, separators=(",", ":")).encode())


def _fresh(
    ledger: Path,
    path: str,
    key: str,
    tz: tzinfo,
    project: str | None,
    tags: Mapping[str, str],
    days: list[tuple[str, str]],
) -> Scope | None:
    """The scope brought up to date from the appended lines, or None when only the engine can say."""
    stored = _load(path)
    raw = stored.get("scopes", {}).get(key) if isinstance(stored.get("scopes"), dict) else None
    if raw is None:
        return None
    try:
        scope = Scope.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if any(lo < scope.first_day for lo, _ in days) or len(scope.identity) != 5:
        return None
    try:
        fd = os.open(ledger, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            scope.identity[:3] != [st.st_dev, st.st_ino, generation(str(ledger))]
            or scope.covered > st.st_size
            or scope.identity[3:] != edges(fd, scope.covered)
        ):
            return None
        if scope.covered == st.st_size:
            return scope
        lines, covered = read_tail(fd, scope.covered, st.st_size)
        if covered < st.st_size and _whole(fd, covered, st.st_size):
            return None  # a record without its newline: the engine counts it, we could not say where it ends
        try:
            fold_tail(scope, lines, tz, project, tags)
        except Unsure:
            return None
        if len(scope.ids) > MAX_KEPT:
            return None
        scope.covered = covered
        scope.identity = [*scope.identity[:3], *edges(fd, covered)]
    finally:
        os.close(fd)
    _store(path, stored, key, scope)
    return scope


def _whole(fd: int, start: int, end: int) -> bool:
    """Whether the bytes after the last newline are a whole JSON value (else a line being written,
    which this check leaves for the next one, as if it had come a moment earlier)."""
    os.lseek(fd, start, os.SEEK_SET)
    try:
        json.loads(os.read(fd, end - start))
    except ValueError:
        return False
    return True


def _rebuild(ledger: Path, tz: tzinfo, project: str | None, tags: Mapping[str, str], now: datetime) -> Scope:
    """The scope from the read engine: day sums from the first day of `now`'s month, and the ids,
    names and removable records above a floor a day before `now`."""
    from datetime import timezone
    from decimal import Decimal

    from ..query.engine import opened
    from ..query.filters import Filters
    from ..query.summary import local_time_sql, where_sql
    from ..query.timeparse import Bound
    from ..record.ids import new_id
    from .check import period_bounds

    first = period_bounds("monthly", now, tz)[0]
    scope = Scope(first.strftime("%Y-%m-%d"), new_id(int((now.timestamp() - FLOOR_S) * 1000))[:10])
    narrowed = Filters(
        since=Bound(instant=first.timestamp()),
        projects=(project,) if project is not None else (),
        tags=tuple(sorted(tags.items())),
    )
    where, params = where_sql(narrowed, timezone.utc, model_view=False)
    day = f"strftime({local_time_sql(tz)}, '%Y-%m-%d')"
    with opened(ledger, columns=("priced", "cost_usd", "cost_source", "project", "tags")) as eng:
        rows = eng.con.execute(
            f"""SELECT {day}, CASE WHEN l.priced THEN l.cost_usd::VARCHAR END,
                       coalesce(l.priced AND l.cost_source = 'estimate', false),
                       CASE WHEN l.mode = '{IMPORTED}' THEN l.session_id END,
                       l.id >= ? OR l.mode = '{IMPORTED}', l.id
                FROM _lines l WHERE {where}""",
            [scope.floor, *params],
        ).fetchall()
        scope.ids = {
            r[0] for r in eng.con.execute("SELECT id FROM _lines WHERE id >= ?", [scope.floor]).fetchall()
        }
        scope.named = {
            r[0]
            for r in eng.con.execute(
                "SELECT supersedes FROM _lines WHERE supersedes >= ? AND id > supersedes", [scope.floor]
            ).fetchall()
        }
        live = [f for f in eng.files if f[0] == str(ledger)]
        gen = eng.generation
    for d, cost, estimated, session, removable, rid in rows:
        scope.add(d, None if cost is None else Decimal(cost), bool(estimated), 1)
        if removable:
            scope.adds[rid] = [d, cost, bool(estimated), session]
    if live and len(scope.ids) <= MAX_KEPT:
        _path, dev, ino, size = live[0]
        scope.covered = last_line_end(str(ledger), size)
        try:
            fd = os.open(ledger, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return scope
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (dev, ino):  # else rotated or replaced since: keep no identity
                scope.identity = [dev, ino, gen, *edges(fd, scope.covered)]
        finally:
            os.close(fd)
    return scope
