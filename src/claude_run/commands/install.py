"""`claude-run install`: the status line and the SessionEnd hook in Claude Code's settings.json."""

from __future__ import annotations

import difflib
import os
import sys
import time
from typing import Annotated

import typer

from ..sessions import install

app = typer.Typer(
    help="Track every plain `claude` session: add claude-run's status line and SessionEnd hook to "
    "Claude Code's settings.json (~/.claude, $CLAUDE_CONFIG_DIR, or the project's .claude/).",
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def install_command(
    statusline: Annotated[
        bool, typer.Option("--statusline", help="The status line (alone, unless --session-end too).")
    ] = False,
    session_end: Annotated[
        bool, typer.Option("--session-end", help="The SessionEnd hook (alone, unless --statusline too).")
    ] = False,
    project: Annotated[
        bool, typer.Option("--project", help="This directory's .claude/settings.json instead of the user's.")
    ] = False,
    uninstall: Annotated[
        bool, typer.Option("--uninstall", help="Remove claude-run's entries (nothing else).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the change as a diff; write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a status line that is not claude-run's.")
    ] = False,
    ledger: Annotated[
        str | None,
        typer.Option(help="Ledger the commands use (default: theirs: $CLAUDE_RUN_LEDGER or the data dir)."),
    ] = None,
) -> None:
    """Write (or remove) the entries; twice is the same as once. The old file is kept as a backup."""
    both = not statusline and not session_end
    path = install.settings_path(project, os.environ, os.getcwd())
    old_text, settings = install.read_settings(path)
    cmds = install.commands(install.self_command(), os.path.abspath(ledger) if ledger else None)
    new, said = install.apply(
        settings,
        statusline=cmds["statusline"] if statusline or both else None,
        session_end=cmds["session-end"] if session_end or both else None,
        uninstall=uninstall,
        force=force,
    )
    if not said:
        sys.stdout.write(
            f"{path}: already {'without' if uninstall else 'with'} claude-run's entries; nothing to do\n"
        )
        return
    new_text = install.render(new)
    if dry_run:
        diff = difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=str(path),
            tofile=f"{path} (after install)",
        )
        sys.stdout.writelines(diff)
        sys.stdout.write("(dry run: nothing written)\n")
        return
    stamp = time.strftime("%Y%m%dT%H%M%S")
    try:
        backup = install.write_settings(path, old_text, new_text, stamp)
    except OSError as exc:
        from ..errors import UsageError

        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    for line in said:
        sys.stdout.write(f"{path}: {line}\n")
    if backup is not None:
        sys.stdout.write(f"backup: {backup}\n")
