"""Tests of the test harness: the mock Messages API, the real CLI against it, and the fake ``claude``."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support import fake_claude
from support.claude_cli import (
    TEST_API_KEY,
    ClaudeRun,
    claude_env,
    find_claude_bin,
    run_claude,
    transcript_path,
    write_claude_json,
)
from support.fake_claude import make_fake_claude
from support.mock_anthropic import (
    NO_RETRY,
    MockAnthropic,
    MockApiFactory,
    Usage,
    error,
    invalid_request,
    list_cost,
    overloaded,
    server_error,
    text,
    tool_use,
)

SONNET = "claude-sonnet-4-5"
HAIKU = "claude-haiku-4-5"
U1 = Usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19)
U2 = Usage(input=122, cache_creation_5m=1000, cache_creation_1h=539, cache_read=4303, output=26)
U3 = Usage(input=57, cache_creation_1h=300, cache_read=700, output=15)
BASH = tool_use("Bash", {"command": "echo tool-ran", "description": "print a word"}, usage=U1)


# ---------------------------------------------------------------------------------------------------------
# A minimal client for the mock
# ---------------------------------------------------------------------------------------------------------


def post(
    api: MockAnthropic,
    body: dict[str, Any],
    *,
    path: str = "/v1/messages?beta=true",
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        if own:
            conn.close()


def sse_events(payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in payload.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def ask(model: str = SONNET, *, stream: bool = True) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }


# ---------------------------------------------------------------------------------------------------------
# The mock alone
# ---------------------------------------------------------------------------------------------------------


def test_stream_follows_the_messages_api_event_order(mock_api: MockApiFactory) -> None:
    api = mock_api([text("hello there", usage=U2)])
    status, headers, payload = post(api, ask())
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = sse_events(payload)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["model"] == SONNET
    assert start["usage"] == {
        "input_tokens": 122,
        "cache_creation_input_tokens": 1539,
        "cache_read_input_tokens": 4303,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 539},
        "output_tokens": 1,
    }
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "hello there"}
    assert events[5][1]["delta"]["stop_reason"] == "end_turn"
    assert events[5][1]["usage"] == {"output_tokens": 26}


def test_full_delta_usage_repeats_input_figures(mock_api: MockApiFactory) -> None:
    api = mock_api([text(usage=U2)], delta_usage="full")
    delta = dict(sse_events(post(api, ask())[2]))["message_delta"]
    assert delta["usage"] == {
        "input_tokens": 122,
        "cache_creation_input_tokens": 1539,
        "cache_read_input_tokens": 4303,
        "output_tokens": 26,
    }


def test_tool_use_streams_input_json_in_pieces(mock_api: MockApiFactory) -> None:
    api = mock_api([BASH])
    events = sse_events(post(api, ask())[2])
    block = next(e for name, e in events if name == "content_block_start")["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "Bash" and block["id"].startswith("toolu_")
    pieces = [e["delta"]["partial_json"] for name, e in events if name == "content_block_delta"]
    assert len(pieces) == 2
    assert json.loads("".join(pieces)) == {"command": "echo tool-ran", "description": "print a word"}
    assert dict(events)["message_delta"]["delta"]["stop_reason"] == "tool_use"


def test_script_is_served_in_order_and_recorded(mock_api: MockApiFactory) -> None:
    api = mock_api(
        [text("one", usage=U1), text("two", usage=U2, model=HAIKU), server_error(), text(usage=U3)]
    )
    post(api, ask())
    status, _, payload = post(api, ask(stream=False))
    assert status == 200
    message = json.loads(payload)
    assert message["model"] == HAIKU and message["content"] == [{"type": "text", "text": "two"}]
    assert message["usage"]["output_tokens"] == 26
    status, _, payload = post(api, ask())
    assert status == 500
    assert json.loads(payload) == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal server error"},
    }
    post(api, ask("claude-opus-4-1"))

    assert [(s.model, s.usage, s.streamed, s.complete) for s in api.served] == [
        (SONNET, U1, True, True),
        (HAIKU, U2, False, True),
        ("claude-opus-4-1", U3, True, True),
    ]
    assert [s.request_index for s in api.served] == [0, 1, 3]
    assert api.usage_by_model() == {SONNET: U1, HAIKU: U2, "claude-opus-4-1": U3}
    assert api.total_usage() == U1 + U2 + U3
    first = api.requests[0]
    assert (first.method, first.path, first.query, first.model, first.status) == (
        "POST",
        "/v1/messages",
        {"beta": ["true"]},
        SONNET,
        200,
    )
    assert first.streamed and first.completed and first.finished_at is not None
    assert first.finished_at >= first.received_at
    assert api.remaining == 0


def test_error_reply_carries_status_body_and_headers(mock_api: MockApiFactory) -> None:
    api = mock_api([overloaded(headers=NO_RETRY), error(429, "rate_limit_error", "slow down")])
    status, headers, payload = post(api, ask())
    assert status == 529 and headers["x-should-retry"] == "false"
    assert json.loads(payload)["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    status, _, payload = post(api, ask())
    assert status == 429 and json.loads(payload)["error"]["type"] == "rate_limit_error"
    assert api.served == []


def test_when_done_error_and_repeat(mock_api: MockApiFactory) -> None:
    api = mock_api([text(usage=U1)])
    post(api, ask())
    status, headers, payload = post(api, ask())
    assert status == 400 and headers["x-should-retry"] == "false"
    assert "script exhausted" in json.loads(payload)["error"]["message"]

    api = mock_api([text(usage=U1)], when_done="repeat")
    for _ in range(3):
        assert post(api, ask())[0] == 200
    assert api.usage_by_model() == {SONNET: U1 + U1 + U1}


def test_for_model_routes_replies(mock_api: MockApiFactory) -> None:
    api = mock_api([text("for haiku", usage=U3, for_model=HAIKU), text("for anyone", usage=U1)])
    first = json.loads(post(api, ask(SONNET, stream=False))[2])
    second = json.loads(post(api, ask(HAIKU, stream=False))[2])
    assert first["content"][0]["text"] == "for anyone"
    assert second["content"][0]["text"] == "for haiku"


def test_other_routes(mock_api: MockApiFactory) -> None:
    api = mock_api([])
    status, _, payload = post(api, ask(), path="/v1/messages/count_tokens")
    assert status == 200 and json.loads(payload)["input_tokens"] > 0
    status, _, payload = post(api, {}, path="/v1/nothing")
    assert status == 404 and json.loads(payload)["error"]["type"] == "not_found_error"
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    conn.request("HEAD", "/api/hello")
    assert conn.getresponse().status == 200
    conn.close()
    assert [(r.method, r.path, r.status) for r in api.requests] == [
        ("POST", "/v1/messages/count_tokens", 200),
        ("POST", "/v1/nothing", 404),
        ("HEAD", "/api/hello", 200),
    ]
    assert api.messages_requests() == [] and api.served == []


def test_keep_alive_serves_many_requests_on_one_connection(mock_api: MockApiFactory) -> None:
    api = mock_api([text(usage=U1)], when_done="repeat")
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    for stream in (True, False, True):
        assert post(api, ask(stream=stream), conn=conn)[0] == 200
    conn.close()
    assert len(api.served) == 3


def test_concurrent_requests(mock_api: MockApiFactory) -> None:
    api = mock_api([text(usage=Usage(input=i, output=1), delay=0.2) for i in range(1, 9)])
    threads = [threading.Thread(target=post, args=(api, ask())) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.5  # served in parallel, not 8 x 0.2 s in a row
    assert sorted(s.usage.input for s in api.served) == list(range(1, 9))


def test_close_cuts_delays_and_stalls_short() -> None:
    api = MockAnthropic([text(usage=U1, delay=60), text(usage=U2, stall=60)]).start()
    results: list[BaseException | tuple[int, dict[str, str], bytes]] = []

    def call() -> None:
        try:
            results.append(post(api, ask()))
        except (OSError, http.client.HTTPException) as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    api.close()
    for thread in threads:
        thread.join(timeout=5)
    assert time.monotonic() - started < 3
    assert len(results) == 2
    # The stalled stream had sent message_start: its input side counts as served, output as 1.
    assert [(s.usage, s.complete) for s in api.served] == [(Usage(122, 1000, 539, 4303, 1), False)]
    api.close()  # idempotent


def test_drop_closes_the_stream_after_message_start(mock_api: MockApiFactory) -> None:
    api = mock_api([text(usage=U1, drop=True)])
    with pytest.raises(http.client.IncompleteRead):
        post(api, ask())
    record = api.requests[0]
    assert record.status == 200 and not record.completed
    assert api.served[0].usage == Usage(85, 1526, 0, 4202, 1) and not api.served[0].complete


def test_list_cost_matches_the_recorded_sample() -> None:
    # shared/samples/claude-code-2.1.330/stream-text.jsonl: total_cost_usd 0.00722805
    usage = Usage(input=48, cache_creation_5m=1513, cache_read=4101, output=12)
    assert list_cost(SONNET, usage) == pytest.approx(0.00722805, rel=1e-12)
    assert list_cost("claude-haiku-4-5-20251001", usage) == list_cost(HAIKU, usage)
    assert Usage.from_model_usage(usage.model_usage_json()) == usage


# ---------------------------------------------------------------------------------------------------------
# The real CLI against the mock
# ---------------------------------------------------------------------------------------------------------


def claude(claude_bin: Path, claude_home: Path, api: MockAnthropic, *args: str, **options: Any) -> ClaudeRun:
    return run_claude(
        claude_bin,
        "say hello",
        home=claude_home,
        api_url=api.url,
        cwd=claude_home / "project",
        args=args,
        **options,
    )


def assert_matches_served(run: ClaudeRun, api: MockAnthropic) -> None:
    """The result's modelUsage equals the usage the mock served, per model; cost is list price."""
    assert run.model_usage() == api.usage_by_model()
    assert run.result["total_cost_usd"] == pytest.approx(api.list_cost(), rel=1e-9, abs=1e-12)
    for model, entry in run.result["modelUsage"].items():
        assert entry["costUSD"] == pytest.approx(list_cost(model, api.usage_by_model()[model]), rel=1e-9)


