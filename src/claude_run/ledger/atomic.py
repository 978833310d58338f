"""Replace a file atomically: a reader sees the old contents or the new, never a half-written file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import LedgerError

FILE_MODE = 0o600


def fsync_dir(directory: Path) -> None:
    """Make a rename durable: without it a crash can bring back the old directory entry."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; renames there are durable enough
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path,
    chunks: Iterable[bytes],
    *,
    mode: int = FILE_MODE,
    before_replace: Callable[[], None] | None = None,
) -> int:
    """Write `chunks` to a temp file beside `path`, fsync, rename over `path`, fsync the directory.

    The temp name starts with a dot so it is never mistaken for a ledger segment. `before_replace`
    runs after the data is durable and before the rename (repair uses it to make quarantine durable
    first, so a crash can duplicate a bad line but never lose one). Returns the bytes written.
    """
    if path.is_symlink():
        raise LedgerError(f"refusing to replace {path}: it is a symbolic link")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LedgerError(f"cannot create a temporary file beside {path}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    written = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
            fh.flush()
            if hasattr(os, "fchmod"):  # mkstemp already made it 0600; say so explicitly for other modes
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise LedgerError(f"cannot rewrite {path}: {exc.strerror or exc}") from exc
        raise
    fsync_dir(path.parent)
    return written


_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def stale_temps(directory: Path, is_ours: Callable[[str], bool]) -> list[Path]:
    """Temp files `atomic_write` left behind when its process died, for targets `is_ours` accepts.

    Only meaningful under the lock that guards those targets: then no rewrite is in progress.
    """
    out: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return out
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if match and is_ours(match.group("target")) and not entry.is_symlink():
            out.append(entry)
    return sorted(out)
