"""The spend of budgeted runs going now, shared by every run under the same ledger.

A budget counts what the ledger records plus what the runs going now have spent so far. The latter
lives in one small file beside the ledger the budget reads, `<ledger>.inflight.json`:

    {"v": 1, "ledger": "/abs/ledger.jsonl", "seq": 7,
     "runs": {"<entry>": {"pid", "host", "started_at", "project", "tags", "spend_usd",
                          "reserve_usd", "updated", "baseline_seq"}},
     "settled": [{"started_at", "project", "tags", "cost_usd", "seq"}]}

- Every change happens under an exclusive lock on `<ledger>.inflight.lock` and replaces the file
  with a rename, so a reader without the lock sees the old or the new file, never half of one. No
  fsync: after a power loss the worst is an unreadable file, which is rebuilt (below).
- A run that died without cleaning up (SIGKILL, power loss) must not hold budget forever: an entry
  counts only while its process is alive (same host) and it was updated within `stale_after()`
  seconds (runs refresh theirs every `HEARTBEAT_S`). Dead entries are dropped at the next write.
- A run's record goes to the ledger and its entry moves to `settled` (with a new `seq`) in one
  step under the lock. A run that read the ledger's spend at `baseline_seq` adds the settled
  entries after it: its own figure stays current without reading the ledger again.
- A file that cannot be read (garbled, another version, another ledger's) gives one warning and is
  rebuilt: the runs going now put their entries back at their next update.

Imported only by budgeted runs and `claude-run budget`: never on a plain run's path.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import LedgerError

VERSION = 1
HEARTBEAT_S = 5.0
STALE_S = 30.0
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

Warn = Callable[[str], None]


def stale_after() -> float:
    """Seconds without an update after which a live-looking entry stops counting."""
    try:
        value = float(os.environ.get("CLAUDE_RUN_BUDGET_STALE", STALE_S))
    except ValueError:
        return STALE_S
    return value if value > 0 else STALE_S


def inflight_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".inflight.json")


def lock_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".inflight.lock")


def ledger_identity(ledger: Path) -> str:
    """Which ledger a file belongs to: its resolved path (a copied directory's file is not ours)."""
    return os.path.realpath(ledger)


def host() -> str:
    return os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"claude-run: {message}\n")


@dataclass
class Entry:
    """One run going now."""

    pid: int
    host: str
    started_at: str
    project: str | None
    tags: dict[str, str]
    spend_usd: float
    reserve_usd: float
    updated: float
    baseline_seq: int

    @property
    def counted(self) -> float:
        """What the run counts for: its spend, and at least its reservation until it is settled."""
        return max(self.spend_usd, self.reserve_usd)

    def alive(self, now: float, here: str, stale: float) -> bool:
        if now - self.updated > stale:
            return False
        if self.host != here:
            return True  # another machine sharing the ledger: freshness is all we can check
        return pid_alive(self.pid)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Entry:
        return cls(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            started_at=str(raw["started_at"]),
            project=None if raw.get("project") is None else str(raw["project"]),
            tags={str(k): str(v) for k, v in dict(raw.get("tags") or {}).items()},
            spend_usd=float(raw["spend_usd"]),
            reserve_usd=float(raw.get("reserve_usd") or 0.0),
            updated=float(raw["updated"]),
            baseline_seq=int(raw.get("baseline_seq") or 0),
        )


@dataclass
class Settled:
    """A finished run whose record is in the ledger since `seq`."""

    started_at: str
    project: str | None
    tags: dict[str, str]
    cost_usd: float
    seq: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Settled:
        return cls(
            started_at=str(raw["started_at"]),
            project=None if raw.get("project") is None else str(raw["project"]),
            tags={str(k): str(v) for k, v in dict(raw.get("tags") or {}).items()},
            cost_usd=float(raw["cost_usd"]),
            seq=int(raw["seq"]),
        )


@dataclass
class State:
    seq: int = 0
    runs: dict[str, Entry] = field(default_factory=dict)
    settled: list[Settled] = field(default_factory=list)

    def live(self, now: float | None = None) -> dict[str, Entry]:
        """The entries that still count (process alive, recently updated)."""
        now = time.time() if now is None else now
        here, stale = host(), stale_after()
        return {key: e for key, e in self.runs.items() if e.alive(now, here, stale)}

    def prune(self, now: float | None = None) -> None:
        """Drop dead entries, and settled ones no live run needs any more (all older than its baseline)."""
        self.runs = self.live(now)
        oldest = min((e.baseline_seq for e in self.runs.values()), default=self.seq)
        self.settled = [s for s in self.settled if s.seq > oldest]


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number: it exists
        return True
    except OSError:
        return False
    return True


