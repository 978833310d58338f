"""Entry point: the run command's fast path, or the typer app for the other commands."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from .run_cli import SUBCOMMANDS

    if args and args[0] in SUBCOMMANDS:
        from .cli import run_app

        return run_app(args)
    from .run_cli import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
