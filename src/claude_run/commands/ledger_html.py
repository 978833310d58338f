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
    period: Annotated[str, typer.Option(help="Nd (e.g. 7d, 30d) or all.")] = "30d",
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
    from ..paths import ledger_path

    filters = parse_filters(period, project, model, tag)
    view = build_view(ledger_path(ledger), filters, latest=latest)
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    t = view["totals"]
    sys.stderr.write(f"wrote {target} ({t['runs']:,} runs, ${t['cost_usd']:,.2f})\n")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
