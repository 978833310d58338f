"""Entry point: the run command's fast path, or the typer app for the other commands."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from .run_cli import SUBCOMMANDS

    if args and args[0] in SUBCOMMANDS:
        from .cli import run_app

        return run_app(args)
    from .run_cli import main as run_main

    return run_main(args)


def entry() -> None:
    """Console-script entry: run, flush, and skip interpreter teardown (tens of ms with asyncio loaded).

    Nothing needs finalising at that point: the ledger line is fsynced, the child reaped, and the
    only other threads are idle workers.
    """
    from .run_cli import SUBCOMMANDS

    args = sys.argv[1:]
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