class InflightFile:
    """The in-flight file of one ledger: lock-free reads, locked read-modify-write."""

    def __init__(self, ledger: Path, warn: Warn = _stderr_warning) -> None:
        self.ledger = ledger
        self.path = inflight_path(ledger)
        self.identity = ledger_identity(ledger)
        self._warn = warn
        self._warned = False
        self._stamp: tuple[int, int, int] | None = None
        self._cached = State()

    def read(self) -> State:
        """The current state; cheap when the file did not change since the last read (one stat)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._cached = None, State()
            return State()
        except OSError as exc:
            raise LedgerError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:  # replaced between the stat and the read: read the new one
                return self.read()
            except OSError as exc:
                raise LedgerError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
            self._cached = self._parse(data)
            self._stamp = stamp
        return _copy(self._cached)

    def _parse(self, data: bytes) -> State:
        try:
            raw = orjson.loads(data)
            if not isinstance(raw, dict) or raw.get("v") != VERSION:
                raise ValueError(f"not a version-{VERSION} in-flight file")
            if raw.get("ledger") != self.identity:
                raise ValueError(f"it belongs to another ledger ({raw.get('ledger')!r})")
            return State(
                seq=int(raw["seq"]),
                runs={str(k): Entry.from_json(v) for k, v in dict(raw["runs"]).items()},
                settled=[Settled.from_json(s) for s in raw["settled"]],
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if not self._warned:
                self._warned = True
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._warn(
                    f"the in-flight budget file {self.path} was unreadable ({reason}); rebuilt it:"
                    " runs going now count again from their next update"
                )
            return State()

    @contextlib.contextmanager
    def locked(self) -> Iterator[State]:
        """Hold the lock; yields the current state, written back (pruned) when the block ends.

        Written back even when the block raises (a refusal, a failed ledger append): what it changed
        before the error stands, and a failed write then never hides the block's own error.
        """
        fd = self.acquire()
        try:
            state = self.read_fresh()
            try:
                yield state
            except BaseException:
                with contextlib.suppress(LedgerError):
                    self.commit(state)
                raise
            self.commit(state)
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def read_fresh(self) -> State:
        self._stamp = None  # under the lock, read what is there now
        return self.read()

    def commit(self, state: State) -> None:
        state.prune()
        self._write(state)

    def warn(self, message: str) -> None:
        self._warn(message)

    def acquire(self) -> int:
        """Take the lock; returns the descriptor to close to release it."""
        lp = lock_path(self.ledger)
        try:
            self.ledger.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            fd = os.open(lp, os.O_RDWR | os.O_CREAT | _NOFOLLOW, FILE_MODE)
        except OSError as exc:
            raise LedgerError(f"cannot open the in-flight budget lock {lp}: {exc.strerror or exc}") from exc
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"cannot lock {lp}: {exc.strerror or exc}") from exc
        return fd

    def _write(self, state: State) -> None:
        body = orjson.dumps(
            {
                "v": VERSION,
                "ledger": self.identity,
                "seq": state.seq,
                "runs": {k: e.to_json() for k, e in state.runs.items()},
                "settled": [s.to_json() for s in state.settled],
            }
        )
        tmp = self.path.with_name(self.path.name + ".tmp")  # one writer at a time: a fixed name will do
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, FILE_MODE)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise LedgerError(
                f"cannot write the in-flight budget file {self.path}: {exc.strerror or exc}"
            ) from exc
        self._stamp = None
        self._cached = _copy(state)


def next_seq(seq: int) -> int:
    """Sequence numbers grow with the clock, so a rebuilt file never reuses one a live run has seen."""
    return max(seq + 1, int(time.time() * 1000))


def _copy(state: State) -> State:
    return State(
        state.seq,
        {k: Entry(**e.__dict__) for k, e in state.runs.items()},
        [Settled(**s.__dict__) for s in state.settled],
    )
