"""Per-day, per-model totals straight from transcripts, with the importer's exact rules.

Days are cut in a given time zone (default: the local one), as ccusage cuts them. Used to check the
importer against ccusage day by day; a record covers a whole session, which can span midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone, tzinfo
from pathlib import Path

from .locate import discover, roots_for
from .scan import SYNTHETIC, scan_file
from .session import Session, TokenSums


def daily_totals(dirs: Iterable[Path], tz: tzinfo | None = None) -> dict[str, dict[str, TokenSums]]:
    """{YYYY-MM-DD: {model: sums}} over every transcript under `dirs` (config or projects dirs)."""
    files = discover(roots_for(dirs))
    scans = [scan_file(f.path, 0, f.subagent, True, keep_ts=True).pack() for f in files]
    scans.sort(key=lambda s: (s.first_ts is None, s.first_ts or "", s.path))
    owners: dict[str, str] = {}
    sessions: dict[str, Session] = {}
    by_path = {f.path: f for f in files}
    for scan in scans:
        key = by_path[scan.path].session_key
        sessions.setdefault(key, Session(key=key)).fold(scan, owners)
    out: dict[str, dict[str, TokenSums]] = {}
    for session in sessions.values():
        for m in session.iter_messages():
            if m[0] == SYNTHETIC or m[7] is None:
                continue
            when = datetime.fromisoformat(m[7].replace("Z", "+00:00")).astimezone(tz or _local())
            day = when.strftime("%Y-%m-%d")
            out.setdefault(day, {}).setdefault(m[0], TokenSums()).add(m)
    return out


def _local() -> tzinfo:
    return datetime.now(timezone.utc).astimezone().tzinfo or timezone.utc
