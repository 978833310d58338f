"""Today's counted spend, kept up to date from the ledger's new bytes only: the status line's source.

The status line runs on every refresh of Claude's TUI, so it must not read the whole ledger. A small
derived file beside it, `<ledger>.today.json`, holds the records started today (id, cost, session,
whether the fold drops them) and the offset of the live file it covers. A refresh:

1. checks the file still describes this ledger — `ledger/identity.py`'s definition: the generation,
   and the live file's device, inode, covered size and checksums of its first and last 4 KiB (the
   rotated segments change only by rewrites, which bump the generation) — computed here with the
   stdlib alone, because importing identity.py (dataclasses, hashlib, orjson through the store)
   costs more than a whole refresh. A ledger deleted, replaced, restored, rotated or rewritten fails
   the check, and the file is rebuilt with one full read (the only full read);
2. reads the bytes appended since (usually none), applying the fold's rules (`query/fold.py`) to
   them: an id counts once; a new record naming a kept one in `supersedes` replaces it (appended
   records carry newer ids); a non-imported record claims its session, so an imported record of that
   session stops counting. The full read is the read engine's own answer;
3. on a new day, drops the records started before it.

Imported records of sessions claimed before today: a claim seen in the full read is kept when its
session has an imported record today; claims seen later are kept for WINDOW_DAYS (a claim and an
import of the same session start within a day of each other, as they are the same session).

The file is disposable: delete it and the next refresh rebuilds it. Stdlib only on the usual path
(`json`, not orjson, whose import costs ~20 ms); the full read goes through the read engine.
"""

from __future__ import annotations

import json
import os
import time
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import tzinfo
    from typing import Any

STATE_VERSION = 2
EDGE = 4096  # bytes checksummed at each end of the covered part
WINDOW_DAYS = 7
SUFFIX = ".today.json"
REBUILD_STALE_S = 600
MAX_COST_USD = 100_000.0  # record.MAX_RUN_COST_USD, checked equal by the tests
REPLACEABLE_MODE = "imported"  # record.schema.IMPORTED (stdlib only here), checked equal by the tests

# One kept record: [started_at, cost or None, session_id or None, imported, replaced]
if TYPE_CHECKING:
    Entry = list[Any]


def state_path(ledger: str) -> str:
    return ledger + SUFFIX


def generation(ledger: str) -> str:
    """store.generation without its imports: the token in `<ledger>.gen`, "0" when absent."""
    try:
        with open(ledger + ".gen", "rb") as fh:
            return fh.read(256).decode("ascii", "replace").strip() or "0"
    except FileNotFoundError:
        return "0"


def _read_at(fd: int, size: int, offset: int) -> bytes:
    """Up to `size` bytes from `offset` (os.pread, which Windows lacks, by seek and read)."""
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def edges(fd: int, covered: int) -> list[int]:
    head = _read_at(fd, min(EDGE, covered), 0)
    start = max(0, covered - EDGE)
    tail = _read_at(fd, covered - start, start)
    return [zlib.crc32(head), zlib.crc32(tail)]


def iso_ms(ts: float) -> str:
    """record.iso_utc's format (UTC, milliseconds, Z): our timestamps compare as strings."""
    t = time.gmtime(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(ts * 1000) % 1000:03d}Z"


def day_bounds(now: float, tz: tzinfo | None) -> tuple[float, float]:
    """[start, end) of the calendar day containing `now` in `tz` (None: UTC), as epoch seconds."""
    if tz is None:
        start = now - now % 86400
        return start, start + 86400
    from datetime import datetime, timezone

    from .check import period_bounds

    first, nxt = period_bounds("daily", datetime.fromtimestamp(now, timezone.utc), tz)
    return first.timestamp(), nxt.timestamp()


