"""Finding and running the real Claude Code CLI against :class:`~support.mock_anthropic.MockAnthropic`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .mock_anthropic import Usage

#: The Claude Code release the harness was verified against.
CLAUDE_VERSION = "2.1.330"

#: The API key the tests hand the CLI (any value works against the mock).
TEST_API_KEY = "sk-ant-api03-mock-" + "0123456789abcdefghijklmnopqrstuvwxyz"

REPO_ROOT = Path(__file__).resolve().parents[2]
_NATIVE = Path("node_modules/@anthropic-ai/claude-code-linux-x64/claude")

#: Where to look for the binary after ``$CLAUDE_RUN_TEST_CLAUDE_BIN``: the repo's own node_modules
#: (``.ci/run`` installs it there), then the developer machine's scratch install.
BIN_CANDIDATES: tuple[Path, ...] = (REPO_ROOT / _NATIVE, Path("/tmp/npmclaude") / _NATIVE)

#: The ``-p`` arguments every e2e run uses, after the prompt.
STREAM_ARGS: tuple[str, ...] = ("--output-format", "stream-json", "--verbose")


def find_claude_bin() -> Path | None:
    """The real ``claude`` executable: ``$CLAUDE_RUN_TEST_CLAUDE_BIN``, then :data:`BIN_CANDIDATES`.

    An env var naming a missing file yields ``None`` (no silent fallback to another binary).
    """
    override = os.environ.get("CLAUDE_RUN_TEST_CLAUDE_BIN")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for path in BIN_CANDIDATES:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def claude_env(home: Path, api_url: str, *, api_key: str = TEST_API_KEY, **extra: str) -> dict[str, str]:
    """A clean environment for the CLI: PATH, HOME, the ANTHROPIC_* vars pointing at the mock.

    Nothing else is inherited: no ``CLAUDECODE`` (it makes the CLI act as a nested session), no
    ``OTEL_*``, no real credentials.  ``extra`` adds or overrides variables.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "ANTHROPIC_BASE_URL": api_url,
        "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir:
        env["TMPDIR"] = tmpdir
    env.update(extra)
    return env


def write_claude_json(home: Path, cwd: Path, api_key: str = TEST_API_KEY) -> Path:
    """Write ``$HOME/.claude.json`` so the interactive TUI starts without any dialog.

    Marks onboarding done, approves ``api_key`` (Claude Code remembers its last 20 characters) and
    trusts ``cwd``.  Merges into an existing file.  Returns the file's path.
    """
    path = home / ".claude.json"
    config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    config["hasCompletedOnboarding"] = True
    approved = config.setdefault("customApiKeyResponses", {}).setdefault("approved", [])
    if api_key[-20:] not in approved:
        approved.append(api_key[-20:])
    config.setdefault("customApiKeyResponses", {}).setdefault("rejected", [])
    project = config.setdefault("projects", {}).setdefault(str(cwd.resolve()), {})
    project["hasTrustDialogAccepted"] = True
    project.setdefault("allowedTools", [])
    path.write_text(json.dumps(config, indent=2))
    return path


def transcript_path(home: Path, cwd: Path, session_id: str) -> Path:
    """Where Claude Code writes a session's transcript: ``~/.claude/projects/<cwd>/<session>.jsonl``.

    ``<cwd>`` is the resolved working directory with every character other than ``[A-Za-z0-9]``
    replaced by ``-`` (``/tmp/a_b/project`` -> ``-tmp-a-b-project``).
    """
    project = re.sub(r"[^A-Za-z0-9]", "-", str(cwd.resolve()))
    return home / ".claude" / "projects" / project / f"{session_id}.jsonl"


@dataclass
class ClaudeRun:
    """Outcome of one ``claude -p`` run."""

    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]
    """Every stdout line that parsed as a JSON object."""

    @property
    def result(self) -> dict[str, Any]:
        """The last ``result`` event (fails the test when there is none)."""
        results = [e for e in self.events if e.get("type") == "result"]
        assert results, f"no result event; rc={self.returncode} stderr={self.stderr[-2000:]!r}"
        return results[-1]

    def of_type(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        """Events whose ``type`` is ``kind`` (and ``subtype``, when given)."""
        return [e for e in self.events if e.get("type") == kind and subtype in (None, e.get("subtype"))]

    def model_usage(self) -> dict[str, Usage]:
        """The result event's ``modelUsage`` token figures, per model."""
        return {model: Usage.from_model_usage(entry) for model, entry in self.result["modelUsage"].items()}


def run_claude(
    claude_bin: Path,
    prompt: str,
    *,
    home: Path,
    api_url: str,
    cwd: Path | None = None,
    args: Sequence[str] = (),
    model: str | None = "claude-sonnet-4-5",
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> ClaudeRun:
    """Run ``claude -p PROMPT --output-format stream-json --verbose [--model M] ARGS`` and parse stdout."""
    command = [str(claude_bin), "-p", prompt, *STREAM_ARGS]
    if model is not None:
        command += ["--model", model]
    command += list(args)
    proc = subprocess.run(
        command,
        cwd=cwd or home,
        env=claude_env(home, api_url, **(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    events: list[dict[str, Any]] = []
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return ClaudeRun(proc.returncode, proc.stdout, proc.stderr, events)
