"""Every command, hostile values for every option and environment variable: never a traceback, only a
documented exit code, and no file created or renamed outside the ledger's own set (issue 21)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.cli import run_app
from claude_run.run.command import main as run_main

HOSTILE = [
    "",
    " ",
    "-",
    "--",
    "0",
    "-1",
    "inf",
    "-inf",
    "nan",
    "1e400",
    "1e308",
    "99999999999999999999",
    "9999-12-31",
    "0001-01-01",
    "99999999d",
    "9999999999h",
    "99999m",
    "today..yesterday",
    "2025-02-30",
    "/",
    "..",
    "a|b",
    "\x1b[31mred\x1b[0m",
    "line\nbreak",
    "<script>x</script>",
    "tag:",
    "=",
    "k=",
    "é" * 3,
    "\x00",
]
VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))

# (argv before the option, the options that take a value) for each command, run on a small ledger.
COMMANDS: list[tuple[list[str], list[str]]] = [
    (
        ["ledger", "summary"],
        ["--by", "--since", "--until", "--status", "--tag", "--tz", "--format", "--model"],
    ),
    (["ledger", "list"], ["--since", "--until", "--status", "--tag", "--tz", "-n"]),
    (["ledger", "export"], ["--since", "--until", "--status", "--format", "--tz"]),
    (["ledger", "compare"], ["--period", "--against", "--format", "--tz", "--status"]),
    (["ledger", "show"], []),
    (["ledger", "verify"], []),
    (["ledger", "prune", "--dry-run"], ["--before"]),
    (["ledger", "rotate"], ["--keep-days", "--max-bytes"]),
    (["ledger", "reset"], []),
    (["ledger", "import", "--dry-run"], ["--since", "--jobs", "--sessions"]),
    (["ledger", "push", "--dry-run", "--otlp", "http://127.0.0.1:9"], ["--since", "--header"]),
    (["ledger", "report", "--html", "-"], ["--period", "--tag", "--latest"]),
    (["metrics"], ["--tag-label", "--top"]),
    (["ledger", "quota"], ["--format", "--tz", "--windows"]),
    (["budget", "status"], ["--budget-daily", "--budget-monthly", "--budget-tz", "--format", "--budget-tag"]),
]
ENV = [
    "CLAUDE_RUN_LEDGER_KEEP_DAYS",
    "CLAUDE_RUN_LEDGER_MAX_BYTES",
    "CLAUDE_RUN_TRACK",
    "CLAUDE_RUN_TELEMETRY",
    "CLAUDE_RUN_KILL_GRACE",
]
DOCUMENTED = {0, 1, 2, 70, 74, 75, 127}
RECORD = {
    "v": 1,
    "id": "01JHARDEN0000000000000001",
    "started_at": "2026-06-01T10:00:00.000Z",
    "ended_at": "2026-06-01T10:00:01.000Z",
    "status": "success",
    "mode": "non-interactive",
    "project": "p",
    "model": "claude-sonnet-4-5",
    "tokens": {"input": 10, "output": 5, "cache_read": 0, "cache_creation": 0},
    "cost_usd": 0.01,
    "cost_source": "claude",
    "tags": {"k": "v"},
}
WORK = Path(tempfile.mkdtemp(prefix="claude-run-fuzz-"))


@contextlib.contextmanager
def sandbox(env: dict[str, str]) -> Iterator[tuple[Path, Path]]:
    """A fresh directory with a one-record ledger; HOME and the data dir inside it; stdio captured."""
    root = WORK / "case"
    shutil.rmtree(root, ignore_errors=True)
    (root / "home").mkdir(parents=True)
    (root / "cfg").mkdir()
    ledger = root / "ledger.jsonl"
    ledger.write_bytes(orjson.dumps(RECORD) + b"\n")
    ledger.chmod(0o600)
    saved_env = dict(os.environ)
    saved_io = sys.stdout, sys.stderr, os.getcwd()
    os.environ.update({"HOME": str(root / "home"), "XDG_DATA_HOME": str(root / "data"), **env})
    os.environ["CLAUDE_CONFIG_DIR"] = str(root / "cfg")
    sys.stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    os.chdir(root)
    try:
        yield root, ledger
    finally:
        sys.stdout, sys.stderr = saved_io[0], saved_io[1]
        os.chdir(saved_io[2])
        os.environ.clear()
        os.environ.update(saved_env)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _own(name: str) -> bool:
    """The ledger's own set: the ledger, its segments, lock, generation, index, quarantine, push state."""
    first = name.split(os.sep, 1)[0]
    return first.startswith("ledger.") or first in ("home", "cfg", "data")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.sampled_from(COMMANDS),
    picks=st.lists(st.tuples(st.integers(0, 20), VALUES), max_size=3),
    env=st.dictionaries(st.sampled_from(ENV), VALUES, max_size=2),
    extra=st.sampled_from([[], ["--yes"], ["01JHARDEN"], ["--json"]]),
)
def test_every_command_survives_hostile_values(
    command: tuple[list[str], list[str]], picks: list[tuple[int, str]], env: dict[str, str], extra: list[str]
) -> None:
    argv, options = command
    args = list(argv)
    for index, value in picks:
        if options:
            args += [options[index % len(options)], value]
    env = {k: v.replace("\x00", "") for k, v in env.items()}
    with sandbox(env) as (root, ledger):
        args += ["--ledger", str(ledger)]
        if argv[1:2] == ["show"]:
            args.append("01JHARDEN")
        elif argv[1:2] in (["reset"], ["verify"]) and extra in (["--yes"], ["--json"]):
            args += extra
        before = _files(root)
        code = run_app(args)  # a traceback would propagate here and fail the example
        sys.stderr.flush()
        err = sys.stderr.buffer.getvalue().decode()  # type: ignore[attr-defined]
        after = _files(root)
    assert code in DOCUMENTED, (args, code, err)
    assert "Traceback" not in err
    if code not in (0, 1):
        assert err.strip() and len(err.strip().splitlines()) == 1, (args, err)
    assert {n for n in after - before if not _own(n)} == set(), args
    assert {n for n in before - after if not _own(n)} == set(), args


