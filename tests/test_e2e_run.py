"""claude-run driving the REAL Claude Code CLI against the mock Messages API.

Each test checks the recorded tokens against what the mock actually returned (`api.served`, by
model) and the recorded cost against Claude's own `total_cost_usd` and the list price.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.claude_cli import claude_env, write_claude_json
from support.mock_anthropic import (
    NO_RETRY,
    MockAnthropic,
    MockApiFactory,
    Usage,
    invalid_request,
    list_cost,
    text,
    tool_use,
)

pytestmark = pytest.mark.e2e

SRC = str(Path(__file__).resolve().parents[1] / "src")
SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"
U1 = Usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19)
U2 = Usage(input=122, cache_creation_5m=1000, cache_creation_1h=539, cache_read=4303, output=26)
U3 = Usage(input=57, cache_creation_1h=300, cache_read=700, output=15)
BASH = tool_use("Bash", {"command": "echo tool-ran", "description": "print a word"}, usage=U1)


def run_env(home: Path, api: MockAnthropic, **extra: str) -> dict[str, str]:
    env = claude_env(home, api.url)
    env.update({"PYTHONPATH": SRC, "XDG_DATA_HOME": str(home / "data"), "CLAUDE_RUN_KILL_GRACE": "2"})
    env.update(extra)
    return env


def run_argv(claude_bin: Path, home: Path, *args: str, claude_args: tuple[str, ...] = ()) -> list[str]:
    """`claude-run --track` into `home`'s ledger on Sonnet; `claude_args` go to claude."""
    own = ["--claude-bin", str(claude_bin), "--track", "--ledger", str(home / "ledger.jsonl"), *args]
    return [sys.executable, "-m", "claude_run", *own, "--", "--model", SONNET, *claude_args]


AGENT_ON_HAIKU = tool_use(
    "Agent",
    {
        "description": "say a word",
        "prompt": "Say the word banana.",
        "subagent_type": "general-purpose",
        "model": "haiku",
        "run_in_background": False,  # foreground: the requests come in a fixed order
    },
    usage=U1,
)
HAIKU_ENV = {"ANTHROPIC_DEFAULT_HAIKU_MODEL": HAIKU}  # else the alias means another model


def claude_run(
    claude_bin: Path,
    home: Path,
    api: MockAnthropic,
    *args: str,
    claude_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]]]:
    ledger = home / "ledger.jsonl"
    before = len(read_ledger(ledger))
    proc = subprocess.run(
        run_argv(claude_bin, home, *args, claude_args=claude_args),
        capture_output=True,
        env=run_env(home, api, **(env or {})),
        cwd=home / "project",
        timeout=120,
    )
    return proc, read_ledger(ledger)[before:]


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def assert_tokens_equal_served(record: dict[str, Any], api: MockAnthropic) -> None:
    served = api.usage_by_model()
    assert set(record["models"]) == set(served)
    for model, usage in served.items():
        got = record["models"][model]
        assert (got["input"], got["output"], got["cache_read"], got["cache_creation"]) == (
            usage.input,
            usage.output,
            usage.cache_read,
            usage.cache_creation,
        ), model
        assert got["cache_creation_1h"] == usage.cache_creation_1h
    total = api.total_usage()
    t = record["tokens"]
    assert (t["input"], t["output"], t["cache_read"], t["cache_creation"]) == (
        total.input,
        total.output,
        total.cache_read,
        total.cache_creation,
    )
    assert record["cost_usd"] == pytest.approx(api.list_cost(), rel=1e-9)


