"""Issue 15 end to end: after `claude-run install`, a plain `claude` TUI session (not launched by
claude-run) shows claude-run's status line and lands in the ledger once, from its SessionEnd hook."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claude_run.query.records import iter_selected
from support.claude_cli import claude_env, write_claude_json
from support.mock_anthropic import MockApiFactory, text
from test_e2e_run import SONNET, U1, U2, assert_tokens_equal_served, claude_run, read_ledger

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (apt-get install tmux)"),
]

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(home: Path, api_url: str, ledger: Path) -> dict[str, str]:
    env = claude_env(home, api_url)
    env.update({"PYTHONPATH": SRC, "CLAUDE_RUN_LEDGER": str(ledger), "NO_COLOR": "1"})
    return env


def _claude_run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Tmux:
    def __init__(self, home: Path) -> None:
        self.base = ["tmux", "-S", str(home / "tmux.sock")]

    def start(self, cwd: Path, command: str) -> None:
        subprocess.run(
            [*self.base, "new-session", "-d", "-x", "160", "-y", "40", "-c", str(cwd), command], check=True
        )

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p"], capture_output=True, text=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.base, "send-keys", *(["-l"] if literal else []), *keys], check=True)

    def wait(self, needle: str, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.screen():
            assert time.monotonic() < deadline, f"{needle!r} never appeared on screen:\n{self.screen()}"
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def _wait_records(ledger: Path, n: int, timeout: float = 40) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while len(read_ledger(ledger)) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return read_ledger(ledger)


def test_plain_claude_session_is_recorded_once_by_the_installed_hook(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([text("hello from the TUI", usage=U2)])
    project = claude_home / "project"
    write_claude_json(claude_home, project)
    ledger = claude_home / "data" / "ledger.jsonl"
    env = _env(claude_home, api.url, ledger)
    installed = _claude_run(env, "install", cwd=project)
    assert installed.returncode == 0, installed.stderr
    settings = json.loads((claude_home / ".claude" / "settings.json").read_text())
    assert "statusline" in settings["statusLine"]["command"]

    tmux = Tmux(claude_home)
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    tmux.start(project, f"env -i {assignments} {shlex.quote(str(claude_bin))} --model {SONNET}")
    try:
        tmux.wait("\u276f")  # the prompt box
        tmux.wait("session $0.00 · today $0.00")  # claude-run's status line, before any spend
        tmux.keys("say hello", literal=True)
        time.sleep(0.3)
        tmux.keys("Enter")
        tmux.wait("hello from the TUI")
        tmux.wait(f"session ${api.list_cost():.4f}")  # the status line follows the session's cost
        tmux.keys("/exit", literal=True)
        time.sleep(0.3)
        tmux.keys("Enter")
        records = _wait_records(ledger, 1)
    finally:
        tmux.kill()
    (rec,) = records
    assert rec["mode"] == "interactive" and rec["source"] == "hook" and rec["cost_source"] == "claude"
    assert rec["project"] == "project" and rec["session_id"]
    assert_tokens_equal_served(rec, api)

    # A later import and a second call of the hook leave one record that counts.
    imported = _claude_run(env, "ledger", "import", cwd=project)
    assert imported.returncode == 0, imported.stderr
    payload = json.dumps({"session_id": rec["session_id"], "cwd": str(project), "reason": "other"})
    again = subprocess.run(
        [sys.executable, "-m", "claude_run", "hook", "session-end", "--foreground"],
        input=payload,
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    after = read_ledger(ledger)
    assert len(list(iter_selected(ledger))) == 1 and len(after) == 1


def test_a_tracked_run_with_the_hook_installed_is_recorded_once(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    """`claude-run --track` records its session itself; the hook Claude runs at its end stands aside."""
    api = mock_api([text("tracked answer", usage=U1)])
    write_claude_json(claude_home, claude_home / "project")
    env = _env(claude_home, api.url, claude_home / "ledger.jsonl")
    assert _claude_run(env, "install", "--session-end", cwd=claude_home).returncode == 0
    proc, _ = claude_run(
        claude_bin, claude_home, api, "say hi", env={"CLAUDE_RUN_LEDGER": str(claude_home / "ledger.jsonl")}
    )
    assert proc.returncode == 0, proc.stderr
    time.sleep(2)  # the detached hook, had it not stood aside, would have written by now
    records = read_ledger(claude_home / "ledger.jsonl")
    assert [r["source"] for r in records] == ["run"]
    log = claude_home / "ledger.jsonl.hook.log"
    assert not log.exists() or "recorded" not in log.read_text()


def test_an_untracked_p_run_is_recorded_by_the_hook_as_non_interactive(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    """Claude runs SessionEnd hooks in -p runs too: what makes the test above stand for something."""
    api = mock_api([text("untracked answer", usage=U2)])
    write_claude_json(claude_home, claude_home / "project")
    ledger = claude_home / "ledger.jsonl"
    env = _env(claude_home, api.url, ledger)
    assert _claude_run(env, "install", "--session-end", cwd=claude_home).returncode == 0
    run = _claude_run(
        env,
        "--claude-bin",
        str(claude_bin),
        "--no-track",
        "say hi",
        "--",
        "--model",
        SONNET,
        cwd=claude_home / "project",
    )
    assert run.returncode == 0, run.stderr
    (rec,) = _wait_records(ledger, 1)
    assert rec["mode"] == "non-interactive" and rec["source"] == "hook"
    assert_tokens_equal_served(rec, api)
