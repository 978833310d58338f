"""What `ledger import` remembers between runs, beside the ledger.

Two files, so that an import with nothing new stays a few stats:
- `<ledger>.import.json`, the index: per transcript file its identity (device, inode), size, mtime
  and the offset read up to, and the session it belongs to; and the identity of the ledger the
  state was last reconciled with (`ledger.identity`). Read on every import.
- `<ledger>.import-sessions.json`: per session its deduplicated messages (key -> usage), facts and
  the id of its latest record. Read only when some file has new bytes.
Both are replaced atomically (write to a temporary file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import LedgerError
from ..ledger.identity import Identity
from .session import Session

STATE_VERSION = 1


@dataclass
class FileState:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    end: int  # bytes read: the offset of the first line not yet read
    session: str
    subagent: bool

    def to_json(self) -> list[Any]:
        return [self.dev, self.ino, self.size, self.mtime_ns, self.end, self.session, self.subagent]

    @classmethod
    def from_json(cls, raw: list[Any]) -> FileState:
        return cls(int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]), str(raw[5]), bool(raw[6]))


@dataclass
class ImportState:
    ledger: Path
    files: dict[str, FileState] = field(default_factory=dict)
    reset: bool = False  # the sessions state was missing or damaged: every file must be read again
    # The ledger as it was when this state last matched it; None: unknown (an older state, or none).
    ledger_identity: Identity | None = None
    _sessions: dict[str, Session] | None = None

    @property
    def index_path(self) -> Path:
        return self.ledger.with_name(self.ledger.name + ".import.json")

    @property
    def sessions_path(self) -> Path:
        return self.ledger.with_name(self.ledger.name + ".import-sessions.json")

    @classmethod
    def load(cls, ledger: Path) -> ImportState:
        state = cls(ledger)
        raw = _read_json(state.index_path)
        if raw is not None:
            files = raw.get("files") if isinstance(raw, dict) and raw.get("v") == STATE_VERSION else None
            if isinstance(files, dict):
                for path, entry in files.items():
                    with contextlib.suppress(TypeError, ValueError, IndexError):
                        state.files[path] = FileState.from_json(entry)
                state.ledger_identity = Identity.from_json(raw.get("ledger"))
        return state

    def describes_ledger(self) -> bool:
        """The ledger is still the one this state was written against (lines appended at most)."""
        from ..ledger.identity import holds

        return self.ledger_identity is not None and holds(self.ledger_identity, self.ledger)

    def sessions(self) -> dict[str, Session]:
        """The per-session state, loaded on first use."""
        if self._sessions is None:
            self._sessions = {}
            raw = _read_json(self.sessions_path)
            if isinstance(raw, dict) and raw.get("v") == STATE_VERSION and isinstance(raw.get("s"), dict):
                for key, entry in raw["s"].items():
                    if isinstance(entry, dict):
                        self._sessions[key] = Session.from_state(key, entry)
            elif self.files:
                # The index without its sessions is useless (cannot continue a session): start over.
                self.files.clear()
                self.reset = True
        return self._sessions

    def save(self) -> None:
        if self._sessions is not None:
            _write_atomic(self.sessions_path, _sessions_json(self._sessions))
        index: dict[str, Any] = {"v": STATE_VERSION, "files": {p: f.to_json() for p, f in self.files.items()}}
        if self.ledger_identity is not None:
            index["ledger"] = self.ledger_identity.to_json()
        _write_atomic(self.index_path, [orjson.dumps(index)])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One import at a time per ledger (two would both read the same new bytes).

        The ledger's own locking, on `<ledger>.import.lock`: not the ledger's lock, which the
        import takes again to append its records.
        """
        from ..ledger.store import locked

        with locked(self.ledger.with_name(self.ledger.name + ".import")):
            yield


def _read_json(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"cannot read import state {path}: {exc.strerror or exc}") from exc
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None  # a damaged state only costs a full re-read; records supersede by session


def _sessions_json(sessions: dict[str, Session]) -> Iterator[bytes]:
    """The sessions document, one session at a time: never the whole (tens of MB) in memory."""
    yield b'{"v":%d,"s":{' % STATE_VERSION
    first = True
    for key, session in sessions.items():
        yield (b"" if first else b",") + orjson.dumps(key) + b":" + orjson.dumps(session.to_state())
        first = False
    yield b"}}"


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                for data in chunks:
                    fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise LedgerError(f"cannot write import state {path}: {exc.strerror or exc}") from exc
