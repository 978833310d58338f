#!/usr/bin/env python3
"""A fake ``claude`` CLI for fast unit tests: prints stream-json the way Claude Code 2.1.330 does.

Run it as ``python fake_claude.py ARGS...`` or through a wrapper from :func:`make_fake_claude`.
``--version`` prints ``2.1.330 (Claude Code)``.  Anything else runs the scenario named by
``$FAKE_CLAUDE_SCENARIO`` (default ``text``):

``text``          a one-request run: init, one assistant event, a result (:data:`TEXT_USAGE`)
``tool``          a two-request Bash tool run: ``num_turns: 2`` (:data:`TOOL_USAGES`)
``replay``        print the lines of ``$FAKE_CLAUDE_FILE`` (default: the ``text`` run) as they are,
                  ``$FAKE_CLAUDE_LINE_DELAY`` seconds apart, then exit ``$FAKE_CLAUDE_EXIT`` (default 0)
``noise``         the ``text`` run with non-JSON lines (blank, warnings, ANSI, broken JSON) between events
``huge``          init, one assistant event line of over 4 MB (:data:`HUGE_TEXT_BYTES` of text), a result
``torn``          init, an assistant event, then half a result line with no newline; exit 1
``crash``         init and the tool run's assistant events (usage, no result), then exit 134 (SIGABRT's
                  shell status); ``crash-signal`` dies by SIGSEGV instead
``hang``          init and one assistant event, then sleep; on SIGTERM/SIGINT write the signal's name
                  to ``$FAKE_CLAUDE_SIGNAL_FILE`` and exit 143/130
``ignore-term``   like ``hang`` but SIGTERM and SIGINT are only recorded (one name a line): the caller
                  must SIGKILL.  Both hang scenarios give up after ``$FAKE_CLAUDE_HANG_MAX`` s (600).
``stderr-flood``  the ``text`` run while writing :data:`STDERR_FLOOD_BYTES` (10 MB) to stderr
``echo-args``     write ``{"argv", "env", "cwd"}`` as JSON to ``$FAKE_CLAUDE_ARGS_FILE``, then the text run
``spend``         a long run: one request (:data:`REQUEST_USAGE`, about $0.05) every
                  ``$FAKE_CLAUDE_REQUEST_S`` s (0.4), ``$FAKE_CLAUDE_REQUESTS`` of them (10), stopping as the
                  real CLI does once its cost reaches ``--max-budget-usd`` (result ``error_max_budget_usd``,
                  exit 1); SIGINT or SIGTERM end it at once without a result; writes its argv and pid to
                  ``$FAKE_CLAUDE_ARGS_FILE``

The fixed usage figures are module constants, so tests can import this file to know what to expect.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

VERSION = "2.1.330"
MODEL = "claude-sonnet-4-5"
SESSION_ID = "0b5e6f3c-1d2a-4c8e-9f00-fa4ec1a0d3e1"
HUGE_TEXT_BYTES = 4 * 1024 * 1024 + 1000
STDERR_FLOOD_BYTES = 10 * 1024 * 1024

#: Environment variables ``echo-args`` reports: these names, and any with these prefixes.
ECHO_ENV_NAMES = ("HOME", "PATH", "PWD", "TMPDIR")
ECHO_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE", "OTEL_", "DISABLE_")

SCENARIOS = (
    "text",
    "tool",
    "replay",
    "noise",
    "huge",
    "torn",
    "crash",
    "crash-signal",
    "hang",
    "ignore-term",
    "stderr-flood",
    "echo-args",
    "spend",
)


class Usage(NamedTuple):
    """Usage of one API request: input, 5m/1h cache writes, cache reads, output tokens."""

    input: int
    cache_creation_5m: int
    cache_creation_1h: int
    cache_read: int
    output: int

    def cost(self) -> float:
        """claude-sonnet-4-5 list price in USD."""
        return (
            self.input * 3.0
            + self.output * 15.0
            + self.cache_creation_5m * 3.75
            + self.cache_creation_1h * 6.0
            + self.cache_read * 0.30
        ) / 1_000_000


#: The text run's one request (the figures of shared/samples/.../stream-text.jsonl).
TEXT_USAGE = Usage(48, 1513, 0, 4101, 12)
#: The tool run's two requests.
TOOL_USAGES = (Usage(85, 1526, 0, 4202, 19), Usage(122, 1000, 539, 4303, 26))
#: One request of the ``spend`` scenario: $0.049995 at list price.
REQUEST_USAGE = Usage(10000, 0, 0, 0, 1333)


# ---------------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------------


def init_event() -> dict[str, Any]:
    return {
        "type": "system",
        "subtype": "init",
        "cwd": os.getcwd(),
        "session_id": SESSION_ID,
        "tools": ["Task", "Bash", "Edit", "Read", "Write"],
        "mcp_servers": [],
        "model": MODEL,
        "permissionMode": "default",
        "apiKeySource": "ANTHROPIC_API_KEY",
        "claude_code_version": VERSION,
        "uuid": str(uuid.uuid4()),
    }


def assistant_event(usage: Usage, content: list[dict[str, Any]], *, final: bool = False) -> dict[str, Any]:
    """An assistant event as stream-json prints it: ``output_tokens`` is the message-start placeholder 1
    (``final``: the message's whole output instead, as a ``message_delta`` would tell)."""
    return {
        "type": "assistant",
        "message": {
            "id": f"msg_fake{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input,
                "cache_creation_input_tokens": usage.cache_creation_5m + usage.cache_creation_1h,
                "cache_read_input_tokens": usage.cache_read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": usage.cache_creation_5m,
                    "ephemeral_1h_input_tokens": usage.cache_creation_1h,
                },
                "output_tokens": usage.output if final else 1,
            },
            "context_management": None,
        },
        "parent_tool_use_id": None,
        "session_id": SESSION_ID,
        "uuid": str(uuid.uuid4()),
    }


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_result_event(tool_use_id: str, output: str) -> dict[str, Any]:
    return {
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {"tool_use_id": tool_use_id, "type": "tool_result", "content": output, "is_error": False}
            ],
        },
        "parent_tool_use_id": None,
        "session_id": SESSION_ID,
        "uuid": str(uuid.uuid4()),
    }