def test_text_run(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([text("hello from the mock", usage=U2)])
    proc, (rec,) = claude_run(claude_bin, claude_home, api, "say hello", "--tag", "team=core")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"hello from the mock\n"
    assert rec["status"] == "success" and rec["cost_source"] == "claude"
    assert rec["claude_version"] == "2.1.330" and rec["model"] == SONNET
    assert rec["num_turns"] == 1 and rec["session_id"]
    assert_tokens_equal_served(rec, api)


def test_tool_run_two_requests(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([BASH, text("the tool said tool-ran", usage=U2)])
    proc, (rec,) = claude_run(
        claude_bin, claude_home, api, "run echo", claude_args=("--allowedTools", "Bash")
    )
    assert proc.returncode == 0, proc.stderr
    assert len(api.messages_requests()) == 2
    assert rec["num_turns"] == 2
    assert_tokens_equal_served(rec, api)


def test_api_error_400(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([invalid_request("prompt is too long", headers=NO_RETRY)])
    proc, (rec,) = claude_run(claude_bin, claude_home, api, "hi")
    assert proc.returncode == 1
    assert rec["status"] == "error" and rec["exit_code"] == 1
    assert rec["api_error_status"] == 400 and rec["is_error"] is True
    assert rec["tokens"]["input"] == 0 and rec["cost_usd"] == 0
    assert rec["models"] == {}
    assert proc.stdout == b""  # the reason is not an answer: stderr, after the summary line
    assert b"claude-run: claude says:" in proc.stderr.splitlines()[-1]


def test_max_cost_stop(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([BASH, text("never reached", usage=U2)])
    proc, (rec,) = claude_run(
        claude_bin,
        claude_home,
        api,
        "run echo",
        "--max-cost",
        "0.0001",
        claude_args=("--allowedTools", "Bash"),
    )
    assert proc.returncode == 1
    assert rec["status"] == "budget_exceeded" and rec["subtype"] == "error_max_budget_usd"
    assert len(api.messages_requests()) == 1
    assert_tokens_equal_served(rec, api)  # the result's usage block is zero here: modelUsage is the truth


def test_multi_model_run_with_a_subagent(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api(
        [AGENT_ON_HAIKU, text("banana", usage=U3, for_model=HAIKU), text("it said banana", usage=U2)]
    )
    proc, (rec,) = claude_run(
        claude_bin, claude_home, api, "ask a subagent", claude_args=("--allowedTools", "Agent"), env=HAIKU_ENV
    )
    assert proc.returncode == 0, proc.stderr
    assert set(rec["models"]) == {SONNET, HAIKU}
    assert_tokens_equal_served(rec, api)
    assert rec["models"][HAIKU]["cost_usd"] == pytest.approx(list_cost(HAIKU, U3), rel=1e-9)


def test_hybrid_shows_every_event_and_raw_tees_them(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([BASH, text("done", usage=U2)])
    proc, (rec,) = claude_run(
        claude_bin, claude_home, api, "run echo", "--hybrid", "--raw", claude_args=("--allowedTools", "Bash")
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.decode()
    assert "→ tool Bash" in err and "← tool result: tool-ran" in err
    assert f"{U1.output} output tokens (final)" in err
    events = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["type"] == "result"
    assert rec["mode"] == "hybrid"
    assert_tokens_equal_served(rec, api)


def _start_stalled_run(
    claude_bin: Path,
    home: Path,
    api: MockAnthropic,
    *,
    task: str = "run echo",
    tool: str = "Bash",
    requests: int = 2,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """A run whose last planned request stalls: returns once claude waits for that answer."""
    proc = subprocess.Popen(
        run_argv(claude_bin, home, task, claude_args=("--allowedTools", tool)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=run_env(home, api, **(env or {})),
        cwd=home / "project",
    )
    deadline = time.monotonic() + 60
    while len(api.messages_requests()) < requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(api.messages_requests()) == requests
    return proc


def _assert_tokens(record: dict[str, Any], usage: Usage) -> None:
    t = record["tokens"]
    assert (t["input"], t["output"], t["cache_read"], t["cache_creation"]) == (
        usage.input,
        usage.output,
        usage.cache_read,
        usage.cache_creation,
    ), str(record)


def test_ctrl_c_is_forwarded_and_claudes_own_final_figures_are_kept(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([BASH, text("too late", usage=U2, delay=30)])
    proc = _start_stalled_run(claude_bin, claude_home, api)
    try:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    (rec,) = read_ledger(claude_home / "ledger.jsonl")
    assert rec["status"] == "interrupted" and rec["exit_code"] == 130
    # claude usually answers SIGINT in -p mode with a final result event, whose cost is then the
    # truth; when it exits first (seen under load), the record is built from the events seen.
    if rec["cost_source"] == "claude" and rec["subtype"] is not None:
        assert rec["terminal_reason"] == "aborted_streaming", str(rec)
    elif rec["cost_source"] == "claude":
        assert any("transcript" in n for n in rec["notes"])  # the cost-state Claude wrote at exit
    else:
        assert rec["cost_source"] == "estimate" and rec["subtype"] is None
    _assert_tokens(rec, U1)
    assert rec["cost_usd"] == pytest.approx(list_cost(SONNET, U1), rel=1e-9)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(sys.platform != "linux", reason="finds claude's pid through /proc")
def test_claude_killed_without_a_result_is_recorded_as_crashed_with_an_estimate(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([BASH, text("too late", usage=U2, delay=30)])
    proc = _start_stalled_run(claude_bin, claude_home, api)
    try:
        (claude_pid,) = _children(proc.pid)
        os.kill(claude_pid, signal.SIGKILL)  # as the OOM killer would: no result event
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGKILL
    (rec,) = read_ledger(claude_home / "ledger.jsonl")
    assert rec["status"] == "crashed"
    assert rec["cost_source"] == "estimate"
    # The first message is complete (its message_delta arrived): exact tokens, list-price cost.
    _assert_tokens(rec, U1)
    assert rec["cost_usd"] == pytest.approx(list_cost(SONNET, U1), rel=1e-9)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (apt-get install tmux)")
def test_interactive_session_is_recorded_from_its_transcript(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory, tmp_path: Path
) -> None:
    api = mock_api([text("hello from the TUI", usage=U2)])
    project = claude_home / "project"
    write_claude_json(claude_home, project)
    ledger = claude_home / "ledger.jsonl"
    env = run_env(claude_home, api, OTEL_METRICS_EXPORTER="console", CLAUDE_CODE_ENABLE_TELEMETRY="1")
    env_file = tmp_path / "env.sh"
    env_file.write_text("".join(f"export {k}={_sh(v)}\n" for k, v in env.items()))
    done = tmp_path / "exit-code"
    cmd = (
        f". {_sh(str(env_file))}; cd {_sh(str(project))}; {_sh(sys.executable)} -m claude_run "
        f"--claude-bin {_sh(str(claude_bin))} --track --ledger {_sh(str(ledger))} -- --model {SONNET}; "
        f"echo $? > {_sh(str(done))}"
    )
    session = f"cr-{os.getpid()}-{time.monotonic_ns()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    try:
        _wait_screen(session, "\u276f")  # the TUI prompt: ready for input
        subprocess.run(["tmux", "send-keys", "-t", session, "say hello", "Enter"], check=True)
        _wait_screen(session, "hello from the TUI")
        subprocess.run(["tmux", "send-keys", "-t", session, "/exit", "Enter"], check=True)
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.exists(), _screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert done.read_text().strip() == "0"
    (rec,) = read_ledger(ledger)
    assert rec["mode"] == "interactive" and rec["status"] == "success"
    assert rec["session_id"] and rec["cost_source"] == "claude"
    assert_tokens_equal_served(rec, api)


def _sh(value: str) -> str:
    import shlex

    return shlex.quote(value)


def _screen(session: str) -> str:
    out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return out.stdout


def _wait_screen(session: str, needle: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in _screen(session):
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared on screen:\n{_screen(session)}")


@pytest.mark.skipif(sys.platform != "linux", reason="finds claude's pid through /proc")
def test_killed_run_with_a_subagent_takes_usage_from_the_transcript(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    # The subagent's message never shows on stdout; the third request stalls and claude is killed.
    api = mock_api(
        [AGENT_ON_HAIKU, text("banana", usage=U3, for_model=HAIKU), text("late", usage=U2, delay=30)]
    )
    proc = _start_stalled_run(
        claude_bin, claude_home, api, task="ask a subagent", tool="Agent", requests=3, env=HAIKU_ENV
    )
    try:
        time.sleep(0.5)  # let claude write the subagent's message to its transcript
        (claude_pid,) = _children(proc.pid)
        os.kill(claude_pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    (rec,) = read_ledger(claude_home / "ledger.jsonl")
    assert rec["status"] == "crashed" and rec["cost_source"] == "estimate"
    assert any("transcript" in n for n in rec["notes"])
    assert set(rec["models"]) == {SONNET, HAIKU}
    _assert_tokens(rec, U1 + U3)
    assert rec["cost_usd"] == pytest.approx(list_cost(SONNET, U1) + list_cost(HAIKU, U3), rel=1e-9)


@pytest.mark.skipif(sys.platform != "linux", reason="finds claude's pid through /proc")
def test_claude_dies_with_a_sigkilled_claude_run_and_import_recovers_the_spend(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    """Issue 21: no orphan billing on: the kernel kills claude; its transcript still has the spend."""
    from claude_run.run.process import with_death_signal

    if with_death_signal([str(claude_bin)]) == [str(claude_bin)]:
        pytest.skip("no util-linux setpriv with --pdeathsig here")
    api = mock_api([BASH, text("too late", usage=U2, delay=30)])
    proc = _start_stalled_run(claude_bin, claude_home, api)
    try:
        (claude_pid,) = _children(proc.pid)
        # What import can recover is what Claude has flushed to its transcript: wait for that.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            b'"type":"assistant"' in t.read_bytes()
            for t in (claude_home / ".claude").glob("projects/*/*.jsonl")
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # claude-run gets no chance to stop claude itself
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{claude_pid}").exists() and time.monotonic() < deadline:
            state = Path(f"/proc/{claude_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
            time.sleep(0.05)
        alive = Path(f"/proc/{claude_pid}").exists()
        state = Path(f"/proc/{claude_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if alive else "gone"
        assert state in ("Z", "gone"), "claude outlived claude-run"
    finally:
        proc.kill()
        with contextlib.suppress(ProcessLookupError, UnboundLocalError):
            os.kill(claude_pid, signal.SIGKILL)
    assert read_ledger(claude_home / "ledger.jsonl") == []
    ledger = claude_home / "imported.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "claude_run",
            "ledger",
            "import",
            "--ledger",
            str(ledger),
            str(claude_home / ".claude"),
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (rec,) = read_ledger(ledger)
    _assert_tokens(rec, U1)  # the completed first request, found in Claude's own transcript