RUN_OPTIONS = ["--tag", "--timeout", "--max-cost", "--mode", "--budget-daily", "--budget-tz", "--ledger"]


@settings(max_examples=100, deadline=None)
@given(
    task=st.one_of(st.none(), VALUES),
    picks=st.lists(st.tuples(st.sampled_from(RUN_OPTIONS), VALUES), max_size=3),
    flags=st.lists(st.sampled_from(["--track", "--hybrid", "-i", "--json", "--raw", "-q"]), max_size=3),
    env=st.dictionaries(st.sampled_from([*ENV, "CLAUDE_RUN_LEDGER"]), VALUES, max_size=2),
)
def test_the_run_command_refuses_before_it_spawns(
    task: str | None, picks: list[tuple[str, str]], flags: list[str], env: dict[str, str]
) -> None:
    """A claude that does not exist: every hostile line ends in a one-line refusal, never a spawn."""
    args = [*flags, "--claude-bin", "/nonexistent/claude"]
    for option, value in picks:
        args.append(f"{option}={value}")
    if task is not None and task not in ("-",):
        args.append(task.replace("\x00", "") or "x")
    env = {k: v.replace("\x00", "") for k, v in env.items()}
    with sandbox(env) as (root, _ledger):
        sys.stdin, saved_stdin = io.TextIOWrapper(io.BytesIO(b"")), sys.stdin
        try:
            before = _files(root)
            code = run_main(args)
            after = _files(root)
        finally:
            sys.stdin = saved_stdin
        sys.stderr.flush()
        err = sys.stderr.buffer.getvalue().decode()  # type: ignore[attr-defined]
    assert code in (2, 74, 75, 127), (args, code, err)
    assert len(err.strip().splitlines()) == 1, (args, err)
    assert {n for n in after - before if not _own(n)} == set(), args


# Every option of every command, and every variable, with each of these (generation alone finds a
# one-in-thousands combination such as `summary --until 9999-12-31` too rarely).
CORE = ["", "inf", "1e400", "-1", "9999-12-31", "0001-01-01", "99999999d", "/", "a|b", "\x1b[2J", "bogus"]


def _check(args: list[str], env: dict[str, str]) -> None:
    with sandbox(env) as (root, ledger):
        args = [*args, "--ledger", str(ledger)]
        before = _files(root)
        code = run_app(args)
        sys.stderr.flush()
        err = sys.stderr.buffer.getvalue().decode()  # type: ignore[attr-defined]
        after = _files(root)
    assert code in DOCUMENTED and "Traceback" not in err, (args, env, code, err)
    if code not in (0, 1):
        assert len(err.strip().splitlines()) == 1, (args, err)
    assert {n for n in (after ^ before) if not _own(n)} == set(), args


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[0][:2]))
def test_every_option_with_each_hostile_value(command: tuple[list[str], list[str]]) -> None:
    argv, options = command
    for option in options:
        for value in CORE:
            _check([*argv, option, value, *(["01JHARDEN"] if argv[1:2] == ["show"] else [])], {})


@pytest.mark.parametrize("variable", ENV)
def test_every_variable_with_each_hostile_value(variable: str) -> None:
    for value in CORE:
        _check(["ledger", "rotate"], {variable: value})
        _check(["ledger", "summary"], {variable: value})
