"""What every report command does around its query: the ledger through the path gate, the time
zone, filters from command-line strings, warnings on stderr and bytes on stdout.

Typer-free, so the fast `ledger summary` path (`summary_cmd`) and the typer commands
(`commands/ledger_reports.py`) share it.
"""

from __future__ import annotations

import sys
from datetime import tzinfo
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..query.filters import Filters


def reading_ledger(ledger: str | None) -> Path:
    """The ledger to read, through the one path gate (missing, directory, symlink: exit 74)."""
    from ..gates import check_ledger
    from ..paths import ledger_path

    path = ledger_path(ledger)
    check_ledger(path, reading=True)
    return path


def context(ledger: str | None, tz_name: str | None) -> tuple[Path, tzinfo]:
    from ..query.timeparse import resolve_tz

    zone = resolve_tz(tz_name)
    return reading_ledger(ledger), zone


def filters(
    tz: tzinfo,
    since: str | None,
    until: str | None,
    project: list[str] | None,
    model: str | None,
    status: list[str] | None,
    tag: list[str] | None,
) -> Filters:
    from ..query.filters import build_filters

    return build_filters(
        tz, since=since, until=until, projects=project, model=model, statuses=status, tags=tag
    )


def warn(warnings: list[str]) -> None:
    for w in warnings:
        sys.stderr.write(f"claude-run: warning: {w}\n")


def out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
