"""Entry point: the run command's fast path, the hooks Claude calls, or the typer app for the rest."""

from __future__ import annotations

import os
import sys

# Commands Claude Code itself runs (status bar refreshes, session end): plain modules with a
# `main(args) -> int`, so no typer (~25 ms) or run command parser stands between Claude and the answer.
HOOK_COMMANDS = {"statusline": "claude_run.sessions.statusline", "hook": "claude_run.sessions.hook"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HOOK_COMMANDS:
        import importlib

        module = importlib.import_module(HOOK_COMMANDS[args[0]])
        code: int = module.main(args[1:])
        return code
    from .run.command import SUBCOMMANDS

    if args[:2] == ["ledger", "summary"]:
        from .reports.summary_cmd import main as summary_main

        fast = summary_main(args[2:])  # the usual lines without typer; None: typer takes it
        if fast is not None:
            return fast
    if args and args[0] in SUBCOMMANDS:
        from .cli import run_app

        return run_app(args)
    from .run.command import main as run_main

    return run_main(args)


def entry() -> None:
    """Console-script entry: run, flush, and skip interpreter teardown (tens of ms with asyncio loaded).

    Nothing needs finalising at that point: the ledger line is fsynced, the child reaped, and the
    only other threads are idle workers.
    """
    args = sys.argv[1:]
    if not (args and args[0] in HOOK_COMMANDS):
        from .run.command import SUBCOMMANDS

        if args and args[0] in SUBCOMMANDS:
            sys.exit(main(args))  # report/service commands: a normal shutdown (atexit, pools, temp files)
    code = main(args)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    entry()
