"""The run command's two parsers: the table-driven fast one must agree with argparse, or step aside."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import claude_run
from claude_run.errors import UsageError
from claude_run.run.command import BUDGET_OPTIONS, OPTIONS, Options, _Option, build_parser, parse, parse_fast

DESTS = ["task", *dict.fromkeys(o.dest for o in OPTIONS + BUDGET_OPTIONS)]
FLAGS = [flag for o in OPTIONS + BUDGET_OPTIONS for flag in o.flags]


def fields(ns: Options) -> dict[str, object]:
    return {dest: getattr(ns, dest) for dest in DESTS}


def by_argparse(own: list[str]) -> dict[str, object] | str:
    try:
        return fields(build_parser().parse_args(own, namespace=Options()))
    except UsageError as exc:
        return f"error: {exc.message}"
    except SystemExit:  # --help, --version
        return "exit"


def expected(**changes: object) -> dict[str, object]:
    return {**fields(Options()), **changes}


def test_every_dest_has_a_typed_default() -> None:
    assert set(DESTS) == set(Options.__annotations__)


@pytest.mark.parametrize(
    ("argv", "changes"),
    [
        (["hi"], {"task": "hi"}),
        (["-"], {"task": "-"}),
        ([""], {"task": ""}),
        ([], {}),
        (["--track"], {"track": True}),
        (["--track", "--no-track"], {"track": False}),
        (["--ledger", "l.jsonl"], {"ledger": "l.jsonl"}),
        (["--ledger=l.jsonl"], {"ledger": "l.jsonl"}),
        (["--ledger="], {"ledger": ""}),
        (["--claude-bin", "/x/claude"], {"claude_bin": "/x/claude"}),
        (["--mode", "hybrid", "t"], {"mode": "hybrid", "task": "t"}),
        (["--mode=non-interactive"], {"mode": "non-interactive"}),
        (["--hybrid"], {"mode": "hybrid"}),
        (["-i"], {"mode": "interactive"}),
        (["--interactive"], {"mode": "interactive"}),
        (["--tag", "a=1", "--tag=b=2"], {"tag": ["a=1", "b=2"]}),
        (["--json"], {"json_out": True}),
        (["-q"], {"quiet": True}),
        (["--quiet"], {"quiet": True}),
        (["--timeout", "1.5"], {"timeout": 1.5}),
        (["--max-cost=0.25"], {"max_cost": 0.25}),
        (["--raw"], {"raw": True}),
        (["--show-partial"], {"show_partial": True}),
        (["--record-task"], {"record_task": True}),
        (["--no-telemetry"], {"telemetry": False}),
        (["--budget-daily", "5"], {"budget_daily": 5.0}),
        (["--budget-monthly", "50"], {"budget_monthly": 50.0}),
        (["--budget-project", "p"], {"budget_project": "p"}),
        (["--budget-tag", "team", "--budget-tag", "env=ci"], {"budget_tag": ["team", "env=ci"]}),
        (["--budget-tz", "Europe/Paris"], {"budget_tz": "Europe/Paris"}),
        (["--budget-ledger", "b.jsonl"], {"budget_ledger": "b.jsonl"}),
        (
            ["say hi", "--track", "--quiet", "--ledger", "l"],
            {"task": "say hi", "track": True, "quiet": True, "ledger": "l"},
        ),
    ],
)
def test_the_fast_parser_reads_every_option(argv: list[str], changes: dict[str, object]) -> None:
    fast = parse_fast(argv)
    assert fast is not None
    assert fields(fast) == expected(**changes) == by_argparse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["--tra"],  # an abbreviation argparse accepts
        ["--t", "x"],  # an ambiguous one
        ["-qi"],
        ["-q=1"],
        ["--track=yes"],
        ["--bogus"],
        ["a", "b"],
        ["--ledger"],
        ["--ledger", "-"],
        ["--ledger", "--track"],
        ["--ledger=--"],  # argparse stores [] here
        ["--ledger=-x"],
        ["--timeout", "-1"],
        ["--timeout", "0"],
        ["--timeout=abc"],
        ["--max-cost", "nan"],
        ["--budget-daily", "inf"],
        ["--mode", "bogus"],
        ["-5"],
        ["- a task with spaces"],
    ],
)
def test_anything_unusual_is_left_to_argparse(argv: list[str]) -> None:
    assert parse_fast(argv) is None


def test_argparse_reads_what_the_fast_parser_leaves_to_it() -> None:
    ns, claude_args = parse(["--tra", "-qi", "hi", "--", "--model", "x"])
    assert fields(ns) == expected(task="hi", track=True, quiet=True, mode="interactive")
    assert claude_args == ["--model", "x"]
    with pytest.raises(UsageError, match="must be greater than 0"):
        parse(["hi", "--timeout", "-1"])
    with pytest.raises(UsageError, match="unrecognized arguments: b"):
        parse(["a", "b"])


VALUES = [
    "hi",
    "x y",
    "",
    "-",
    "-x",
    "-1",
    "0",
    "1.5",
    "nan",
    "inf",
    "a=b",
    "team",
    "hybrid",
    "interactive",
    "--",
]
ABBREVIATIONS = [
    "--tr",
    "--tra",
    "--no-t",
    "--led",
    "--budget-t",
    "--budget-d",
    "--m",
    "--mo",
    "--max",
    "--q",
    "--h",
]
TOKENS = st.one_of(
    st.sampled_from(FLAGS),
    st.sampled_from(VALUES),
    st.sampled_from(ABBREVIATIONS),
    st.builds(lambda f, v: f"{f}={v}", st.sampled_from(FLAGS + ABBREVIATIONS), st.sampled_from(VALUES)),
    st.sampled_from(["-qi", "-iq", "-q1", "-h", "--help", "--version"]),
    st.text(max_size=6),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(TOKENS, max_size=7))
@example(["--hybrid", "-i"])
def test_the_fast_parser_agrees_with_argparse_or_steps_aside(argv: list[str]) -> None:
    try:
        fast = parse_fast(argv)
    except UsageError as exc:  # two different modes: argparse refuses them in the same words
        assert by_argparse(argv) == f"error: {exc.message}"
        return
    if fast is not None:
        assert fields(fast) == by_argparse(argv)


def _good_value(option: _Option) -> st.SearchStrategy[str]:
    if isinstance(option.argument, tuple):
        return st.sampled_from(option.argument)
    if callable(option.argument):
        return st.sampled_from(["1.5", "2", "0.001", "1e3"])
    return st.sampled_from(["x", "a=b", "", "x y", "/tmp/l.jsonl", "é"])


def _usual(option: _Option) -> st.SearchStrategy[list[str]]:
    flag = st.sampled_from(option.flags)
    if option.action == "const":
        return flag.map(lambda f: [f])
    return st.one_of(
        st.tuples(flag, _good_value(option)).map(list),
        st.tuples(flag, _good_value(option)).map(lambda fv: [f"{fv[0]}={fv[1]}"]),
    )


USUAL_LINE = st.tuples(
    st.lists(st.one_of([_usual(o) for o in OPTIONS + BUDGET_OPTIONS]), max_size=6),
    st.one_of(st.none(), st.sampled_from(["hi", "-", "", "fix the bug", "é"])),
    st.integers(0, 6),
).map(lambda parts: _line(*parts))


def _line(units: list[list[str]], task: str | None, at: int) -> list[str]:
    if task is not None:
        units = [*units[:at], [task], *units[at:]]
    return [arg for unit in units for arg in unit]


@settings(max_examples=1000, deadline=None)
@given(USUAL_LINE)
def test_the_fast_parser_reads_the_usual_lines_as_argparse_does(argv: list[str]) -> None:
    fast = parse_fast(argv)
    if fast is None:  # two different modes: the fast parser steps aside and argparse refuses
        assert "conflicts with the mode already chosen" in str(by_argparse(argv))
        return
    assert fields(fast) == by_argparse(argv)


def test_the_hot_path_imports_neither_argparse_nor_subprocess(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from claude_run.run import command as run_cli, launch\n"
        "run_cli.parse(['say hi', '--track', '--quiet', '--tag', 'a=b', '--timeout', '5', '--', '-x'])\n"
        "heavy = {'argparse', 'subprocess', 'signal', 'enum', 're', 'typing', 'dataclasses', 'shutil'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    src = str(Path(claude_run.__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],  # -S: nothing imported by site or .pth files
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_help_shows_every_option() -> None:
    # argparse formats help strings with %: a bare "%" in the table breaks --help.
    text = build_parser().format_help()
    for flag in FLAGS:
        assert flag in text


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--he"], ["-qh"], ["a task", "--help"]])
def test_every_form_of_help_shows_the_typer_page(argv: list[str]) -> None:
    """Like every other command's help; abbreviated and combined forms too, never argparse's page."""
    out = subprocess.run(
        [sys.executable, "-m", "claude_run", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "Usage: claude-run [OPTIONS] [TASK]" in out.stdout
    assert "Budgets across runs" in out.stdout and "--budget-daily" in out.stdout
    for name in ("ledger", "dashboard", "statusline"):
        assert f"{name}:" in out.stdout  # the other commands, from command.COMMANDS
    assert "usage: claude-run [-h]" not in out.stdout  # argparse's own page
