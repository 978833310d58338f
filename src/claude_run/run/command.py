"""`claude-run [OPTIONS] [TASK] [-- CLAUDE_ARGS...]`: the run command's argument parser.

No typer here on purpose: this path starts claude, and every millisecond spent importing before
the spawn is added to the run's wall time (typer + click cost ~25 ms). Not even argparse on the
common path: it brings re, enum, gettext and shutil (~8 ms). The options are one table; argparse,
built from it, parses only what the small table-driven parser leaves to it (--help, --version,
abbreviations, anything malformed), so help and error messages are argparse's own. The report
commands (`claude-run ledger ...`) use typer, where start-up does not matter.
"""

from __future__ import annotations

import os
import sys

from ..errors import ClaudeRunError, UsageError
from ..record.modes import INTERACTIVE, NON_INTERACTIVE
from .modes import MODE_TABLE, MODES

TYPE_CHECKING = False  # typing itself costs ~3 ms on the hot path
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import NoReturn

    from ..budgets.check import BudgetSpec, BudgetState

# The other commands, and what the run command's --help (`run/help.py`) says of each.
COMMANDS = {
    "ledger": "report, export, verify, merge the ledger (claude-run ledger --help)",
    "telemetry": "the OTLP receiver as a local service",
    "metrics": "the ledger as Prometheus metrics",
    "dashboard": "a live local web dashboard",
    "install": "track every plain `claude` session: status line + SessionEnd hook",
    "statusline": "the status-line command Claude runs (JSON on stdin)",
    "hook": "the SessionEnd hook command Claude runs: hook session-end (JSON on stdin)",
    "budget": "recorded, in-flight and remaining spend per budget: budget status",
}
SUBCOMMANDS = tuple(COMMANDS)


class Options:
    """The parsed command line. The class attributes are the defaults; both parsers set the rest."""

    task: str | None = None
    track: bool | None = None  # None: $CLAUDE_RUN_TRACK decides
    ledger: str | None = None
    claude_bin: str | None = None
    mode: str | None = None
    tag: list[str] = []  # noqa: RUF012 - never mutated: both parsers store a new list
    json_out: bool = False
    quiet: bool = False
    timeout: float | None = None
    max_cost: float | None = None
    raw: bool = False
    show_partial: bool = False
    record_task: bool = False
    telemetry: bool | None = None  # None: $CLAUDE_RUN_TELEMETRY decides
    budget_daily: float | None = None
    budget_monthly: float | None = None
    budget_project: str | None = None
    budget_tag: list[str] = []  # noqa: RUF012 - as `tag`
    budget_tz: str = "UTC"
    budget_ledger: str | None = None
    warn_context: float | None = None
    warn_quota: float | None = None


