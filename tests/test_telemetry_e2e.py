"""The real Claude CLI against the mock Messages API, its telemetry caught by the built-in receiver."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_run.httpd import bind, endpoint_of
from claude_run.run.modes import build_invocation
from claude_run.telemetry.inbound.collector import Collector
from claude_run.telemetry.inbound.receiver import Receiver

mock = pytest.importorskip(
    "support.mock_anthropic", reason="the mock Messages API (branch mockapi) is not merged"
)
cli = pytest.importorskip("support.claude_cli", reason="the mock Messages API (branch mockapi) is not merged")

CLAUDE = cli.find_claude_bin()
SRC = Path(__file__).resolve().parents[1] / "src"
MODEL = "claude-sonnet-4-5"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CLAUDE is None, reason="the real claude binary is not installed"),
]


def tool_script() -> list[Any]:
    usage = mock.Usage
    return [
        mock.tool_use(
            "Bash",
            {"command": "echo one"},
            usage=usage(input=85, cache_creation_5m=1526, cache_read=4202, output=19),
        ),
        mock.tool_use("Bash", {"command": "exit 3"}, usage=usage(input=96, cache_read=5100, output=23)),
        mock.text("done", usage=usage(input=122, cache_creation_1h=700, cache_read=4303, output=26)),
    ]


def run_with_receiver(
    tmp_path: Path, script: list[Any], args: list[str], protocol: str = "http/json"
) -> tuple[Collector, Any, dict[str, Any]]:
    """Run claude as claude-run would (same env builder), with the receiver served in-process."""
    collector = Collector()
    out: dict[str, Any] = {}

    async def main() -> None:
        sock = bind()
        receiver = Receiver(collector.feed)
        with mock.MockAnthropic(script) as api:
            out["api"] = api
            inv = build_invocation(
                "non-interactive",
                claude_bin=str(CLAUDE),
                task="do it",
                claude_args=["--model", MODEL, *args],
                base_env=cli.claude_env(tmp_path, api.url),
                telemetry_endpoint=endpoint_of(sock),
                telemetry_protocols={"metrics": protocol, "logs": protocol},
                resource_attributes={"claude_run.run_id": "TESTRUN"},
            )
            async with anyio.create_task_group() as tg:
                await tg.start(receiver.serve, sock)
                proc = await anyio.run_process(
                    inv.argv, input=inv.stdin, env=inv.env, cwd=tmp_path, check=False
                )
                out["proc"] = proc
                tg.cancel_scope.cancel()

    anyio.run(main)
    return collector, out["api"], out


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_per_request_figures_equal_what_the_mock_returned(tmp_path: Path, protocol: str) -> None:
    """In both encodings Claude can send (protobuf is read by our own decoder, `inbound/otlp_proto.py`)."""
    collector, api, out = run_with_receiver(tmp_path, tool_script(), ["--allowedTools", "Bash"], protocol)
    assert out["proc"].returncode == 0, out["proc"].stderr[-2000:]
    served = api.served
    assert len(served) == 3
    got = sorted(collector.api_requests, key=lambda r: r.time_ns)
    assert len(got) == len(served)
    for req, s in zip(got, served, strict=True):
        assert req.model == s.model
        assert (req.input, req.output, req.cache_read, req.cache_creation) == (
            s.usage.input,
            s.usage.output,
            s.usage.cache_read,
            s.usage.cache_creation,
        )
        assert (req.cache_creation_5m, req.cache_creation_1h) == (
            s.usage.cache_creation_5m,
            s.usage.cache_creation_1h,
        )
        assert math.isclose(req.cost_usd, mock.list_cost(s.model, s.usage), rel_tol=1e-9)
        assert req.duration_ms is not None and req.ttft_ms is not None
    detail = collector.detail()
    assert detail["tools"]["calls"] == {"Bash": 2}
    assert detail["tools"]["failures"] == {"Bash": 1}  # `exit 3`
    assert collector.resource.get("claude_run.run_id") == "TESTRUN"
    events = [json.loads(line) for line in out["proc"].stdout.decode().splitlines() if line.startswith("{")]
    final = [e for e in events if e.get("type") == "result"][-1]
    assert math.isclose(detail["cost_usd"], final["total_cost_usd"], rel_tol=1e-9)


def claude_run(tmp_path: Path, api: Any, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    run_env = cli.claude_env(tmp_path, api.url, CLAUDE_RUN_CLAUDE_BIN=str(CLAUDE), PYTHONPATH=str(SRC))
    run_env.update(env or {})
    argv = [
        sys.executable,
        "-m",
        "claude_run",
        "do it",
        "--track",
        "--json",
        "--ledger",
        str(tmp_path / "l.jsonl"),
    ]
    proc = subprocess.run(
        [*argv, *extra, "--", "--model", MODEL, "--allowedTools", "Bash"],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    record: dict[str, Any] = json.loads(proc.stdout)
    return record


@pytest.mark.slow
def test_a_tracked_run_records_the_telemetry_detail(tmp_path: Path) -> None:
    with mock.MockAnthropic(tool_script()) as api:
        record = claude_run(tmp_path, api)
        total = api.total_usage()
        count = len(api.served)
    tel = record["telemetry"]
    assert record["telemetry_agrees"] is True
    assert tel["requests"]["count"] == count == 3
    assert tel["requests"]["by_model"] == {MODEL: 3}
    assert tel["tokens"] == {
        "input": total.input,
        "output": total.output,
        "cache_read": total.cache_read,
        "cache_creation": total.cache_creation,
    }
    assert tel["tools"]["calls"] == {"Bash": 2}
    assert tel["wait_ms"] < 1600  # bounded wait for the final flush
    assert not any("telemetry" in note for note in record.get("notes") or [])
    line = json.loads((tmp_path / "l.jsonl").read_text().splitlines()[-1])
    assert line["telemetry"] == tel


@pytest.mark.slow
def test_no_telemetry_records_as_before(tmp_path: Path) -> None:
    with mock.MockAnthropic(tool_script()) as api:
        record = claude_run(tmp_path, api, "--no-telemetry")
    assert "telemetry" not in record and "telemetry_agrees" not in record
    assert record["tokens"]["output"] == 19 + 23 + 26


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_the_users_otlp_endpoint_still_gets_everything(tmp_path: Path, protocol: str) -> None:
    """Forwarding: the user's own collector (here a second receiver) gets the same api_request events,
    in the user's own encoding."""
    theirs = Collector()
    sock = bind()
    endpoint = endpoint_of(sock)
    import threading

    stop = threading.Event()

    def serve() -> None:
        async def main() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(Receiver(theirs.feed).serve, sock)
                while not stop.is_set():
                    await anyio.sleep(0.05)
                tg.cancel_scope.cancel()

        anyio.run(main)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    user_env = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": "x-team=blue",
    }
    try:
        with mock.MockAnthropic(tool_script()) as api:
            record = claude_run(tmp_path, api, env=user_env)
    finally:
        stop.set()
        thread.join(5)
    assert record["telemetry"]["forwarded"]["failed"] == 0
    assert record["telemetry"]["forwarded"]["sent"] >= 2
    assert theirs.tokens() == record["telemetry"]["tokens"]
    assert len(theirs.api_requests) == 3


def test_interactive_and_untracked_get_no_receiver() -> None:
    from claude_run.run.launch import start

    env = {"PATH": os.environ.get("PATH", "")}
    for mode, track in (("interactive", True), ("non-interactive", False)):
        started = start(
            mode=mode,
            task=None if mode == "interactive" else "x",
            track=track,
            claude_bin="/bin/true",
            claude_args=[],
            max_cost=None,
            env=env,
            telemetry=True,
        )
        started.child.wait()
        assert started.telemetry_plan is None
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in started.invocation.env


@pytest.mark.slow
def test_an_api_error_is_counted_with_its_status(tmp_path: Path) -> None:
    # Claude Code 2.1.330 retries a plain 400 without betas (six requests) and reports one api_error.
    with mock.MockAnthropic([mock.invalid_request()], when_done="repeat") as api:
        record = claude_run(tmp_path, api)
    tel = record["telemetry"]
    assert record["status"] == "error"
    assert tel["requests"]["count"] == 0
    assert tel["requests"]["api_errors"] >= 1
    assert set(tel["requests"]["error_status"]) == {"400"}
    assert record["telemetry_agrees"] is True  # zero tokens and $0 on both sides
