"""`claude-run [OPTIONS] [TASK] [-- CLAUDE_ARGS...]`: the run command's argument parser.

Plain argparse instead of typer on purpose: this path starts claude, and every millisecond spent
importing before the spawn is added to the run's wall time (typer + click cost ~25 ms here). The
report commands (`claude-run ledger ...`) use typer, where start-up does not matter.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import ClaudeRunError, UsageError

TYPE_CHECKING = False  # typing itself costs ~3 ms on the hot path
if TYPE_CHECKING:
    from typing import NoReturn

    from .budget import BudgetSpec, BudgetState

SUBCOMMANDS = ("ledger", "telemetry", "metrics", "dashboard")

EPILOG = """\
other commands:
  claude-run ledger ...      report, export, verify, merge the ledger (claude-run ledger --help)
  claude-run telemetry ...   the OTLP receiver as a local service
  claude-run metrics         the ledger as Prometheus metrics
  claude-run dashboard       a live local web dashboard

Arguments after -- go to claude verbatim, e.g.
  claude-run "fix the failing test" --track -- --model sonnet --allowedTools "Bash Edit"
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see claude-run --help)")


def _positive(kind: str) -> type[float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{kind} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{kind} must be greater than 0, got {text!r}")
        return value

    parse.__name__ = kind
    return parse  # type: ignore[return-value]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _telemetry_default() -> bool:
    return os.environ.get("CLAUDE_RUN_TELEMETRY", "").strip().lower() not in ("0", "false", "no", "off")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(
        prog="claude-run",
        description="Run a Claude Code task and account for it: tokens by kind, cost, model, git/CI context.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "task", nargs="?", help="the task; '-' reads it from stdin; none starts an interactive session"
    )
    p.add_argument(
        "--track",
        dest="track",
        action="store_true",
        default=None,
        help="append the run to the ledger (default when CLAUDE_RUN_TRACK=1)",
    )
    p.add_argument("--no-track", dest="track", action="store_false", help="do not record the run")
    p.add_argument(
        "--ledger", metavar="PATH", help="ledger file (else $CLAUDE_RUN_LEDGER, else the data dir)"
    )
    p.add_argument(
        "--claude-bin", metavar="PATH", help="claude executable (else $CLAUDE_RUN_CLAUDE_BIN, else PATH)"
    )
    p.add_argument(
        "--mode",
        choices=("non-interactive", "hybrid", "interactive"),
        help="default: non-interactive with a TASK, interactive without",
    )
    p.add_argument(
        "--hybrid",
        dest="mode",
        action="store_const",
        const="hybrid",
        help="show every event live on stderr (API inspection)",
    )
    p.add_argument(
        "-i", "--interactive", dest="mode", action="store_const", const="interactive", help="the Claude TUI"
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="stored on the record (repeatable)"
    )
    p.add_argument(
        "--json", dest="json_out", action="store_true", help="print the run record as JSON on stdout"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no status line, no summary, no claude stderr")
    p.add_argument(
        "--timeout", type=_positive("--timeout"), metavar="SECONDS", help="stop claude after this long"
    )
    p.add_argument(
        "--max-cost", type=_positive("--max-cost"), metavar="USD", help="passed to claude as --max-budget-usd"
    )
    p.add_argument("--raw", action="store_true", help="write claude's raw stream-json lines to stdout")
    p.add_argument("--show-partial", action="store_true", help="hybrid: also show partial stream events")
    p.add_argument("--record-task", action="store_true", help="store the task text in the record")
    p.add_argument(
        "--no-telemetry",
        dest="telemetry",
        action="store_false",
        default=None,
        help="no built-in OTLP receiver for this run (default off when CLAUDE_RUN_TELEMETRY=0)",
    )
    _add_budget_options(p)
    p.add_argument("--version", action="version", version=f"claude-run {__version__}")
    return p


def _add_budget_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("budgets across runs (summed from the ledger; see docs/ci.md)")
    g.add_argument(
        "--budget-daily",
        type=_positive("--budget-daily"),
        metavar="USD",
        help="refuse to start (exit 75) once today's spend reaches USD",
    )
    g.add_argument(
        "--budget-monthly",
        type=_positive("--budget-monthly"),
        metavar="USD",
        help="refuse to start (exit 75) once this month's spend reaches USD",
    )
    g.add_argument("--budget-project", metavar="NAME", help="count only runs of this project")
    g.add_argument(
        "--budget-tag",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="count only runs with this tag (KEY alone: this run's --tag value)",
    )
    g.add_argument("--budget-tz", metavar="ZONE", default="UTC", help="day/month boundaries (default UTC)")
    g.add_argument("--budget-ledger", metavar="PATH", help="sum spend from this ledger (default: --ledger)")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        own, claude_args = argv[:cut], argv[cut + 1 :]
    else:
        own, claude_args = argv, []
    ns = build_parser().parse_args(own)
    return ns, claude_args


class Plan:
    """The validated command line. Plain class: built before the spawn (no dataclasses import)."""

    __slots__ = ("claude_args", "mode", "ns", "tags", "task", "track")

    def __init__(self, ns: argparse.Namespace, claude_args: list[str]) -> None:
        from .tags import parse_tags

        task = ns.task
        if task == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise UsageError("TASK is '-' but there is no stdin to read it from")
            task = sys.stdin.read()
            if not task.strip():
                raise UsageError("the task read from stdin is empty")
        mode = ns.mode or ("non-interactive" if task is not None else "interactive")
        if mode != "interactive" and task is None:
            raise UsageError(f"--mode {mode} needs a TASK (or '-' to read it from stdin)")
        if mode == "interactive" and (ns.json_out or ns.raw):
            raise UsageError("--json and --raw need a -p run; the interactive mode owns the terminal")
        if ns.raw and ns.json_out:
            raise UsageError("--raw and --json both write stdout; choose one")
        self.ns = ns
        self.claude_args = claude_args
        self.task: str | None = task
        self.mode: str = mode
        self.track: bool = ns.track if ns.track is not None else _env_flag("CLAUDE_RUN_TRACK")
        self.tags = parse_tags(ns.tag)


def budget_spec(ns: argparse.Namespace, tags: dict[str, str]) -> BudgetSpec | None:
    """The budget the options ask for, or None (then no ledger read happens before the spawn)."""
    narrowing = ns.budget_project is not None or ns.budget_tag or ns.budget_ledger or ns.budget_tz != "UTC"
    if ns.budget_daily is None and ns.budget_monthly is None:
        if narrowing:
            raise UsageError("--budget-project/-tag/-tz/-ledger need --budget-daily or --budget-monthly")
        return None
    from pathlib import Path

    from .budget import BudgetSpec

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


def check_budget(spec: BudgetSpec, ledger_option: str | None) -> BudgetState:
    """Sum the spend before the spawn; a refusal also tells the CI step (outputs, summary) why."""
    from .budget import check
    from .errors import BudgetExceeded
    from .paths import ledger_path

    ledger = spec.ledger or ledger_path(ledger_option)
    try:
        return check(spec, ledger)
    except BudgetExceeded as exc:
        from .ci_outputs import write_for_refusal

        for warning in write_for_refusal(exc.message, os.environ):
            sys.stderr.write(f"claude-run: {warning}\n")
        raise


def main(argv: list[str]) -> int:
    from . import launch

    try:
        ns, claude_args = parse(argv)
        plan = Plan(ns, claude_args)
        # Budgets (only when asked): read the ledger before the spawn, refuse with exit 75.
        spec = budget_spec(ns, plan.tags)
        budget = check_budget(spec, ns.ledger) if spec is not None else None
        cwd = os.getcwd()
        started = launch.start(
            mode=plan.mode,
            task=plan.task,
            track=plan.track,
            claude_bin=ns.claude_bin,
            claude_args=claude_args,
            max_cost=ns.max_cost,
            telemetry=ns.telemetry if ns.telemetry is not None else _telemetry_default(),
        )
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
    )
    return finish(started, options)