def result_event(usages: tuple[Usage, ...], result: str, *, num_turns: int) -> dict[str, Any]:
    """A successful result event whose ``usage``, ``modelUsage`` and cost sum ``usages``."""
    total = Usage(*(sum(column) for column in zip(*usages, strict=True)))
    cost = sum(u.cost() for u in usages)
    cache_creation = total.cache_creation_5m + total.cache_creation_1h
    model_usage = {
        "inputTokens": total.input,
        "outputTokens": total.output,
        "cacheReadInputTokens": total.cache_read,
        "cacheCreationInputTokens": cache_creation,
        "webSearchRequests": 0,
        "costUSD": cost,
        "contextWindow": 200000,
        "maxOutputTokens": 32000,
        "cacheCreationEphemeral5mInputTokens": total.cache_creation_5m,
        "cacheCreationEphemeral1hInputTokens": total.cache_creation_1h,
    }
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "api_error_status": None,
        "duration_ms": 480,
        "duration_api_ms": 98,
        "num_turns": num_turns,
        "result": result,
        "stop_reason": "end_turn",
        "session_id": SESSION_ID,
        "total_cost_usd": cost,
        "usage": {
            "input_tokens": total.input,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": total.cache_read,
            "output_tokens": total.output,
            "cache_creation": {
                "ephemeral_1h_input_tokens": total.cache_creation_1h,
                "ephemeral_5m_input_tokens": total.cache_creation_5m,
            },
        },
        "modelUsage": {MODEL: model_usage},
        "permission_denials": [],
        "terminal_reason": "completed",
        "uuid": str(uuid.uuid4()),
    }


def text_run(answer: str = "fake answer") -> list[dict[str, Any]]:
    """The events of a one-request text run."""
    return [
        init_event(),
        assistant_event(TEXT_USAGE, [text_block(answer)]),
        result_event((TEXT_USAGE,), answer, num_turns=1),
    ]