@pytest.mark.e2e
def test_cli_text_run(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([text("mock answer 1", usage=U2)])
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    result = run.result
    assert (result["subtype"], result["is_error"], result["num_turns"]) == ("success", False, 1)
    assert result["result"] == "mock answer 1"
    assert len(api.messages_requests()) == 1 and api.requests[0].query == {"beta": ["true"]}
    assert_matches_served(run, api)
    assert result["total_cost_usd"] == pytest.approx(0.0090309, rel=1e-9)
    # stream-json assistant events carry message_start usage: output_tokens is the placeholder 1.
    assert [e["message"]["usage"]["output_tokens"] for e in run.of_type("assistant")] == [1]


@pytest.mark.e2e
def test_cli_tool_run(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([BASH, text("done", usage=U2)])
    run = claude(claude_bin, claude_home, api, "--allowedTools", "Bash")
    assert run.returncode == 0, run.stderr
    assert run.result["num_turns"] == 2 and run.result["result"] == "done"
    assert len(api.messages_requests()) == 2
    tool_result = api.requests[1].body["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["content"].startswith("tool-ran")
    assert_matches_served(run, api)
    assert run.result["total_cost_usd"] == pytest.approx(0.016554, rel=1e-9)


@pytest.mark.e2e
def test_cli_tool_run_transcript(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([BASH, text("done", usage=U2)])
    run = claude(claude_bin, claude_home, api, "--allowedTools", "Bash")
    session = run.result["session_id"]
    transcript = transcript_path(claude_home, claude_home / "project", session)
    assert transcript.parent.name.startswith("-tmp-") and "_" not in transcript.parent.name
    entries = [json.loads(line) for line in transcript.read_text().splitlines()]
    # The transcript keeps each message's final usage (output_tokens included), unlike stream-json.
    usages = [e["message"]["usage"] for e in entries if e["type"] == "assistant"]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usages] == [(85, 19), (122, 26)]
    cost_state = next(e for e in entries if e["type"] == "cost-state")
    assert cost_state["totalCostUSD"] == pytest.approx(run.result["total_cost_usd"])
    assert Usage.from_model_usage(cost_state["modelUsage"][SONNET]) == U1 + U2


@pytest.mark.e2e
def test_cli_plain_400_is_retried_without_betas(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([invalid_request("bad thing")], when_done="repeat")
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 1
    result = run.result
    assert (result["is_error"], result["api_error_status"], result["subtype"]) == (True, 400, "success")
    assert result["result"] == "API Error: 400 bad thing"
    assert result["modelUsage"] == {} and result["total_cost_usd"] == 0
    # Claude Code 2.1.330 retries a plain 400 five times, dropping beta features each time.
    assert len(api.messages_requests()) == 6


@pytest.mark.e2e
def test_cli_prompt_too_long_400(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([invalid_request("prompt is too long: 250000 tokens > 200000 maximum")])
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 1
    assert (run.result["is_error"], run.result["api_error_status"]) == (True, 400)
    assert run.result["terminal_reason"] == "prompt_too_long"
    assert len(api.messages_requests()) == 1


@pytest.mark.e2e
def test_cli_overloaded_without_retry(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([overloaded(headers=NO_RETRY)])
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 1
    assert (run.result["is_error"], run.result["api_error_status"]) == (True, 529)
    assert len(api.messages_requests()) == 1


@pytest.mark.e2e
def test_cli_retries_a_500_then_counts_the_success(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([server_error(), text("ok", usage=U1)])
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 0
    retry = run.of_type("system", "api_retry")
    assert [(e["attempt"], e["error_status"]) for e in retry] == [(1, 500)]
    assert_matches_served(run, api)


@pytest.mark.e2e
def test_cli_budget_stop(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([BASH, text("done", usage=U2)])
    run = claude(claude_bin, claude_home, api, "--allowedTools", "Bash", "--max-budget-usd", "0.0001")
    assert run.returncode == 1
    result = run.result
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_max_budget_usd",
        True,
        "budget_exhausted",
    )
    assert len(api.messages_requests()) == 1
    assert_matches_served(run, api)
    # Trap: on a budget stop the result's `usage` is all zeros while modelUsage has the real figures.
    assert result["usage"]["input_tokens"] == 0


@pytest.mark.e2e
def test_cli_subagent_on_another_model(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    agent = tool_use(
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
    api = mock_api([agent, text("banana", usage=U3, for_model=HAIKU), text("it said banana", usage=U2)])
    run = claude(
        claude_bin, claude_home, api, "--allowedTools", "Agent", env={"ANTHROPIC_DEFAULT_HAIKU_MODEL": HAIKU}
    )
    assert run.returncode == 0, run.stderr
    assert [r.model for r in api.messages_requests()] == [SONNET, HAIKU, SONNET]
    assert run.result["subagent_stats"]["spawned"] == 1
    assert_matches_served(run, api)
    # Trap: the result's `usage` covers the main thread only, and the subagent's assistant message
    # does not appear on stdout at all; only modelUsage and total_cost_usd include it.
    assert run.result["usage"]["input_tokens"] == U1.input + U2.input
    assert all(e["message"]["model"] == SONNET for e in run.of_type("assistant"))


@pytest.mark.e2e
def test_cli_fallback_model_after_overload(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([BASH, overloaded(), overloaded(), overloaded(), text("after fallback", usage=U2)])
    run = claude(claude_bin, claude_home, api, "--allowedTools", "Bash", "--fallback-model", HAIKU)
    assert run.returncode == 0, run.stderr
    assert [r.model for r in api.messages_requests()] == [SONNET, SONNET, SONNET, SONNET, HAIKU]
    fallback = run.of_type("system", "model_fallback")
    assert [(e["original_model"], e["fallback_model"]) for e in fallback] == [(SONNET, HAIKU)]
    assert_matches_served(run, api)
    assert set(run.result["modelUsage"]) == {SONNET, HAIKU}


@pytest.mark.e2e
def test_cli_partial_messages(claude_bin: Path, claude_home: Path, mock_api: MockApiFactory) -> None:
    api = mock_api([text("hi", usage=U2)])
    run = claude(claude_bin, claude_home, api, "--include-partial-messages")
    deltas = [e["event"] for e in run.of_type("stream_event") if e["event"]["type"] == "message_delta"]
    assert [d["usage"]["output_tokens"] for d in deltas] == [26]
    assert_matches_served(run, api)


@pytest.mark.e2e
def test_cli_does_not_count_a_dropped_stream(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    api = mock_api([text("cut", usage=U1, drop=True, stall=0.3), text("whole", usage=U2)])
    run = claude(claude_bin, claude_home, api)
    assert run.returncode == 0
    assert len(run.of_type("system", "api_retry")) == 1
    assert [s.complete for s in api.served] == [False, True]
    # The dropped message's input tokens (billed by a real API) are missing from modelUsage.
    assert run.model_usage() == {SONNET: U2}


@pytest.mark.e2e
def test_cli_version(claude_bin: Path, tmp_path: Path) -> None:
    env = claude_env(tmp_path, "http://127.0.0.1:9")
    out = subprocess.run([claude_bin, "--version"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2.1.330 (Claude Code)"


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_cli_tui_starts_without_dialogs(
    claude_bin: Path, claude_home: Path, mock_api: MockApiFactory
) -> None:
    """With write_claude_json, the interactive TUI takes a prompt at once (no onboarding/trust dialog)."""
    project = claude_home / "project"
    write_claude_json(claude_home, project)
    api = mock_api([text("tui answer", usage=U1)])
    assignments = [shlex.quote(f"{k}={v}") for k, v in claude_env(claude_home, api.url).items()]
    command = " ".join(["env", "-i", *assignments, shlex.quote(str(claude_bin)), "--model", SONNET])
    tmux = ["tmux", "-S", str(claude_home / "tmux.sock")]
    size = ["-x", "120", "-y", "40"]
    subprocess.run([*tmux, "new-session", "-d", *size, "-c", str(project), command], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout

    def wait_for(predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; screen:\n{screen()}"
            time.sleep(0.1)

    try:
        wait_for(lambda: "? for shortcuts" in screen(), "the prompt box")  # shown with --model sonnet
        subprocess.run([*tmux, "send-keys", "-l", "say hello"], check=True)
        time.sleep(0.3)
        subprocess.run([*tmux, "send-keys", "Enter"], check=True)
        wait_for(lambda: "tui answer" in screen(), "the answer")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    assert [r.model for r in api.messages_requests()] == [SONNET]


# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def test_claude_env_is_clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "secret")
    env = claude_env(tmp_path, "http://127.0.0.1:1234", CLAUDE_CODE_MAX_RETRIES="2")
    assert env["HOME"] == str(tmp_path) and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1234"
    assert env["ANTHROPIC_API_KEY"] == TEST_API_KEY
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["CLAUDE_CODE_MAX_RETRIES"] == "2"
    assert "CLAUDECODE" not in env and "ANTHROPIC_AUTH_TOKEN" not in env
    assert not any(name.startswith("OTEL_") for name in env)


def test_find_claude_bin_honours_the_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = make_fake_claude(tmp_path)
    monkeypatch.setenv("CLAUDE_RUN_TEST_CLAUDE_BIN", str(fake))
    assert find_claude_bin() == fake
    monkeypatch.setenv("CLAUDE_RUN_TEST_CLAUDE_BIN", str(tmp_path / "missing"))
    assert find_claude_bin() is None


def test_write_claude_json(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / ".claude.json").write_text(json.dumps({"numStartups": 3}))
    path = write_claude_json(tmp_path, project)
    config = json.loads(path.read_text())
    assert config["numStartups"] == 3 and config["hasCompletedOnboarding"] is True
    assert config["customApiKeyResponses"]["approved"] == [TEST_API_KEY[-20:]]
    assert config["projects"][str(project.resolve())]["hasTrustDialogAccepted"] is True
    write_claude_json(tmp_path, project)  # idempotent
    assert json.loads(path.read_text())["customApiKeyResponses"]["approved"] == [TEST_API_KEY[-20:]]


# ---------------------------------------------------------------------------------------------------------
# The fake claude
# ---------------------------------------------------------------------------------------------------------


def run_fake(path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(path), "-p", "hi", "--output-format", "stream-json", "--verbose", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": os.environ["PATH"]},  # the wrapper must not need the caller's env
        check=False,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_fake_version(tmp_path: Path) -> None:
    out = subprocess.run(
        [make_fake_claude(tmp_path), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == "2.1.330 (Claude Code)\n"


def test_fake_text_and_tool_runs(tmp_path: Path) -> None:
    events = json_lines(run_fake(make_fake_claude(tmp_path, "text")).stdout)
    assert [e["type"] for e in events] == ["system", "assistant", "result"]
    assert events[-1]["total_cost_usd"] == pytest.approx(0.00722805)
    tool = run_fake(make_fake_claude(tmp_path, "tool"))
    events = json_lines(tool.stdout)
    assert [e["type"] for e in events] == ["system", "assistant", "user", "assistant", "result"]
    result = events[-1]
    assert result["num_turns"] == 2
    assert result["modelUsage"][SONNET]["inputTokens"] == sum(u.input for u in fake_claude.TOOL_USAGES)
    assert result["total_cost_usd"] == pytest.approx(0.016554)


def test_fake_replay(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text('{"type":"system","subtype":"init"}\nnot json\n{"type":"result"}\n')
    proc = run_fake(make_fake_claude(tmp_path, "replay", file=sample, exit_code=7))
    assert proc.returncode == 7
    assert proc.stdout == sample.read_text()


def test_fake_noise(tmp_path: Path) -> None:
    lines = run_fake(make_fake_claude(tmp_path, "noise")).stdout.splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    assert [e["type"] for e in parsed if isinstance(e, dict)] == ["system", "assistant", "result"]
    assert len(lines) > 6


def test_fake_huge(tmp_path: Path) -> None:
    proc = run_fake(make_fake_claude(tmp_path, "huge"))
    lines = proc.stdout.splitlines()
    assert len(lines[1]) >= 4 * 1024 * 1024
    assert json.loads(lines[-1])["type"] == "result"


def test_fake_torn(tmp_path: Path) -> None:
    proc = run_fake(make_fake_claude(tmp_path, "torn"))
    assert proc.returncode == 1
    assert not proc.stdout.endswith("\n")
    last = proc.stdout.splitlines()[-1]
    with pytest.raises(ValueError):
        json.loads(last)


@pytest.mark.parametrize(("behaviour", "returncode"), [("crash", 134), ("crash-signal", -signal.SIGSEGV)])
def test_fake_crash(tmp_path: Path, behaviour: str, returncode: int) -> None:
    proc = run_fake(make_fake_claude(tmp_path, behaviour))
    assert proc.returncode == returncode
    events = json_lines(proc.stdout)
    assert "result" not in [e["type"] for e in events]
    assert len([e for e in events if e["type"] == "assistant"]) == 2


def start_hanging(tmp_path: Path, behaviour: str) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "signal.txt"
    wrapper = make_fake_claude(tmp_path, behaviour, signal_file=marker, hang_max=30)
    proc = subprocess.Popen([str(wrapper), "-p", "hi"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    kinds = [json.loads(proc.stdout.readline())["type"] for _ in range(2)]
    assert kinds == ["system", "assistant"]
    return proc, marker


@pytest.mark.parametrize(("sig", "returncode"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_fake_hang_exits_on_signal(tmp_path: Path, sig: signal.Signals, returncode: int) -> None:
    proc, marker = start_hanging(tmp_path, "hang")
    proc.send_signal(sig)
    assert proc.wait(timeout=5) == returncode
    assert marker.read_text() == f"{sig.name}\n"


def test_fake_ignore_term_needs_sigkill(tmp_path: Path) -> None:
    proc, marker = start_hanging(tmp_path, "ignore-term")
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.5)
    proc.kill()
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert marker.read_text() == "SIGTERM\n"


def test_fake_stderr_flood(tmp_path: Path) -> None:
    proc = run_fake(make_fake_claude(tmp_path, "stderr-flood"))
    assert proc.returncode == 0
    assert len(proc.stderr) >= fake_claude.STDERR_FLOOD_BYTES
    assert json_lines(proc.stdout)[-1]["type"] == "result"


def test_fake_echo_args(tmp_path: Path) -> None:
    args_file = tmp_path / "args.json"
    wrapper = make_fake_claude(tmp_path, "echo-args", args_file=args_file)
    env = {"PATH": os.environ["PATH"], "ANTHROPIC_BASE_URL": "http://x", "OTEL_FOO": "1", "UNRELATED": "no"}
    subprocess.run([str(wrapper), "-p", "hi", "--model", SONNET], env=env, cwd=tmp_path, check=True)
    report = json.loads(args_file.read_text())
    assert report["argv"] == ["-p", "hi", "--model", SONNET]
    assert report["env"]["ANTHROPIC_BASE_URL"] == "http://x" and report["env"]["OTEL_FOO"] == "1"
    assert "UNRELATED" not in report["env"]
    assert Path(report["cwd"]) == tmp_path


def test_make_fake_claude_rejects_unknown_behaviour(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_fake_claude(tmp_path, "nope")
