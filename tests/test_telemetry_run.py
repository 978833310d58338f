"""The run's receiver: settle on the final flush (bounded), and what the record gets."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from claude_run.telemetry.plan import prepare
from claude_run.telemetry.run import RunTelemetry
from support import telemetry_samples as samples

pytestmark = pytest.mark.skipif(not samples.available(), reason="shared Claude Code samples not present")
TOKENS = {"input": 651, "output": 129, "cache_read": 9717, "cache_creation": 3221}
COST = 0.01888185


async def post(endpoint: str, path: str, body: bytes) -> None:
    host, port = endpoint.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as s:
        head = f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        await s.send(head.encode() + b"Connection: close\r\n\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += await s.receive()
        assert reply.startswith(b"HTTP/1.1 200")


def run_settle(
    feed: list[tuple[str, bytes]], expected: Any, limit: float, late: bool = False
) -> RunTelemetry:
    plan = prepare({})
    endpoint = plan.endpoint
    assert endpoint is not None
    tel = RunTelemetry(plan, {})

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(tel.serve)
            while tel.receiver is None:
                await anyio.sleep(0.005)
            if not late:
                for path, body in feed:
                    await post(endpoint, path, body)
            else:

                async def trickle() -> None:
                    for path, body in feed:
                        await anyio.sleep(0.03)
                        await post(endpoint, path, body)

                tg.start_soon(trickle)
            await tel.settle(lambda: expected, limit=limit)
            tg.cancel_scope.cancel()

    anyio.run(main)
    tel.close()
    return tel


LOGS = ("/v1/logs", samples.bodies("otlp-logs.http-json.log")[0] if samples.available() else b"")
METRICS = ("/v1/metrics", samples.bodies("otlp-metrics.http-json.log")[0] if samples.available() else b"")


def test_agreeing_totals_end_the_wait_at_once() -> None:
    tel = run_settle([LOGS, METRICS], (TOKENS, COST), limit=30)
    fields = tel.record_fields(TOKENS, COST)
    assert fields["telemetry_agrees"] is True
    assert fields["telemetry"]["requests"]["count"] == 2
    assert "notes" not in fields
    assert tel.settle_ms < 1000  # far below the 30 s limit: it did not wait for a quiet spell either


def test_nothing_arrived_is_a_note_after_a_short_quiet_spell() -> None:
    tel = run_settle([], (TOKENS, COST), limit=30)
    fields = tel.record_fields(TOKENS, COST)
    assert "telemetry" not in fields and "telemetry_agrees" not in fields
    assert "never arrived" in fields["notes"][0]
    assert tel.settle_ms < 10_000


def test_late_bodies_are_waited_for_and_disagreement_is_recorded() -> None:
    tel = run_settle([LOGS], (TOKENS, COST), limit=30, late=True)
    assert tel.collector.detail()["requests"]["count"] == 2
    wrong = {**TOKENS, "output": 1}
    assert tel.record_fields(wrong, COST)["telemetry_agrees"] is False


def test_the_limit_bounds_the_wait() -> None:
    # Bodies keep coming but never agree: the wait stops at the limit, not at the end of the stream.
    many = [("/v1/logs", orjson.dumps({"resourceLogs": []}))] * 40
    tel = run_settle(many, (TOKENS, COST), limit=0.3, late=True)
    assert tel.settle_ms < 40 * 30  # the trickle lasts ≥ 1.2 s; the wait ended well before
