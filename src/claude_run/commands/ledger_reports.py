"""`claude-run ledger summary|compare|list|show|export`: thin wrappers over `claude_run.reports`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..reports.command import context as _ctx
from ..reports.command import filters as _filters
from ..reports.command import out as _out
from ..reports.command import reading_ledger as _ledger
from ..reports.command import warn as _warn

LedgerOpt = Annotated[
    str | None, typer.Option("--ledger", help="Ledger file (default: $CLAUDE_RUN_LEDGER, then the data dir).")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="From: YYYY-MM-DD, ISO time, 24h, 7d, 4w, 3m, today, this-week, this-month…"
    ),
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Up to (a date is included whole).")]
ProjectOpt = Annotated[list[str] | None, typer.Option("--project", help="Only these projects (repeatable).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only usage of models containing this text.")]
StatusOpt = Annotated[list[str] | None, typer.Option("--status", help="Only these statuses (repeatable).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Only runs with tag KEY=VALUE (repeatable).")]
TzOpt = Annotated[str | None, typer.Option("--tz", help="Time zone for days and dates (default: local).")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, markdown, json or csv.")]
TitleOpt = Annotated[str | None, typer.Option("--title", help="A heading (markdown: `### TITLE`).")]


def summary(
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="day|week|month|model|project|branch|session|status|mode|ci-job|tag:KEY,"
            " or agent|tool|mcp-server (the records' attribution)",
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    project: ProjectOpt = None,
    model: ModelOpt = None,
    status: StatusOpt = None,
    tag: TagOpt = None,
    tz: TzOpt = None,
    fmt: FormatOpt = "table",
    title: TitleOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Totals grouped by day (default) or other dimensions: tokens, cost, cache hit ratio and savings."""
    from ..reports.summary_cmd import summary as run

    run(by, since, until, project, model, status, tag, tz, fmt, title, ledger)


def compare(
    period: Annotated[str, typer.Option("--period", help="The period: 7d, this-month, or FROM..TO.")] = "7d",
    against: Annotated[
        str | None,
        typer.Option("--against", help="Baseline: a length (30d) ending where --period starts, or FROM..TO."),
    ] = None,
    project: ProjectOpt = None,
    model: ModelOpt = None,
    status: StatusOpt = None,
    tag: TagOpt = None,
    tz: TzOpt = None,
    fmt: FormatOpt = "table",
    ledger: LedgerOpt = None,
) -> None:
    """Two periods side by side: runs, cost, cost per run, cache hit ratio, and the change."""
    from ..gates import choice
    from ..reports.compare import COMPARE_FORMATS, compare_periods, render_compare

    choice(fmt, COMPARE_FORMATS, "--format")
    path, zone = _ctx(ledger, tz)
    base = _filters(zone, None, None, project, model, status, tag)
    result = compare_periods(path, period, against, base, zone)
    _warn(result.warnings)
    _out(render_compare(result, fmt))


def savings(
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Reprice every run at this model's list prices.")
    ] = None,
    what_if: Annotated[
        str | None, typer.Option("--what-if", help="What the runs would have cost on this model.")
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by", help="model (default), day|week|month|project|branch|session|status|mode|ci-job|tag:KEY"
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    project: ProjectOpt = None,
    model: ModelOpt = None,
    status: StatusOpt = None,
    tag: TagOpt = None,
    tz: TzOpt = None,
    fmt: FormatOpt = "table",
    title: TitleOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Actual cost against one model's list prices: saved $ and % (--baseline), or its cost (--what-if)."""
    from ..errors import UsageError
    from ..gates import choice
    from ..query.grouping import parse_group_by
    from ..query.savings import savings as run
    from ..reports.savings import FORMATS, render

    if (baseline is None) == (what_if is None):
        raise UsageError("ledger savings needs one of --baseline MODEL or --what-if MODEL")
    choice(fmt, FORMATS, "--format")
    group_by = parse_group_by(by or ["model"])
    path, zone = _ctx(ledger, tz)
    report = run(
        path,
        str(baseline or what_if),
        group_by,
        _filters(zone, since, until, project, model, status, tag),
        zone,
    )
    _warn(report.warnings)
    _out(render(report, fmt, what_if is not None, title))


def list_runs(
    n: Annotated[int, typer.Option("-n", "--number", help="How many runs (the most recent).", min=1)] = 20,
    since: SinceOpt = None,
    until: UntilOpt = None,
    project: ProjectOpt = None,
    model: ModelOpt = None,
    status: StatusOpt = None,
    tag: TagOpt = None,
    tz: TzOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="A JSON array of the records.")] = False,
    ledger: LedgerOpt = None,
) -> None:
    """The last N runs, one line each (oldest first)."""
    import orjson

    from ..query.records import latest
    from ..reports.listing import render_list

    path, zone = _ctx(ledger, tz)
    records = latest(path, n, _filters(zone, since, until, project, model, status, tag), zone)
    if json_out:
        _out(orjson.dumps(records, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _out(render_list(records, zone).encode())


def show(
    record_id: Annotated[str, typer.Argument(metavar="ID", help="A record id or a unique prefix of one.")],
    ledger: LedgerOpt = None,
) -> None:
    """One record in full (JSON)."""
    import orjson

    from ..query.records import find

    rec = find(_ledger(ledger), record_id)
    _out(orjson.dumps(rec, option=orjson.OPT_INDENT_2) + b"\n")


def export(
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, json, csv or parquet (needs --output).")
    ] = "jsonl",
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to FILE (atomically).")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    project: ProjectOpt = None,
    model: ModelOpt = None,
    status: StatusOpt = None,
    tag: TagOpt = None,
    tz: TzOpt = None,
    all_records: Annotated[
        bool, typer.Option("--all", help="Also records the fold leaves out (superseded, duplicate imports).")
    ] = False,
    ledger: LedgerOpt = None,
) -> None:
    """The selected records as JSON Lines, a JSON array, or CSV (tokens and tags flattened)."""
    from ..gates import choice
    from ..reports.export import EXPORT_FORMATS, export_records

    choice(fmt, EXPORT_FORMATS, "--format")
    path, zone = _ctx(ledger, tz)
    filters = _filters(zone, since, until, project, model, status, tag)
    export_records(path, filters, zone, fmt, Path(output) if output else None, fold=not all_records)


def sql(
    query: Annotated[
        str, typer.Argument(metavar="SQL", help="A query over the views runs, parts, all_records.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    ledger: LedgerOpt = None,
) -> None:
    """Ask the ledger anything in SQL (DuckDB): views `runs`, `parts` and `all_records` (docs/reports.md)."""
    from ..gates import choice
    from ..query.records import SQL_FORMATS, render_sql, run_sql

    choice(fmt, SQL_FORMATS, "--format")
    cols, rows, warnings = run_sql(_ledger(ledger), query)
    _warn(warnings)
    _out(render_sql(cols, rows, fmt))


def build_index(ledger: LedgerOpt = None) -> None:
    """Build the ledger's read index now (reports do it by themselves; this is for scripts and CI)."""
    from ..errors import LedgerError
    from ..query.engine import build_index as build

    path = _ledger(ledger)
    if not build(path):
        raise LedgerError(f"could not build the index of {path} (missing, not writable, or being built)")
    sys.stderr.write(f"claude-run: indexed {path}\n")


def register(app: typer.Typer) -> None:
    app.command("summary")(summary)
    app.command("compare")(compare)
    app.command("savings")(savings)
    app.command("list")(list_runs)
    app.command("show")(show)
    app.command("export")(export)
    app.command("sql")(sql)
    app.command("index")(build_index)
