"""Which runs get the built-in receiver, what Claude speaks to it, and forwarding to the user's own
http/json or http/protobuf endpoint."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from claude_run.httpd import bind, endpoint_of
from claude_run.run.modes import build_invocation
from claude_run.telemetry.inbound.collector import Collector
from claude_run.telemetry.inbound.receiver import Receiver
from claude_run.telemetry.outbound.forward import Forwarder, parse_headers, signal_url
from claude_run.telemetry.plan import decide, prepare
from support import otlp_pb
from support import telemetry_samples as samples

HTTP_JSON = {
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
}


PB, JS = "http/protobuf", "http/json"


@pytest.mark.parametrize(
    ("env", "builtin", "forward", "protocols"),
    [
        ({}, True, (), (JS, JS)),  # nothing of the user's: JSON, the cheapest for us to read
        ({"OTEL_METRICS_EXPORTER": "console"}, True, (), (JS, JS)),
        (HTTP_JSON, True, ("metrics", "logs"), (JS, JS)),  # forwarding keeps the user's protocol
        ({**HTTP_JSON, "OTEL_LOGS_EXPORTER": "none"}, True, ("metrics",), (JS, JS)),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_LOGS_EXPORTER": "none"},
            True,
            ("metrics",),
            (PB, JS),
        ),
        ({**HTTP_JSON, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, False, (), None),
        (
            {**HTTP_JSON, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"},
            True,
            ("metrics", "logs"),
            (JS, PB),
        ),
        ({**HTTP_JSON, "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc"}, False, (), None),
        # No protocol set: OpenTelemetry's default, http/protobuf, forwarded as such.
        (
            {k: v for k, v in HTTP_JSON.items() if k != "OTEL_EXPORTER_OTLP_PROTOCOL"},
            True,
            ("metrics", "logs"),
            (PB, PB),
        ),
        ({"OTEL_METRICS_EXPORTER": "prometheus"}, False, (), None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            True,
            ("metrics", "logs"),
            (JS, JS),
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, True, ("metrics", "logs"), (PB, PB)),  # endpoint alone
    ],
)
def test_decide(
    env: dict[str, str], builtin: bool, forward: tuple[str, ...], protocols: tuple[str, str] | None
) -> None:
    plan = decide(env)
    assert plan.use_builtin is builtin
    assert plan.forward_signals == forward
    assert (plan.note is None) is builtin
    if protocols is not None:
        assert (plan.protocols["metrics"], plan.protocols["logs"]) == protocols
        inv = build_invocation(
            "non-interactive",
            claude_bin="claude",
            task="x",
            base_env=env,
            telemetry_endpoint="http://127.0.0.1:9",
            telemetry_protocols=plan.protocols,
        )
        assert inv.env["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocols[0]  # metrics (and anything else)
        assert inv.env.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", protocols[0]) == protocols[1]
        assert "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL" not in inv.env


def test_prepare_binds_loopback_and_the_env_points_there() -> None:
    plan = prepare({})
    try:
        assert plan.endpoint is not None and plan.endpoint.startswith("http://127.0.0.1:")
        inv = build_invocation(
            "non-interactive",
            claude_bin="claude",
            task="x",
            base_env={**HTTP_JSON, "OTEL_EXPORTER_OTLP_HEADERS": "a=b"},
            telemetry_endpoint=plan.endpoint,
            resource_attributes={"claude_run.run_id": "R"},
        )
        assert inv.env["OTEL_EXPORTER_OTLP_ENDPOINT"] == plan.endpoint
        assert inv.env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"  # no plan given: the default
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in inv.env  # the user's headers go with forwarding only
        assert inv.env["OTEL_RESOURCE_ATTRIBUTES"] == "claude_run.run_id=R"
    finally:
        plan.close()


def test_signal_urls_and_headers() -> None:
    assert signal_url({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "logs") == "http://c:4318/v1/logs"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m/x"}
    assert signal_url(env, "metrics") == "http://m/x"
    assert signal_url({}, "logs") is None
    assert parse_headers("Authorization=Bearer%20t, x-a=1,bad") == {"Authorization": "Bearer t", "x-a": "1"}


@pytest.mark.skipif(not samples.available(), reason="shared Claude Code samples not present")
def test_forwarder_delivers_and_counts_failures() -> None:
    theirs = Collector()
    sock = bind()
    endpoint = endpoint_of(sock)
    stop = threading.Event()

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(Receiver(theirs.feed).serve, sock)
            while not stop.is_set():
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()

    thread = threading.Thread(target=lambda: anyio.run(serve), daemon=True)
    thread.start()
    try:
        fwd = Forwarder.from_env({**HTTP_JSON, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, ("metrics", "logs"))
        assert fwd is not None
        # Forwarded as they came: protobuf stays protobuf (Content-Type included), JSON stays JSON.
        logs_pb = otlp_pb.to_protobuf("logs", samples.bodies("otlp-logs.http-json.log")[0])
        fwd.submit("logs", logs_pb, "application/x-protobuf")
        fwd.submit("metrics", samples.bodies("otlp-metrics.http-json.log")[0])
        fwd.close(timeout=10)
        assert fwd.summary() == {"sent": 2, "failed": 0}
        assert theirs.tokens()["cache_read"] == 9717
    finally:
        stop.set()
        thread.join(5)
    dead = Forwarder.from_env({**HTTP_JSON, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, ("logs",))
    assert dead is not None
    t0 = time.monotonic()
    dead.submit("logs", b"{}")
    dead.submit("metrics", b"{}")  # not a forwarded signal: ignored
    dead.close(timeout=10)
    assert dead.failed == 1 and dead.sent == 0 and dead.errors
    assert time.monotonic() - t0 < 10
