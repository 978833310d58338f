"""Rotation: past a size the live ledger is renamed to a dated segment beside it; old segments may expire.

Rotation runs inside an append, under the exclusive lock, so no writer can be mid-write on the file
being renamed, and a reader holding a snapshot keeps reading the renamed inode. A failed rotation
never costs the record being appended: it is reported and the append goes to the live file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import ClaudeRunError, UsageError
from .atomic import fsync_dir
from .store import bump_generation_locked, rotated_segments, segment_path, segment_stamp

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_BYTES_ENV = "CLAUDE_RUN_LEDGER_MAX_BYTES"
KEEP_DAYS_ENV = "CLAUDE_RUN_LEDGER_KEEP_DAYS"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
MAX_SIZE = 1 << 50
MAX_KEEP_DAYS = 36525.0
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """`52428800`, `50M`, `50MB`, `50MiB`, `1g`: binary units. 0 disables rotation."""
    match = _SIZE_RE.match(text)
    if not match or len(match.group(1)) > 18:
        raise UsageError(f"invalid size {text!r}: use a number of bytes or e.g. 50M, 1G")
    unit = (match.group(2) or "").lower()[:1]
    size = int(match.group(1)) * _UNITS[unit]
    if size > MAX_SIZE:
        raise UsageError(f"invalid size {text!r}: at most 1P")
    return size


def parse_keep_days(text: str, name: str = "--keep-days") -> float:
    """Days (finite, > 0, at most a century: timestamps must stay computable)."""
    from ..gates import number

    return number(text, name, low=0, low_open=True, high=MAX_KEEP_DAYS)


@dataclass(frozen=True)
class RotationPolicy:
    """When to roll the live ledger (`max_bytes`, 0 = never) and how long rotated segments live."""

    max_bytes: int = DEFAULT_MAX_BYTES
    keep_days: float | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RotationPolicy:
        """The policy from the environment; a malformed value falls back to the default (see `problems`).

        An append must never fail over a typo in a tuning variable: the record matters more.
        """
        policy, _ = cls.from_env_checked(env)
        return policy

    @classmethod
    def from_env_checked(cls, env: dict[str, str] | None = None) -> tuple[RotationPolicy, list[str]]:
        env = dict(os.environ) if env is None else env
        problems: list[str] = []
        max_bytes = DEFAULT_MAX_BYTES
        keep_days: float | None = None
        raw = env.get(MAX_BYTES_ENV, "").strip()
        if raw:
            try:
                max_bytes = parse_size(raw)
            except UsageError as exc:
                problems.append(f"${MAX_BYTES_ENV}: {exc.message}; using {DEFAULT_MAX_BYTES}")
        raw = env.get(KEEP_DAYS_ENV, "").strip()
        if raw:
            try:
                keep_days = parse_keep_days(raw, f"${KEEP_DAYS_ENV}")
            except UsageError as exc:
                problems.append(f"{exc.message}; keeping every segment")
        return cls(max_bytes, keep_days), problems


def _stamp(now: float) -> str:
    ms = int(now * 1000) % 1000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{ms:03d}Z"


def stamp_time(stamp: str) -> datetime:
    digits = stamp.rstrip("Z")
    base = datetime.strptime(digits[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    ms = int(digits[15:18]) if len(digits) >= 18 else 0
    return base + timedelta(milliseconds=ms)


def rotate_locked(ledger: Path, *, now: float | None = None) -> Path | None:
    """Rename the live ledger to a new dated segment. The caller holds the exclusive lock."""
    try:
        if ledger.stat().st_size == 0:
            return None
    except FileNotFoundError:
        return None
    stamp = _stamp(time.time() if now is None else now)
    target = segment_path(ledger, stamp)
    n = 0
    # Under the lock nobody else rotates, so checking for a free name cannot race with a writer.
    while target.exists() or target.is_symlink():
        n += 1
        target = segment_path(ledger, f"{stamp}-{n}")
    os.rename(ledger, target)
    fsync_dir(ledger.parent)
    bump_generation_locked(ledger)
    return target


def expired_segments(ledger: Path, keep_days: float, *, now: float | None = None) -> list[Path]:
    """Rotated segments closed more than `keep_days` ago: every record in them is at least that old."""
    cutoff = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc) - timedelta(
        days=keep_days
    )
    out = []
    for seg in rotated_segments(ledger):
        stamp = segment_stamp(seg)
        if stamp is None:
            continue
        try:
            closed = stamp_time(stamp)
        except ValueError:
            continue
        if closed < cutoff:
            out.append(seg)
    return out


def apply_retention_locked(ledger: Path, keep_days: float, *, now: float | None = None) -> list[Path]:
    """Delete expired segments, keeping supersede chains consistent. The caller holds the lock."""
    expired = expired_segments(ledger, keep_days, now=now)
    if not expired:
        return []
    from ..record.schema import named_target
    from .maintenance import drop_records_locked, note_pruned_locked
    from .store import ReadStats, iter_file_records

    # Every record of a segment started before it was closed: none of those may come back.
    stamps = [segment_stamp(seg) for seg in expired]
    note_pruned_locked(ledger, max(stamp_time(s) for s in stamps if s is not None))
    links = any(named_target(rec) for seg in expired for rec in iter_file_records(seg, ReadStats()))
    if links:
        # A successor is about to go: what it superseded must go too (see maintenance).
        drop_records_locked(ledger, lambda _seg, _rec: False, whole_files=frozenset(expired))
        return expired
    for seg in expired:
        with contextlib.suppress(FileNotFoundError):
            seg.unlink()
    fsync_dir(ledger.parent)
    bump_generation_locked(ledger)
    return expired


def maybe_rotate_locked(ledger: Path, incoming: int, policy: RotationPolicy) -> Path | None:
    """Rotate when this append would take the live ledger past `max_bytes` (and it holds something).

    The record is still appended if rotation fails (full disk, odd permissions): a lost record is
    worse than a large file, so the failure is reported on stderr and swallowed.
    """
    if policy.max_bytes <= 0:
        return None
    try:
        size = ledger.stat().st_size
    except OSError:
        return None
    if size == 0 or size + incoming <= policy.max_bytes:
        return None
    try:
        target = rotate_locked(ledger)
        if policy.keep_days is not None:
            apply_retention_locked(ledger, policy.keep_days)
    except (OSError, ClaudeRunError) as exc:
        message = exc.message if isinstance(exc, ClaudeRunError) else (exc.strerror or str(exc))
        with contextlib.suppress(OSError):
            sys.stderr.write(f"claude-run: warning: ledger rotation failed: {message}\n")
        return None
    return target
