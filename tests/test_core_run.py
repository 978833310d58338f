"""Whole runs of `claude-run` against a fake `claude`: crashes, noise, huge lines, signals, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.run.process import with_death_signal
from support import fake_claude
from support.fake_claude import make_fake_claude

SRC = str(Path(__file__).resolve().parents[1] / "src")
SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "claude-code-2.1.330"
if not SAMPLES.is_dir():  # a worktree outside the checkout layout
    SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_RUN_", "GITHUB_", "OTEL_"))}
    env.update(
        {
            "PYTHONPATH": SRC,
            "HOME": str(tmp_path / "home"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "CLAUDE_RUN_KILL_GRACE": "1",
        }
    )
    env.pop("CI", None)
    env.update(extra)
    return env


def run_cli(
    tmp_path: Path, claude: Path, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "--claude-bin", str(claude), *args],
        input=stdin,
        capture_output=True,
        env=env or cli_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )


def start_tracked(tmp_path: Path, ledger: Path, claude: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A tracked run in the background, for tests that signal it while it runs."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_run",
            "hi",
            "--track",
            "--ledger",
            str(ledger),
            "--claude-bin",
            str(claude),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )


def ledger_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def tokens_of(usages: tuple[Any, ...]) -> dict[str, int]:
    out = {"input": 0, "output": 0, "cache_read": 0, "cache_creation": 0}
    for u in usages:
        out["input"] += u.input
        out["output"] += u.output
        out["cache_read"] += u.cache_read
        out["cache_creation"] += u.cache_creation_5m + u.cache_creation_1h
    return out


def core_tokens(record: dict[str, Any]) -> dict[str, int]:
    return {k: record["tokens"][k] for k in ("input", "output", "cache_read", "cache_creation")}


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "ledger.jsonl"


def test_text_run_prints_only_the_result_on_stdout_and_records_exact_usage(
    tmp_path: Path, ledger: Path
) -> None:
    claude = make_fake_claude(tmp_path, "text")
    p = run_cli(tmp_path, claude, "say hi", "--track", "--ledger", str(ledger), "--tag", "team=core")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"fake answer\n"
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "success" and rec["exit_code"] == 0 and rec["mode"] == "non-interactive"
    assert core_tokens(rec) == tokens_of((fake_claude.TEXT_USAGE,))
    assert rec["cost_source"] == "claude" and rec["cost_usd"] > 0
    assert rec["tags"] == {"team": "core"}
    assert "task" not in rec and len(rec["task_sha256"]) == 64
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"
    assert oct(ledger.parent.stat().st_mode & 0o777) == "0o700"


def test_default_ledger_is_in_the_xdg_data_dir(tmp_path: Path) -> None:
    claude = make_fake_claude(tmp_path, "text")
    p = run_cli(tmp_path, claude, "hi", "--track")
    assert p.returncode == 0, p.stderr
    assert len(ledger_records(tmp_path / "data" / "claude-run" / "ledger.jsonl")) == 1


def test_track_from_env_and_no_track_wins(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "text")
    env = cli_env(tmp_path, CLAUDE_RUN_TRACK="1", CLAUDE_RUN_LEDGER=str(ledger))
    assert run_cli(tmp_path, claude, "hi", env=env).returncode == 0
    assert run_cli(tmp_path, claude, "hi", "--no-track", env=env).returncode == 0
    assert len(ledger_records(ledger)) == 1


def test_task_from_stdin_goes_to_claude_on_stdin_and_env_is_cleaned(tmp_path: Path, ledger: Path) -> None:
    args_file = tmp_path / "args.json"
    claude = make_fake_claude(tmp_path, "echo-args", args_file=args_file)
    env = cli_env(tmp_path, CLAUDECODE="1", OTEL_METRICS_EXPORTER="console", CLAUDE_CODE_ENABLE_TELEMETRY="1")
    p = run_cli(tmp_path, claude, "-", "--json", "--", "--model", "opus", stdin=b"task from stdin", env=env)
    assert p.returncode == 0, p.stderr
    seen = orjson.loads(args_file.read_bytes())
    argv = seen["argv"]
    assert argv[:4] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert argv[-2:] == ["--model", "opus"]
    assert "task from stdin" not in argv  # on stdin, not in the process list
    assert "CLAUDECODE" not in seen["env"]
    assert not [k for k in seen["env"] if k.startswith("OTEL_")]
    record = orjson.loads(p.stdout)
    assert record["status"] == "success" and record["v"] == 1


def test_noise_lines_are_skipped_counted_and_warned_once(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "noise")
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(ledger))
    assert p.returncode == 0
    assert p.stderr.count(b"skipping non-JSON output") == 1
    (rec,) = ledger_records(ledger)
    assert core_tokens(rec) == tokens_of((fake_claude.TEXT_USAGE,))
    assert any("non-JSON" in n for n in rec["notes"])


def test_a_4mb_event_line_passes(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "huge")
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(ledger))
    assert p.returncode == 0, p.stderr[-500:]
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "success"


def test_torn_last_line_is_a_crash_recorded_from_what_was_seen(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "torn")
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(ledger))
    assert p.returncode == 1
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "crashed"
    assert rec["tokens"]["input"] > 0


def test_crash_without_result_is_recorded_with_an_estimate(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "crash")
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(ledger))
    assert p.returncode == 134
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "crashed" and rec["exit_code"] == 134
    expected = tokens_of(fake_claude.TOOL_USAGES)
    assert rec["tokens"]["input"] == expected["input"]
    assert rec["tokens"]["cache_read"] == expected["cache_read"]
    assert rec["cost_source"] == "estimate" and rec["cost_usd"] > 0


def test_stderr_flood_does_not_block_the_child(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "stderr-flood")
    p = run_cli(tmp_path, claude, "hi", "--quiet", "--track", "--ledger", str(ledger))
    assert p.returncode == 0
    assert len(ledger_records(ledger)) == 1


def _wait_for(path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _pids_running(marker: str) -> list[int]:
    """Live processes whose command line or environment mentions `marker` (the test's tmp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in seen and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc to look for orphans")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_are_forwarded_waited_for_and_recorded(
    tmp_path: Path, ledger: Path, sig: signal.Signals, code: int
) -> None:
    sigfile = tmp_path / "signal.txt"
    # A child that prints its first event only after a pause: by then claude-run has its handlers.
    claude = make_fake_claude(tmp_path, "hang", signal_file=sigfile, hang_max=30)
    started = tmp_path / "started"
    proc = start_tracked(tmp_path, ledger, claude, cli_env(tmp_path))
    try:
        _wait_until_child_runs(str(tmp_path), started)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert sigfile.read_text().strip().splitlines()[0] == sig.name
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "interrupted" and rec["exit_code"] == code
    assert rec["tokens"]["input"] > 0  # what was seen before the stop is kept
    assert not _pids_running(str(tmp_path))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_until_child_runs(marker: str, _unused: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pids_running(marker + "/signal"):  # the fake's environment names its signal file
            time.sleep(0.8)  # let claude-run install its signal receiver and read the first events
            return
        time.sleep(0.05)
    raise AssertionError("fake claude never started")


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc to look for orphans")
def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_and_reaped(
    tmp_path: Path, ledger: Path
) -> None:
    sigfile = tmp_path / "signal.txt"
    claude = make_fake_claude(tmp_path, "ignore-term", signal_file=sigfile, hang_max=60)
    proc = start_tracked(tmp_path, ledger, claude, cli_env(tmp_path, CLAUDE_RUN_KILL_GRACE="0.5"))
    try:
        _wait_until_child_runs(str(tmp_path), sigfile)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "interrupted"
    assert any("killed" in n for n in rec["notes"])
    assert not _pids_running(str(tmp_path))


@pytest.mark.skipif(
    sys.platform != "linux" or with_death_signal(["/bin/sh"]) == ["/bin/sh"],
    reason="the parent-death signal needs Linux and util-linux's setpriv",
)
def test_claude_dies_with_a_sigkilled_claude_run(tmp_path: Path, ledger: Path) -> None:
    """SIGKILL leaves claude-run no chance to stop claude: the kernel must (PR_SET_PDEATHSIG)."""
    sigfile = tmp_path / "signal.txt"
    claude = make_fake_claude(tmp_path, "ignore-term", signal_file=sigfile, hang_max=60)
    proc = start_tracked(tmp_path, ledger, claude, cli_env(tmp_path))
    try:
        _wait_until_child_runs(str(tmp_path), sigfile)
        assert _pids_running(str(tmp_path))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while _pids_running(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pids_running(str(tmp_path)), "claude outlived claude-run"
    finally:
        proc.kill()
        for pid in _pids_running(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not ledger.exists() or ledger_records(ledger) == []  # nothing recorded: import finds it


def test_timeout_stops_the_child_and_exits_124(tmp_path: Path, ledger: Path) -> None:
    claude = make_fake_claude(tmp_path, "hang", signal_file=tmp_path / "sig", hang_max=30)
    p = run_cli(tmp_path, claude, "hi", "--timeout", "1.5", "--track", "--ledger", str(ledger))
    assert p.returncode == 124
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "timeout" and rec["exit_code"] == 124
    assert (tmp_path / "sig").read_text().strip() == "SIGTERM"


def test_missing_claude_is_one_line_and_127(tmp_path: Path) -> None:
    p = run_cli(tmp_path, tmp_path / "no-such-claude", "hi")
    assert p.returncode == 127
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "npm install" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["hi", "--tag", "novalue"],
        ["hi", "--timeout", "-1"],
        ["hi", "--max-cost", "abc"],
        ["--bogus", "hi"],
        ["--mode", "hybrid"],
        ["hi", "--raw", "--json"],
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    claude = make_fake_claude(tmp_path, "text")
    p = run_cli(tmp_path, claude, *args)
    assert p.returncode == 2
    assert len(p.stderr.decode().strip().splitlines()) == 1, p.stderr
    assert b"Traceback" not in p.stderr


def test_a_symlinked_ledger_is_refused_before_claude_starts(tmp_path: Path) -> None:
    claude = make_fake_claude(tmp_path, "text")
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    link = tmp_path / "ledger.jsonl"
    link.symlink_to(target)
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(link))
    assert p.returncode == 74 and p.stdout == b""
    assert p.stderr.count(b"\n") == 1 and b"symbolic link" in p.stderr
    assert target.read_text() == ""


def test_an_unwritable_ledger_never_hides_the_result(tmp_path: Path) -> None:
    fake = make_fake_claude(tmp_path, "text")
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("")
    ledger = tmp_path / "ledger.jsonl"
    # The ledger turns into a symlink while claude runs: the append refuses it after the run.
    claude = tmp_path / "swapping-claude"
    claude.write_text(f'#!/bin/sh\nln -sf {target} {ledger}\nexec {fake} "$@"\n')
    claude.chmod(0o755)
    p = run_cli(tmp_path, claude, "hi", "--track", "--ledger", str(ledger))
    assert p.stdout == b"fake answer\n"
    assert p.returncode == 74
    assert b"NOT recorded" in p.stderr and b"symbolic link" in p.stderr
    assert target.read_text() == ""


def test_raw_tees_every_event_line_to_stdout(tmp_path: Path) -> None:
    claude = make_fake_claude(tmp_path, "tool")
    p = run_cli(tmp_path, claude, "hi", "--hybrid", "--raw")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    kinds = [orjson.loads(line)["type"] for line in lines]
    assert kinds[0] == "system" and kinds[-1] == "result"
    assert b"tool Bash" in p.stderr  # the hybrid view shows the tool call


def test_budget_stop_is_recorded_as_budget_exceeded(tmp_path: Path, ledger: Path) -> None:
    sample = (
        Path(fake_claude.__file__).resolve().parents[3]
        / "shared/samples/claude-code-2.1.330/stream-budget.jsonl"
    )
    if not sample.exists():
        sample = Path("/work/shared/samples/claude-code-2.1.330/stream-budget.jsonl")
    claude = make_fake_claude(tmp_path, "replay", file=sample, exit_code=1)
    p = run_cli(tmp_path, claude, "hi", "--max-cost", "0.0001", "--track", "--ledger", str(ledger))
    assert p.returncode == 1
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "budget_exceeded"
    assert rec["tokens"]["input"] == 233 and rec["tokens"]["output"] == 47


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_on_a_terminal_stderr_shows_a_live_status_line_and_a_summary(tmp_path: Path) -> None:
    import pty

    claude = make_fake_claude(tmp_path, "replay", file=SAMPLES / "stream-tool.jsonl", line_delay=0.3)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "claude_run", "--claude-bin", str(claude), "hi"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=cli_env(tmp_path),
            cwd=tmp_path,
        )
        os.close(slave)
        out, _ = proc.communicate(timeout=60)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert out == b"mock answer 3\n"  # stdout stays the result alone
    assert "\r\x1b[2K" in screen and "turn 2" in screen and "tok" in screen
    assert "✓ success" in screen and "2 turns" in screen


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc to see the child start")
def test_a_signal_right_after_the_spawn_is_forwarded_and_the_run_still_recorded(
    tmp_path: Path, ledger: Path
) -> None:
    sigfile = tmp_path / "signal.txt"
    claude = make_fake_claude(tmp_path, "hang", signal_file=sigfile, hang_max=30)
    proc = start_tracked(tmp_path, ledger, claude, cli_env(tmp_path))
    try:
        deadline = time.monotonic() + 15
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)  # most likely while claude-run still imports its event loop
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    (rec,) = ledger_records(ledger)
    assert rec["status"] == "interrupted"
    # The child got the signal too early to write its marker: it died of it, and was reaped.
    assert not _pids_running(str(tmp_path))