def _positive(kind: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{kind} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise ValueError(f"{kind} must be greater than 0, got {text!r}")
        return value

    return parse


class _Option:
    """One row of the table both parsers read."""

    __slots__ = ("action", "argument", "dest", "flags", "help", "metavar")

    def __init__(
        self, flags: str, dest: str, action: str, argument: object, metavar: str | None, help: str
    ) -> None:
        self.flags = tuple(flags.split())
        self.dest = dest
        self.action = action  # "const", "value" or "append"
        self.argument = argument  # const: the value stored; value: a converter, choices, or None
        self.metavar = metavar
        self.help = help


def _const(flags: str, dest: str, const: object, help: str) -> _Option:
    return _Option(flags, dest, "const", const, None, help)


def _value(flags: str, dest: str, metavar: str | None, help: str, parse: object = None) -> _Option:
    return _Option(flags, dest, "value", parse, metavar, help)


def _append(flags: str, dest: str, metavar: str, help: str) -> _Option:
    return _Option(flags, dest, "append", None, metavar, help)


OPTIONS = (
    _const("--track", "track", True, "append the run to the ledger (default when CLAUDE_RUN_TRACK=1)"),
    _const("--no-track", "track", False, "do not record the run"),
    _value("--ledger", "ledger", "PATH", "ledger file (else $CLAUDE_RUN_LEDGER, else the data dir)"),
    _value(
        "--claude-bin", "claude_bin", "PATH", "claude executable (else $CLAUDE_RUN_CLAUDE_BIN, else PATH)"
    ),
    _value("--mode", "mode", None, "default: non-interactive with a TASK, interactive without", MODES),
    *(_const(m.flag, "mode", m.name, m.help) for m in MODE_TABLE.values() if m.flag),
    _append("--tag", "tag", "KEY=VALUE", "stored on the record (repeatable)"),
    _const("--json", "json_out", True, "print the run record as JSON on stdout"),
    _const("-q --quiet", "quiet", True, "no status line, no summary, no claude stderr"),
    _value("--timeout", "timeout", "SECONDS", "stop claude after this long", _positive("--timeout")),
    _value("--max-cost", "max_cost", "USD", "passed to claude as --max-budget-usd", _positive("--max-cost")),
    _const("--raw", "raw", True, "write claude's raw stream-json lines to stdout"),
    _const("--show-partial", "show_partial", True, "hybrid: also show partial stream events"),
    _const("--record-task", "record_task", True, "store the task text in the record"),
    _const(
        "--no-telemetry",
        "telemetry",
        False,
        "no built-in OTLP receiver for this run (default off when CLAUDE_RUN_TELEMETRY=0)",
    ),
    _value(
        "--warn-context",
        "warn_context",
        "PCT",
        "warn once on stderr (and note it) when a request fills PCT percent of the context window",
        _positive("--warn-context"),
    ),
    _value(
        "--warn-quota",
        "warn_quota",
        "PCT",
        "warn once on stderr (and note it) when a plan quota window reaches PCT percent (subscriptions)",
        _positive("--warn-quota"),
    ),
)
BUDGET_TITLE = "budgets across runs (summed from the ledger; see docs/ci.md)"
BUDGET_OPTIONS = (
    _value(
        "--budget-daily",
        "budget_daily",
        "USD",
        "refuse to start (exit 75) once today's spend reaches USD",
        _positive("--budget-daily"),
    ),
    _value(
        "--budget-monthly",
        "budget_monthly",
        "USD",
        "refuse to start (exit 75) once this month's spend reaches USD",
        _positive("--budget-monthly"),
    ),
    _value("--budget-project", "budget_project", "NAME", "count only runs of this project"),
    _append(
        "--budget-tag",
        "budget_tag",
        "KEY[=VALUE]",
        "count only runs with this tag (KEY alone: this run's --tag value)",
    ),
    _value("--budget-tz", "budget_tz", "ZONE", "day/month boundaries (default UTC)"),
    _value("--budget-ledger", "budget_ledger", "PATH", "sum spend from this ledger (default: --ledger)"),
)
_BY_FLAG = {flag: option for option in OPTIONS + BUDGET_OPTIONS for flag in option.flags}


def parse_fast(own: list[str]) -> Options | None:
    """The usual command lines, by the table; None for anything to leave to argparse.

    Exact option strings only, `--option=value` included. Whatever argparse might read otherwise
    (an abbreviation, combined short flags, a value that starts with '-', a second positional, a
    bad value, --help) goes to argparse, which parses it or reports the error in its own words.
    """
    ns = Options()
    task_seen = False
    args = iter(own)
    for arg in args:
        if arg[:1] != "-" or arg == "-":
            if task_seen:
                return None
            ns.task, task_seen = arg, True
            continue
        flag, eq, value = arg.partition("=")
        option = _BY_FLAG.get(flag)
        if option is None:
            return None
        argument = option.argument
        if option.action == "const":
            if eq:
                return None
            if option.dest == "mode" and ns.mode not in (None, argument):
                return None  # two modes: argparse says so, in the order it meets errors
            setattr(ns, option.dest, argument)
            continue
        if not eq:
            value = next(args, "-")  # "-": no value left, argparse's error
        if value[:1] == "-":  # an option, a missing value, or argparse's quirks ("--opt=--" is [])
            return None
        if option.action == "append":
            setattr(ns, option.dest, [*getattr(ns, option.dest), value])
        elif isinstance(argument, tuple):
            if value not in argument:
                return None
            if option.dest == "mode" and ns.mode not in (None, value):
                return None
            setattr(ns, option.dest, value)
        elif callable(argument):
            try:
                setattr(ns, option.dest, argument(value))
            except ValueError:
                return None
        else:
            setattr(ns, option.dest, value)
    return ns


def _set_mode(ns: Options, mode: str, flag: str) -> None:
    """Two options naming different modes (`--hybrid -i`) are a mistake, not "the last one wins"."""
    if ns.mode is not None and ns.mode != mode:
        raise UsageError(f"{flag} conflicts with the mode already chosen ({ns.mode}); choose one")
    ns.mode = mode


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the same table: abbreviations, --version, and every error message.
    Its -h/--help (abbreviated or combined too) shows the help page typer draws (`run/help.py`)."""
    import argparse

    from .. import __version__

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{message} (see claude-run --help)")

    class Help(argparse.Action):
        def __call__(
            self, parser: object, namespace: object, values: object, option: str | None = None
        ) -> None:
            from .help import print_help

            print_help()
            raise SystemExit(0)

    p = Parser(prog="claude-run", add_help=False)
    p.add_argument("-h", "--help", action=Help, nargs=0, help="show this help and exit")
    p.add_argument(
        "task", nargs="?", help="the task; '-' reads it from stdin; none starts an interactive session"
    )

    class Mode(argparse.Action):
        def __call__(
            self, parser: object, namespace: object, values: object, option: str | None = None
        ) -> None:
            assert isinstance(namespace, Options)
            _set_mode(namespace, str(self.const if self.const is not None else values), option or "--mode")

    for group, options in ((p, OPTIONS), (p.add_argument_group(BUDGET_TITLE), BUDGET_OPTIONS)):
        for o in options:
            common = {"dest": o.dest, "default": getattr(Options, o.dest), "help": o.help}
            if o.action == "const" and o.dest == "mode":
                group.add_argument(*o.flags, action=Mode, nargs=0, const=o.argument, **common)
            elif o.action == "const":
                group.add_argument(*o.flags, action="store_const", const=o.argument, **common)
            elif o.action == "append":
                group.add_argument(*o.flags, action="append", metavar=o.metavar, **common)
            elif isinstance(o.argument, tuple) and o.dest == "mode":
                group.add_argument(*o.flags, action=Mode, choices=o.argument, **common)
            elif isinstance(o.argument, tuple):
                group.add_argument(*o.flags, choices=o.argument, **common)
            elif callable(o.argument):
                group.add_argument(*o.flags, type=_for_argparse(o.argument), metavar=o.metavar, **common)
            else:
                group.add_argument(*o.flags, metavar=o.metavar, **common)
    p.add_argument("--version", action="version", version=f"claude-run {__version__}")
    return p


def _for_argparse(parse: Callable[[str], object]) -> Callable[[str], object]:
    import argparse

    def parse_for_argparse(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:  # argparse shows an ArgumentTypeError's message as it is
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_for_argparse


def refuse_command_typo(word: str) -> None:
    """A one-word task within a small edit distance of a command is a typo, not a paid run."""
    from ..gates import closest

    text = word.strip()
    if not text or text.startswith("-") or any(c.isspace() for c in text):
        return
    guess = closest(text, SUBCOMMANDS)
    if guess is not None:
        raise UsageError(
            f"unknown command {text!r}: did you mean `claude-run {guess}`?"
            f" (to run it as a task, pipe it: echo {text} | claude-run -)"
        )


def parse(argv: list[str]) -> tuple[Options, list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        own, claude_args = argv[:cut], argv[cut + 1 :]
    else:
        own, claude_args = argv, []
    ns = parse_fast(own)
    if ns is None:
        ns = build_parser().parse_args(own, namespace=Options())
    return ns, claude_args


class Plan:
    """The validated command line. Plain class: built before the spawn (no dataclasses import)."""

    __slots__ = ("claude_args", "kill_grace", "ledger", "mode", "ns", "tags", "task", "telemetry", "track")

    def __init__(self, ns: Options, claude_args: list[str]) -> None:
        from ..context.tags import parse_tags
        from ..gates import check_ledger, env_flag, env_number
        from ..paths import ledger_file

        task = ns.task
        if task is not None and task != "-":
            refuse_command_typo(task)
        if task == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise UsageError("TASK is '-' but there is no stdin to read it from")
            task = sys.stdin.read()
            if not task.strip():
                raise UsageError("the task read from stdin is empty")
        mode = ns.mode or (NON_INTERACTIVE if task is not None else INTERACTIVE)
        headless = MODE_TABLE[mode].headless
        if headless and task is None:
            raise UsageError(f"--mode {mode} needs a TASK (or '-' to read it from stdin)")
        if not headless and (ns.json_out or ns.raw):
            raise UsageError("--json and --raw need a -p run; the interactive mode owns the terminal")
        if ns.raw and ns.json_out:
            raise UsageError("--raw and --json both write stdout; choose one")
        if not headless and not (sys.stdin is not None and sys.stdin.isatty()):
            raise UsageError(
                "no terminal for an interactive session (stdin is not a terminal):"
                " give a TASK, or '-' to read it from stdin"
            )
        self.ns = ns
        self.claude_args = claude_args
        self.task: str | None = task
        self.mode: str = mode
        # Every setting the run will use is read now, before claude starts: a bad one is exit 2.
        env_track = env_flag("CLAUDE_RUN_TRACK")  # checked even when --track/--no-track decides
        self.track: bool = ns.track if ns.track is not None else env_track
        env_telemetry = env_flag("CLAUDE_RUN_TELEMETRY", default=True)
        self.telemetry: bool = ns.telemetry if ns.telemetry is not None else env_telemetry
        self.kill_grace: float = env_number("CLAUDE_RUN_KILL_GRACE", 5.0, low=0, high=3600)
        self.tags = parse_tags(ns.tag)
        self.ledger: str | None = None
        if self.track:
            self.ledger = ledger_file(ns.ledger)
            check_ledger(self.ledger, reading=False)
            env = os.environ
            if env.get("CLAUDE_RUN_LEDGER_MAX_BYTES") or env.get("CLAUDE_RUN_LEDGER_KEEP_DAYS"):
                # Only when set (rotation's parser costs imports): a typo is refused before the run,
                # instead of an append quietly falling back to the defaults after it.
                from ..ledger.rotation import RotationPolicy

                problems = RotationPolicy.from_env_checked()[1]
                if problems:
                    raise UsageError(problems[0].split("; ")[0])


def budget_spec(ns: Options, tags: dict[str, str]) -> BudgetSpec | None:
    """The budget the options ask for, or None (then no ledger read happens before the spawn)."""
    narrowing = ns.budget_project is not None or ns.budget_tag or ns.budget_ledger or ns.budget_tz != "UTC"
    if ns.budget_daily is None and ns.budget_monthly is None:
        if narrowing:
            raise UsageError("--budget-project/-tag/-tz/-ledger need --budget-daily or --budget-monthly")
        return None
    from pathlib import Path

    from ..budgets.check import BudgetSpec

    scope: dict[str, str] = {}
    for item in ns.budget_tag:
        key, sep, value = item.partition("=")
        if not sep:
            if key not in tags:
                raise UsageError(
                    f"--budget-tag {key}: the run has no --tag {key}=VALUE to take the value from"
                )
            value = tags[key]
        scope[key] = value
    return BudgetSpec(
        daily=ns.budget_daily,
        monthly=ns.budget_monthly,
        tags=scope,
        project=ns.budget_project,
        tz=ns.budget_tz,
        ledger=Path(ns.budget_ledger).expanduser() if ns.budget_ledger else None,
    )


def check_budget(spec: BudgetSpec, ns: Options, plan: Plan, cwd: str) -> BudgetState:
    """Sum the spend before the spawn and, for a tracked -p run, reserve its in-flight entry.

    Also works out claude's `--max-budget-usd`: the smallest of `--max-cost`, the user's own flag
    and what is left of each budget. A refusal also tells the CI step (outputs, summary) why.
    """
    from ..budgets.check import RunScope, check, reserve_usd
    from ..errors import BudgetExceeded
    from ..paths import ledger_path
    from .modes import user_max_budget

    run_ledger = ledger_path(ns.ledger)
    ledger = spec.ledger or run_ledger
    from ..gates import check_ledger

    check_ledger(ledger, reading=False)  # a ledger not there yet holds no spend
    run = None
    headless = MODE_TABLE[plan.mode].headless
    if plan.track and headless:  # its spend reaches the ledger, and we see it live
        import time

        from ..context.collect import git_info, project_name
        from ..record.schema import iso_utc

        g = git_info(cwd)
        run = RunScope(
            iso_utc(time.time()), project_name(cwd, g.get("root"), g.get("remote")), plan.tags, reserve_usd()
        )
    try:
        state = check(spec, ledger, run=run)
    except BudgetExceeded as exc:
        from ..ci.outputs import write_for_refusal

        for warning in write_for_refusal(exc.message, os.environ):
            sys.stderr.write(f"claude-run: {warning}\n")
        raise
    if state.live is not None:
        from ..budgets.check import warm_prices

        warm_prices()
        state.live.counted_in_budget_ledger = os.path.realpath(ledger) == os.path.realpath(run_ledger)
    cap = state.budget_cap() if headless else None  # the TUI takes no cap
    if cap is not None:
        theirs, _ = user_max_budget(plan.claude_args)
        others = [c for c in (ns.max_cost, theirs) if c is not None]
        state.capped_by_budget = not others or cap <= min(others)
        state.cap_usd = min([cap, *others])
    return state


def main(argv: list[str]) -> int:
    from . import launch

    try:
        if argv and argv[0] not in ("-", "--"):
            refuse_command_typo(argv[0])  # `claude-run ledgr summary` too, before the parser's own error
        ns, claude_args = parse(argv)
        plan = Plan(ns, claude_args)
        cwd = os.getcwd()
        # Budgets (only when asked): read the ledger before the spawn, refuse with exit 75.
        spec = budget_spec(ns, plan.tags)
        budget = check_budget(spec, ns, plan, cwd) if spec is not None else None
        try:
            started = launch.start(
                mode=plan.mode,
                task=plan.task,
                track=plan.track,
                claude_bin=ns.claude_bin,
                claude_args=claude_args,
                max_cost=budget.cap_usd if budget is not None and budget.cap_usd is not None else ns.max_cost,
                telemetry=plan.telemetry,
            )
        except BaseException:
            if budget is not None and budget.live is not None:
                budget.live.release()  # claude never started: the reservation goes
            raise
    except ClaudeRunError as exc:
        sys.stderr.write(f"claude-run: {exc.message}\n")
        return exc.exit_code
    launch.await_first_output(started, ns.timeout)
    # claude has started and now mostly waits on the API: our imports no longer slow it down.
    from pathlib import Path

    from .runner import RunOptions, finish

    options = RunOptions(
        task=plan.task,
        mode=plan.mode,
        track=plan.track,
        ledger=Path(ns.ledger) if ns.ledger else None,
        tags=plan.tags,
        json_out=ns.json_out,
        quiet=ns.quiet,
        timeout=ns.timeout,
        raw=ns.raw,
        record_task=ns.record_task,
        show_partial=ns.show_partial,
        cwd=cwd,
        budget=budget,
        kill_grace=plan.kill_grace,
        warn_context=ns.warn_context,
        warn_quota=ns.warn_quota,
    )
    try:
        return finish(started, options)
    finally:
        if budget is not None and budget.live is not None:
            budget.live.release()  # settled already when the run was recorded; else it goes now
