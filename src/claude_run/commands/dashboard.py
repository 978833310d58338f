"""`claude-run dashboard`: the live local web page over the ledger."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(
    help="Serve a live dashboard of the ledger on a local web page.",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()  # the app's only command: its usage line is `dashboard [OPTIONS]`, no COMMAND
def dashboard(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).", min=0, max=65535)] = 8765,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. Anything but loopback exposes your spend to the network."),
    ] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser.")
    ] = False,
    ledger: Annotated[
        str | None, typer.Option(help="Ledger file (default: $CLAUDE_RUN_LEDGER or the data dir).")
    ] = None,
    latest: Annotated[int, typer.Option(help="How many latest runs the table shows.", min=1, max=1000)] = 50,
    poll: Annotated[
        float, typer.Option(help="Seconds between looks at the ledger files.", min=0.05, max=60)
    ] = 0.5,
    budget_daily: Annotated[
        float | None,
        typer.Option(
            "--budget-daily",
            metavar="USD",
            min=0.0,
            help="Draw this daily budget (as a run's --budget-daily).",
        ),
    ] = None,
    budget_monthly: Annotated[
        float | None,
        typer.Option("--budget-monthly", metavar="USD", min=0.0, help="Draw this monthly budget."),
    ] = None,
    read_step: Annotated[
        int, typer.Option(hidden=True, min=1, help="Bytes read per step of the first read.")
    ] = (64 * 1024 * 1024),
) -> None:
    """Serve the dashboard until interrupted (Ctrl-C)."""
    import anyio

    from ..dashboard.data import Budgets
    from ..dashboard.server import serve
    from ..gates import check_ledger
    from ..paths import ledger_path

    path = ledger_path(ledger)
    check_ledger(path, reading=False)  # the page can wait for the first run

    def ready(url: str, behind: bool) -> None:
        more = "; still reading the ledger, the page fills in as it goes" if behind else ""
        sys.stderr.write(f"claude-run dashboard: serving {url} (ledger {path}{more}; Ctrl-C to stop)\n")
        sys.stderr.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    sys.stderr.write(f"claude-run dashboard: reading {path} ...\n")
    sys.stderr.flush()
    try:
        anyio.run(
            lambda: serve(
                path,
                host=host,
                port=port,
                poll=poll,
                latest=latest,
                ready=ready,
                read_step=read_step,
                budgets=Budgets(budget_daily, budget_monthly),
            )
        )
    except KeyboardInterrupt:
        sys.stderr.write("claude-run dashboard: stopped\n")
