"""`claude-run budget status`: recorded, in-flight and remaining spend per budget (docs/ci.md)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ..errors import UsageError

app = typer.Typer(
    help="Budgets shared by the runs of a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep `status` a subcommand."""


def _usd(value: float | None) -> str:
    return "-" if value is None or math.isinf(value) else f"${value:.2f}"


def _num(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 10)


@app.command()
def status(
    daily: Annotated[float | None, typer.Option("--budget-daily", metavar="USD", help="Daily limit.")] = None,
    monthly: Annotated[
        float | None, typer.Option("--budget-monthly", metavar="USD", help="Monthly limit.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--budget-project", metavar="NAME", help="Count only runs of this project.")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--budget-tag", metavar="KEY=VALUE", help="Count only runs with this tag (repeatable)."),
    ] = None,
    tz: Annotated[str, typer.Option("--budget-tz", metavar="ZONE", help="Day/month boundaries.")] = "UTC",
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", "--budget-ledger", metavar="PATH", help="Ledger (default: the usual one)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Recorded, in-flight and remaining spend of each budget (both periods, unlimited, without a limit)."""
    from ..budgets import check as budget
    from ..gates import choice
    from ..paths import ledger_path

    choice(fmt, ("table", "json"), "--format")
    for name, value in (("--budget-daily", daily), ("--budget-monthly", monthly)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UsageError(f"{name} must be greater than 0, got {value!r}")
    scope: dict[str, str] = {}
    for item in tag or []:
        key, sep, value_text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--budget-tag {item!r}: use KEY=VALUE (there is no run to take the value from)")
        scope[key] = value_text
    spec = budget.BudgetSpec(daily=daily, monthly=monthly, tags=scope, project=project, tz=tz)
    path = Path(ledger).expanduser() if ledger else ledger_path(None)
    from ..gates import check_ledger

    check_ledger(path, reading=False)  # no ledger yet: nothing spent; a directory or symlink: 74
    state, current = budget.status(spec, path)
    rows: list[dict[str, Any]] = []
    for p in state.periods:
        rows.append(
            {
                "period": p.period,
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "limit_usd": _num(p.limit),
                "recorded_usd": round(p.before.usd, 10),
                "in_flight_usd": round(p.in_flight, 10),
                "remaining_usd": _num(max(p.left, 0.0)),
                "runs_in_flight": p.in_flight_runs,
                "recorded_runs": p.before.records,
                "unpriced_runs": p.before.unpriced,
                "exceeded": p.exceeded,
            }
        )
    if fmt == "json":
        runs = [
            {
                "pid": e.pid,
                "host": e.host,
                "started_at": e.started_at,
                "project": e.project,
                "tags": e.tags,
                "spend_usd": e.spend_usd,
                "counted_usd": e.counted,
            }
            for e in current.runs.values()
        ]
        doc = {
            "ledger": str(path),
            "scope": {"project": spec.project, "tags": dict(spec.tags), "tz": spec.tz},
            "budgets": rows,
            "in_flight": runs,
        }
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        return
    from tabulate import tabulate

    table = [
        [
            r["period"],
            state.periods[i].start.strftime("%Y-%m-%d" if r["period"] == "daily" else "%Y-%m") + f" ({tz})",
            _usd(state.periods[i].limit),
            _usd(r["recorded_usd"]),
            f"{_usd(r['in_flight_usd'])} ({r['runs_in_flight']} run(s))",
            _usd(r["remaining_usd"]) + (" reached" if r["exceeded"] else ""),
        ]
        for i, r in enumerate(rows)
    ]
    headers = ["budget", "period", "limit", "recorded", "in flight", "remaining"]
    sys.stdout.write(f"ledger {path}{budget.scope_text(spec)}\n")
    sys.stdout.write(tabulate(table, headers=headers, disable_numparse=True) + "\n")
    unpriced = max((r["unpriced_runs"] for r in rows), default=0)
    if unpriced:
        sys.stdout.write(f"({unpriced} unpriced run(s) not counted)\n")
