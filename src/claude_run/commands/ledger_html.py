"""`claude-run ledger report --html FILE`: the dashboard's views as one self-contained HTML file."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer


def report(
    html: Annotated[
        str, typer.Option("--html", help="Write the report to FILE ('-' for stdout).", metavar="FILE")
    ],
    period: Annotated[
        str, typer.Option(help="From when: 30d, 4w, 3m, this-month, YYYY-MM-DD, … (the date grammar) or all.")
    ] = "30d",
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag (KEY=VALUE).")] = None,
    latest: Annotated[int, typer.Option(help="How many latest runs the table shows.", min=1, max=10000)] = 50,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger file (default: $CLAUDE_RUN_LEDGER or the data dir).")
    ] = None,
) -> None:
    """Write the spend report (charts, totals, latest runs) as one HTML file that needs no network."""
    from ..dashboard.data import build_view, parse_filters
    from ..dashboard.page import document
    from ..errors import UsageError
    from ..gates import check_ledger
    from ..paths import ledger_path

    filters = parse_filters(_days(period), project, model, tag)
    path = ledger_path(ledger)
    check_ledger(path, reading=True)
    view = build_view(path, filters, latest=latest)
    text = document(view, live=False)
    if html == "-":
        sys.stdout.write(text)
        return
    target = Path(html).expanduser()
    if target.is_dir():
        raise UsageError(f"--html {html}: is a directory")
    # Temp file + rename: a CI step uploading the artifact never sees half a report.
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=target.parent or Path("."))
    except OSError as exc:
        raise UsageError(f"cannot write {html}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # spend is private, like the ledger it comes from
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    t = view["totals"]
    from ..text import fmt_usd, plural

    runs = plural(f"{t['runs']:,}", "run") if t["runs"] != 1 else "1 run"
    sys.stderr.write(f"claude-run: wrote {target} ({runs}, {fmt_usd(t['cost_usd'])})\n")


def _days(period: str) -> str:
    """`--period` in the one date grammar, as the dashboard's `Nd` (whole days up to today)."""
    from datetime import date

    from ..errors import UsageError
    from ..query.timeparse import parse_bound, resolve_tz

    if period.strip().lower() == "all":
        return "all"
    if ".." in period:
        raise UsageError(f"--period {period!r}: the report covers a period up to now; give its start")
    zone = resolve_tz(None)
    start = parse_bound(period, zone, end=False)
    if start.day is None:  # an instant: the whole day it falls in
        from ..query.timeparse import day_of

        day = day_of(start.ts(zone), zone)
    else:
        day = start.day
    days = date.today().toordinal() - day + 1
    if days < 1:
        raise UsageError(f"--period {period!r} starts in the future")
    return f"{days}d"


def register(app: typer.Typer) -> None:
    app.command("report")(report)
