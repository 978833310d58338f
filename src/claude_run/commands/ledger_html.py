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
        str,
        typer.Option(
            help="The period: 30d, this-month, last-quarter, FROM..TO, … (the date grammar) or all."
        ),
    ] = "30d",
    since: Annotated[
        str | None, typer.Option(help="From this day (the date grammar); instead of --period.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this day, included; needs --since.")] = None,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
    hide_path: Annotated[
        bool, typer.Option("--hide-path", help="Leave the ledger's path out of the report.")
    ] = False,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag (KEY=VALUE).")] = None,
    latest: Annotated[int, typer.Option(help="How many latest runs the table shows.", min=1, max=10000)] = 50,
    budget_daily: Annotated[
        float | None, typer.Option("--budget-daily", metavar="USD", min=0.0, help="Draw this daily budget.")
    ] = None,
    budget_monthly: Annotated[
        float | None,
        typer.Option("--budget-monthly", metavar="USD", min=0.0, help="Draw this monthly budget."),
    ] = None,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger file (default: $CLAUDE_RUN_LEDGER or the data dir).")
    ] = None,
) -> None:
    """Write the spend report (charts, totals, latest runs) as one HTML file that needs no network."""
    from ..dashboard.data import Budgets, build_view, parse_filters
    from ..dashboard.page import document
    from ..errors import UsageError
    from ..gates import check_ledger
    from ..paths import ledger_path

    if until is not None and since is None:
        raise UsageError("--until needs --since (or give --period FROM..TO)")
    if since is not None:
        period = since if until is None else f"{since}..{until}"
    filters = parse_filters(period, project, model, tag)
    path = ledger_path(ledger)
    check_ledger(path, reading=True)
    view = build_view(path, filters, latest=latest, budgets=Budgets(budget_daily, budget_monthly))
    text = document(view, live=False, title=title, hide_path=hide_path)
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
    sys.stderr.write(
        f"claude-run: wrote {target} ({view['period']['label']}: {runs}, {fmt_usd(t['cost_usd'])})\n"
    )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