def tool_run() -> list[dict[str, Any]]:
    """The events of a two-request Bash tool run."""
    tool_id = "toolu_fake0000000000000001"
    call = {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": "echo tool-ran"}}
    return [
        init_event(),
        assistant_event(TOOL_USAGES[0], [call]),
        tool_result_event(tool_id, "tool-ran"),
        assistant_event(TOOL_USAGES[1], [text_block("done")]),
        result_event(TOOL_USAGES, "done", num_turns=2),
    ]


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------


def emit(line: str, *, newline: bool = True) -> None:
    sys.stdout.write(line + ("\n" if newline else ""))
    sys.stdout.flush()


def emit_all(events: list[dict[str, Any]]) -> None:
    for event in events:
        emit(dumps(event))


def noise_lines() -> Iterator[str]:
    yield ""
    yield "Warning: this is not JSON"
    yield "\x1b[33mcolored\x1b[0m log line"
    yield '{"type": "assistant", broken'
    yield "[1, 2, 3]"
    yield "   "


def run_replay() -> int:
    path = os.environ.get("FAKE_CLAUDE_FILE")
    lines = Path(path).read_text().splitlines() if path else [dumps(e) for e in text_run()]
    delay = float(os.environ.get("FAKE_CLAUDE_LINE_DELAY") or 0)
    for line in lines:
        emit(line)
        if delay:
            time.sleep(delay)
    return int(os.environ.get("FAKE_CLAUDE_EXIT") or 0)


def run_noise() -> int:
    noise = noise_lines()
    for event in text_run():
        emit(next(noise, "noise"))
        emit(dumps(event))
        emit(next(noise, "noise"))
    return 0


def run_huge() -> int:
    big = "x" * HUGE_TEXT_BYTES
    emit(dumps(init_event()))
    emit(dumps(assistant_event(TEXT_USAGE, [text_block(big)])))
    emit(dumps(result_event((TEXT_USAGE,), "huge answer", num_turns=1)))
    return 0


def run_torn() -> int:
    init, assistant, result = text_run()
    emit(dumps(init))
    emit(dumps(assistant))
    line = dumps(result)
    emit(line[: len(line) // 2], newline=False)
    return 1


def run_crash(*, by_signal: bool) -> int:
    events = tool_run()
    emit_all(events[:4])  # init, tool_use, tool_result, text: two requests' usage, no result
    if by_signal:
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)  # the signal lands before this ends
    sys.stderr.write("claude: fatal error, aborting\n")
    sys.stderr.flush()
    os._exit(134)


def run_hang(*, ignore_term: bool) -> int:
    marker = os.environ.get("FAKE_CLAUDE_SIGNAL_FILE")

    def record(signum: int) -> None:
        if marker:
            with open(marker, "a") as f:
                f.write(signal.Signals(signum).name + "\n")

    def on_signal(signum: int, frame: object) -> None:
        record(signum)
        if not ignore_term:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    init, assistant, _ = text_run()
    emit(dumps(init))
    emit(dumps(assistant))
    deadline = time.monotonic() + float(os.environ.get("FAKE_CLAUDE_HANG_MAX") or 600)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return 3


def run_stderr_flood() -> int:
    chunk = ("E" * 1023 + "\n").encode()
    events = text_run()
    per_event = STDERR_FLOOD_BYTES // len(chunk) // len(events)
    written = 0
    for event in events:
        for _ in range(per_event):
            sys.stderr.buffer.write(chunk)
            written += len(chunk)
        sys.stderr.flush()
        emit(dumps(event))
    sys.stderr.buffer.write(b"E" * max(0, STDERR_FLOOD_BYTES - written))
    sys.stderr.flush()
    return 0


def run_echo_args() -> int:
    env = {
        name: value
        for name, value in os.environ.items()
        if name in ECHO_ENV_NAMES or name.startswith(ECHO_ENV_PREFIXES)
    }
    report = {"argv": sys.argv[1:], "env": env, "cwd": os.getcwd()}
    target = os.environ.get("FAKE_CLAUDE_ARGS_FILE")
    if target:
        Path(target).write_text(json.dumps(report, indent=2))
    emit_all(text_run())
    return 0


def run_spend(argv: list[str]) -> int:
    target = os.environ.get("FAKE_CLAUDE_ARGS_FILE")
    if target:
        Path(target).write_text(json.dumps({"argv": argv, "pid": os.getpid()}))
    cap = None
    for i, arg in enumerate(argv):
        if arg == "--max-budget-usd" and i + 1 < len(argv):
            cap = float(argv[i + 1])
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: os._exit(128 + signum))
    requests = int(os.environ.get("FAKE_CLAUDE_REQUESTS") or 10)
    delay = float(os.environ.get("FAKE_CLAUDE_REQUEST_S") or 0.4)
    emit(dumps(init_event()))
    done: list[Usage] = []
    for n in range(requests):
        time.sleep(delay)  # the request in flight
        emit(dumps(assistant_event(REQUEST_USAGE, [text_block(f"step {n + 1}")], final=True)))
        done.append(REQUEST_USAGE)
        if cap is not None and sum(u.cost() for u in done) >= cap and n + 1 < requests:
            stopped = result_event(tuple(done), "", num_turns=len(done))
            stopped.update({"subtype": "error_max_budget_usd", "is_error": True, "terminal_reason": None})
            del stopped["result"]
            emit(dumps(stopped))
            return 1
    emit(dumps(result_event(tuple(done), "spent", num_turns=len(done))))
    return 0


def main(argv: list[str]) -> int:
    if "--version" in argv or "-v" in argv:
        emit(f"{VERSION} (Claude Code)")
        return 0
    scenario = os.environ.get("FAKE_CLAUDE_SCENARIO") or "text"
    if scenario == "text":
        emit_all(text_run())
        return 0
    if scenario == "tool":
        emit_all(tool_run())
        return 0
    if scenario == "replay":
        return run_replay()
    if scenario == "noise":
        return run_noise()
    if scenario == "huge":
        return run_huge()
    if scenario == "torn":
        return run_torn()
    if scenario in ("crash", "crash-signal"):
        return run_crash(by_signal=scenario == "crash-signal")
    if scenario in ("hang", "ignore-term"):
        return run_hang(ignore_term=scenario == "ignore-term")
    if scenario == "stderr-flood":
        return run_stderr_flood()
    if scenario == "echo-args":
        return run_echo_args()
    if scenario == "spend":
        return run_spend(argv)
    sys.stderr.write(f"fake_claude: unknown FAKE_CLAUDE_SCENARIO {scenario!r}\n")
    return 2


# ---------------------------------------------------------------------------------------------------------
# Wrapper for tests
# ---------------------------------------------------------------------------------------------------------


def make_fake_claude(
    directory: Path,
    behaviour: str = "text",
    *,
    file: Path | None = None,
    exit_code: int | None = None,
    signal_file: Path | None = None,
    args_file: Path | None = None,
    line_delay: float | None = None,
    hang_max: float | None = None,
    requests: int | None = None,
    request_s: float | None = None,
    name: str = "claude",
) -> Path:
    """Write an executable ``directory/name`` shell wrapper running this script as ``behaviour``.

    The settings are baked into the wrapper (as ``FAKE_CLAUDE_*`` exports), so they hold even when
    the code under test hands the child a clean environment; they override the caller's env.
    """
    if behaviour not in SCENARIOS:
        raise ValueError(f"unknown fake claude behaviour {behaviour!r}; one of {', '.join(SCENARIOS)}")
    settings: dict[str, str] = {"FAKE_CLAUDE_SCENARIO": behaviour}
    optional = {
        "FAKE_CLAUDE_FILE": file,
        "FAKE_CLAUDE_EXIT": exit_code,
        "FAKE_CLAUDE_SIGNAL_FILE": signal_file,
        "FAKE_CLAUDE_ARGS_FILE": args_file,
        "FAKE_CLAUDE_LINE_DELAY": line_delay,
        "FAKE_CLAUDE_HANG_MAX": hang_max,
        "FAKE_CLAUDE_REQUESTS": requests,
        "FAKE_CLAUDE_REQUEST_S": request_s,
    }
    settings.update({key: str(value) for key, value in optional.items() if value is not None})
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in settings.items())
    script = Path(__file__).resolve()
    wrapper = directory / name
    wrapper.write_text(
        f'#!/bin/sh\n{exports}exec {shlex.quote(sys.executable)} {shlex.quote(str(script))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