class Today:
    """The kept state, and the sums the status line asks of it."""

    def __init__(self, day_start: str, day_end: str, tz_key: str) -> None:
        self.day_start = day_start
        self.day_end = day_end
        self.tz_key = tz_key
        self.entries: dict[str, Entry] = {}
        self.claimers: dict[str, str] = {}  # session id -> latest started_at of a claiming record
        self.named: dict[str, str] = {}  # id named in a `supersedes` -> the greatest id naming it
        self.identity: list[Any] = []
        self.covered = 0

    def counts(self, entry: Entry) -> bool:
        if entry[4]:
            return False
        return not (entry[3] and entry[2] is not None and entry[2] in self.claimers)

    def spend(self, exclude_session: str | None = None) -> tuple[float, int, float]:
        """(counted USD started today, unpriced records, USD of those records from `exclude_session`)."""
        usd = session_usd = 0.0
        unpriced = 0
        for entry in self.entries.values():
            if not (self.day_start <= entry[0] < self.day_end) or not self.counts(entry):
                continue
            cost = entry[1]
            if cost is None:
                unpriced += 1
                continue
            usd += cost
            if exclude_session is not None and entry[2] == exclude_session:
                session_usd += cost
        return usd, unpriced, session_usd

    # -- the fold's rules on one appended record (query/fold.py), for the records kept here -------
    def see(self, rec: dict[str, Any], window_start: str) -> None:
        rid = rec.get("id")
        if not isinstance(rid, str) or not rid or not isinstance(rec.get("v"), int):
            return
        target = rec.get("supersedes")
        if type(target) is str and target and rid > target:  # a later (greater) id replaces
            self.named[target] = max(rid, self.named.get(target, ""))
            if target in self.entries:
                self.entries[target][4] = True
        started = _started(rec.get("started_at"))
        sid = rec.get("session_id")
        sid = sid if isinstance(sid, str) and sid else None
        imported = rec.get("mode") == REPLACEABLE_MODE
        if sid is not None and not imported:
            # A claim without a readable start is kept for the window, as a recent one.
            claimed_at = started if started is not None else window_start
            if claimed_at >= window_start:
                self.claimers[sid] = max(claimed_at, self.claimers.get(sid, ""))
        if started is None or started < self.day_start:
            return
        cost = rec.get("cost_usd")
        # Priced as the engine prices it: a plausible number not marked unpriced (query/schema.py).
        if (
            not isinstance(cost, (int, float))
            or isinstance(cost, bool)
            or not 0 <= cost <= MAX_COST_USD
            or rec.get("cost_source") == "unpriced"
        ):
            cost = None
        if rid in self.entries:
            return  # an id's first line is the one that counts (query.fold, rule 1)
        self.entries[rid] = [started, cost, sid, imported, self.named.get(rid, "") > rid]

    def roll(self, day_start: str, day_end: str, window_start: str) -> None:
        self.entries = {k: e for k, e in self.entries.items() if e[0] >= day_start}
        self.claimers = {s: t for s, t in self.claimers.items() if t >= window_start}
        self.day_start, self.day_end = day_start, day_end

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "v": STATE_VERSION,
                "tz": self.tz_key,
                "day": [self.day_start, self.day_end],
                "ledger": self.identity,
                "covered": self.covered,
                "entries": self.entries,
                "claimers": self.claimers,
                "named": self.named,
            },
            separators=(",", ":"),
        ).encode()


def _started(value: object) -> str | None:
    """started_at in our fixed-width UTC form, so kept records compare as strings."""
    if not isinstance(value, str):
        return None
    if len(value) == 24 and value[10] == "T" and value[-1] == "Z":
        return value
    try:
        from datetime import datetime, timezone

        text = value.strip()
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return iso_ms(dt.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _load(path: str) -> Today | None:
    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read())
        if raw.get("v") != STATE_VERSION:
            return None
        today = Today(str(raw["day"][0]), str(raw["day"][1]), str(raw["tz"]))
        today.identity = list(raw["ledger"])
        today.covered = int(raw["covered"])
        today.entries = {str(k): list(v) for k, v in raw["entries"].items()}
        today.claimers = {str(k): str(v) for k, v in raw["claimers"].items()}
        today.named = {str(k): str(v) for k, v in raw["named"].items()}
        for e in today.entries.values():
            if len(e) != 5 or not isinstance(e[0], str):
                return None
        return today
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None


