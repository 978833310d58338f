"""The report and service commands (typer). Each group lives in `claude_run.commands.<name>`."""

from __future__ import annotations

import importlib
import sys

import typer

from .errors import ClaudeRunError
from .run.help import plain_metavars

# name -> module holding a `app: typer.Typer` (a group) or `command` (a single command function)
COMMAND_MODULES = {
    "ledger": "claude_run.commands.ledger",
    "telemetry": "claude_run.commands.telemetry",
    "metrics": "claude_run.commands.metrics",
    "dashboard": "claude_run.commands.dashboard",
    "budget": "claude_run.commands.budget",
    "install": "claude_run.commands.install",
}


def run_app(args: list[str]) -> int:
    """Run one command group; ClaudeRunError becomes a one-line message and its exit code."""
    name = args[0]
    module = importlib.import_module(COMMAND_MODULES[name])
    app: typer.Typer = module.app
    try:
        command = typer.main.get_command(app)
        plain_metavars(command)
        command.main(args=args[1:], prog_name=f"claude-run {name}", standalone_mode=False)
    except ClaudeRunError as exc:
        return exc.report()
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("claude-run: aborted\n")
        return 130
    except Exception as exc:
        # Usage errors from typer's click layer (vendored or not): duck-typed so either works.
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            # One prefix for every error; the command's help is where to look next.
            message = " ".join(str(exc.format_message()).split())
            sys.stderr.write(f"claude-run: {message} (see claude-run {name} --help)\n")
            return int(getattr(exc, "exit_code", 2))
        raise
    return 0
