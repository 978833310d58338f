"""`claude-run ledger ...`: one typer group; each family of subcommands registers itself here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Report, export, verify and maintain the ledger of runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep subcommands subcommands even when a build registers only one family."""


# Each module defines `register(app: typer.Typer) -> None`. Listed explicitly so `--help` order is stable.
_FAMILIES = (
    "ledger_reports",  # summary, compare, list, show, export
    "ledger_admin",  # path, verify, merge, prune, reset
    "ledger_import",  # import (Claude Code transcripts)
    "ledger_html",  # report --html
    "ledger_push",  # push --otlp
    "ledger_quota",  # quota (plan utilization, 5-hour windows, burn rate)
)

for _name in _FAMILIES:
    _qualified = f"{__package__}.{_name}"
    try:
        _module = importlib.import_module(_qualified)
    except ModuleNotFoundError as _exc:
        if _exc.name != _qualified:  # a real missing dependency inside the module: surface it
            raise
        continue
    _module.register(app)
