"""Help pages: `claude-run --help` drawn as typer draws every other command's, and the metavars all use.

Only `--help` comes here: the run command itself is parsed without typer (see `run/command.py`),
so its options are described to typer from the same table, for the page alone.
"""

from __future__ import annotations

import inspect
from typing import Any

from .command import BUDGET_OPTIONS, COMMANDS, OPTIONS, Options, _Option

SUMMARY = "Run a Claude Code task and account for it: tokens by kind, cost, model, git/CI context."
BUDGET_PANEL = "Budgets across runs (summed from the ledger; see docs/ci.md)"


def print_help() -> None:
    import typer

    app = typer.Typer(add_completion=False, rich_markup_mode="rich")
    params = [
        inspect.Parameter(
            "task",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=typer.Argument(
                None,
                metavar="TASK",
                help="The task; '-' reads it from stdin; none starts an interactive session.",
            ),
            annotation=str | None,
        ),
        inspect.Parameter(
            "claude_args",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=typer.Argument(
                None, metavar="-- CLAUDE_ARGS", help="Arguments for claude, after --, passed on verbatim."
            ),
            annotation=list[str] | None,
        ),
    ]
    seen: set[str] = set()
    for panel, options in ((None, OPTIONS), (BUDGET_PANEL, BUDGET_OPTIONS)):
        for option in options:
            params.append(_parameter(option, panel, seen))
    params.append(
        inspect.Parameter(
            "version",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--version", help="Show the version and exit.", show_default=False),
            annotation=bool,
        )
    )

    def run(**_: Any) -> None:  # never called: the page is all typer makes of it
        pass

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    epilog = "\n\n".join(
        [
            "[b]Other commands[/b]: "
            + " · ".join(f"[b]{name}[/b]: {text}" for name, text in COMMANDS.items()),
            "Arguments after [b]--[/b] go to claude verbatim, e.g. "
            'claude-run "fix the failing test" --track -- --model sonnet --allowedTools "Bash Edit"',
        ]
    )
    app.command(help=SUMMARY, epilog=epilog, options_metavar="[OPTIONS]")(run)
    command = typer.main.get_command(app)
    plain_metavars(command)
    command.main(args=["--help"], prog_name="claude-run", standalone_mode=False)


def _parameter(option: _Option, panel: str | None, seen: set[str]) -> inspect.Parameter:
    import typer

    name = option.dest if option.dest not in seen else f"{option.dest}_{len(seen)}"
    seen.add(name)
    text = option.help[:1].upper() + option.help[1:] + ("" if option.help.endswith(".") else ".")
    default = getattr(Options, option.dest)
    if option.action == "const":
        annotation: Any = bool
        info = typer.Option(False, *option.flags, help=text, rich_help_panel=panel, show_default=False)
    elif option.action == "append":
        annotation = list[str] | None
        info = typer.Option(None, *option.flags, help=text, metavar=option.metavar, rich_help_panel=panel)
    elif isinstance(option.argument, tuple):
        annotation = str | None
        text = f"{', '.join(option.argument)}. {text}"
        info = typer.Option(
            default, *option.flags, help=text, metavar=option.dest.upper(), rich_help_panel=panel
        )
    else:
        annotation = str | None
        info = typer.Option(default, *option.flags, help=text, metavar=option.metavar, rich_help_panel=panel)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)


_PATHS = ("ledger", "output", "textfile", "html", "execution_file", "execution_files")


def plain_metavars(command: object) -> None:
    """Help shows `--since TEXT` and `--json`, not typer's `<str>`, `<list[str]>` and `<bool>`."""
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option" or param.metavar is not None:
            continue
        if param.is_flag or param.count:
            param.metavar = ""
            continue
        bare = getattr(param, "bare_type", None)
        kind = str(bare()) if callable(bare) else ""
        if param.name in _PATHS or "Path" in kind:
            param.metavar = "PATH"
        elif kind.startswith("int"):
            param.metavar = "N"
        elif kind.startswith("float"):
            param.metavar = "NUMBER"
        else:
            param.metavar = "TEXT"
    original = getattr(command, "get_help_option", None)
    if callable(original):  # --help is made on demand, after this walk

        def get_help_option(ctx: object) -> object:
            option = original(ctx)
            if option is not None and getattr(option, "metavar", "") is None:
                option.metavar = ""
            return option

        setattr(command, "get_help_option", get_help_option)  # noqa: B010 - an instance, not the class
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