def save_atomic(path: str, data: bytes) -> None:
    """Replace atomically; a failure (read-only dir) only means the next refresh reads again."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        import contextlib  # only here: it is not loaded on the status line's usual path

        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_tail(fd: int, start: int, size: int) -> tuple[list[bytes], int]:
    """Complete lines in [start, size) and the offset after the last one (a torn tail is left)."""
    data = _read_at(fd, size - start, start) if size > start else b""
    cut = data.rfind(b"\n")
    if cut < 0:
        return [], start
    return data[:cut].split(b"\n"), start + cut + 1


def _rebuild(ledger: str, day_start: str, day_end: str, window_start: str, tz_key: str) -> Today:
    """One full read through the read engine (`query`): today's records with the fold's verdict,
    and the sessions claimed within the window (for imports that arrive later)."""
    from pathlib import Path

    from ..query.engine import opened

    today = Today(day_start, day_end, tz_key)
    iso = "strftime(started_at, '%Y-%m-%dT%H:%M:%S.%gZ')"
    with opened(Path(ledger)) as eng:
        rows = eng.con.execute(
            f"""SELECT id, {iso}, CASE WHEN priced THEN cost_usd::DOUBLE END, session_id,
                       mode = '{REPLACEABLE_MODE}', counted
                FROM _lines WHERE started_at >= ?::TIMESTAMPTZ""",
            [day_start],
        ).fetchall()
        claims = eng.con.execute(
            f"""SELECT session_id, max({iso}) FROM _lines
                WHERE mode IS DISTINCT FROM '{REPLACEABLE_MODE}' AND session_id IS NOT NULL
                  AND (started_at >= ?::TIMESTAMPTZ OR session_id IN (
                      SELECT session_id FROM _lines WHERE mode = '{REPLACEABLE_MODE}'
                      AND started_at >= ?::TIMESTAMPTZ))
                GROUP BY 1""",
            [window_start, day_start],
        ).fetchall()
        named = eng.con.execute(
            """SELECT supersedes, max(id) FROM _lines
               WHERE supersedes IS NOT NULL AND id > supersedes AND started_at >= ?::TIMESTAMPTZ
               GROUP BY 1""",
            [window_start],
        ).fetchall()
        live = [f for f in eng.files if f[0] == ledger]
        generation = eng.generation
    today.named = {str(t): str(r) for t, r in named}
    for rid, started, cost, sid, imported, counted in rows:
        if rid not in today.entries:  # an id's first line is the one that counts
            today.entries[rid] = [started, cost, sid, bool(imported), not counted]
    for sid, claimed_at in claims:
        today.claimers[sid] = max(claimed_at or day_start, window_start)
    if live:
        _path, dev, ino, size = live[0]
        today.covered = last_line_end(ledger, size)
        today.identity = [dev, ino, generation]
    return today


def last_line_end(ledger: str, size: int) -> int:
    """The offset just past the last complete line within the first `size` bytes."""
    try:
        fd = os.open(ledger, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return 0
    try:
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            cut = _read_at(fd, pos - start, start).rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            pos = start
        return 0
    finally:
        os.close(fd)


def _ledger_bytes(ledger: str, live_size: int) -> int:
    from pathlib import Path

    from ..ledger.store import rotated_segments

    total = live_size
    for seg in rotated_segments(Path(ledger)):
        try:
            total += seg.stat().st_size
        except OSError:
            continue
    return total


def _rebuild_in_background(ledger: str, now: float, tz: tzinfo | None, tz_key: str) -> None:
    """One detached full read at a time (a marker file; a stale one, older than 10 minutes, is
    taken over), so that Claude's refreshes, which may cut a slow command short, never wait."""
    from ..background import detach

    marker = state_path(ledger) + ".building"
    try:
        if time.time() - os.stat(marker).st_mtime < REBUILD_STALE_S:
            return
        os.unlink(marker)
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return  # another refresh started it a moment ago, or the directory is read-only
    if detach():
        return
    try:
        load_today(ledger, now, tz, tz_key)
    except BaseException:
        pass  # the next refresh tries again; the status line says the figure is pending
    finally:
        try:
            os.unlink(marker)
        finally:
            os._exit(0)


def load_today(
    ledger: str,
    now: float | None = None,
    tz: tzinfo | None = None,
    tz_key: str = "UTC",
    *,
    inline_max: int | None = None,
) -> Today | None:
    """Today's state for `ledger`, brought up to date (and saved) with as little reading as possible.

    With `inline_max`, a full read of more ledger bytes than that is left to a detached process and
    None is returned: the figure comes with a later refresh.
    """
    now = time.time() if now is None else now
    start, end = day_bounds(now, tz)
    day_start, day_end = iso_ms(start), iso_ms(end)
    window_start = iso_ms(start - WINDOW_DAYS * 86400)
    path = state_path(ledger)
    try:
        fd = os.open(ledger, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        if _ledger_bytes(ledger, 0) == 0:
            return Today(day_start, day_end, tz_key)  # no ledger yet: nothing spent
        # Rotated a moment ago, the live file not yet written again: read the segments, keep nothing.
        return _rebuild(ledger, day_start, day_end, window_start, tz_key)
    try:
        st = os.fstat(fd)
        today = _load(path)
        fresh = (
            today is not None
            and today.tz_key == tz_key
            and today.day_start <= day_start
            and len(today.identity) == 5
            and today.identity[:3] == [st.st_dev, st.st_ino, generation(ledger)]
            and today.covered <= st.st_size
            and today.identity[3:] == edges(fd, today.covered)
        )
        changed = False
        if not fresh or today is None:
            if inline_max is not None and _ledger_bytes(ledger, st.st_size) > inline_max:
                _rebuild_in_background(ledger, now, tz, tz_key)
                return None
            today = _rebuild(ledger, day_start, day_end, window_start, tz_key)
            changed = True
        elif today.covered < st.st_size:
            lines, today.covered = read_tail(fd, today.covered, st.st_size)
            for line in lines:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    today.see(rec, window_start)
            changed = bool(lines)
        if today.day_start != day_start:
            today.roll(day_start, day_end, window_start)
            changed = True
        if changed:
            today.identity = [*today.identity[:3], *edges(fd, today.covered)]
            save_atomic(path, today.to_json())
        return today
    finally:
        os.close(fd)
