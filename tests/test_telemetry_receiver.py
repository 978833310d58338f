"""The OTLP/HTTP receiver survives what clients throw at it and answers per the OTLP spec."""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.httpd import bind
from claude_run.telemetry.inbound.collector import Collector
from claude_run.telemetry.inbound.receiver import Receiver
from support import otlp_pb
from support import telemetry_samples as samples

LOGS = samples.bodies("otlp-logs.http-json.log")[0] if samples.available() else b'{"resourceLogs": []}'


def request(path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body))}
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode() + body


async def read_response(
    stream: anyio.abc.ByteStream, buf: bytearray
) -> tuple[int, dict[str, Any], dict[str, str]]:
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive()
    end = buf.index(b"\r\n\r\n")
    head = buf[:end].decode()
    del buf[: end + 4]
    status = int(head.split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])}
    length = int(headers["content-length"])
    while len(buf) < length:
        buf += await stream.receive()
    payload = json.loads(bytes(buf[:length]))
    del buf[:length]
    return status, payload, headers


Scenario = Callable[[int, Collector, Receiver], Awaitable[None]]


def run_with_receiver(scenario: Scenario, max_body: int = 1 << 20) -> Collector:
    collector = Collector()

    async def main() -> None:
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        receiver = Receiver(collector.feed, max_body=max_body)
        async with anyio.create_task_group() as tg:
            await tg.start(receiver.serve, sock)
            with anyio.fail_after(10):
                await scenario(port, collector, receiver)
            tg.cancel_scope.cancel()

    anyio.run(main)
    return collector


async def one(port: int, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with await anyio.connect_tcp("127.0.0.1", port) as s:
        await s.send(raw)
        return await read_response(s, bytearray())


def test_logs_body_is_accepted_and_folded() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        status, payload, _ = await one(port, request("/v1/logs", LOGS))
        assert (status, payload) == (200, {})

    c = run_with_receiver(scenario)
    assert c.events == (10 if samples.available() else 0)


def test_gzip_body() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        status, _, _ = await one(port, request("/v1/logs", gzip.compress(LOGS), {"Content-Encoding": "gzip"}))
        assert status == 200

    assert run_with_receiver(scenario).events == (10 if samples.available() else 0)


def test_protobuf_bodies_fold_like_their_json_twins() -> None:
    """Claude's default protocol (http/protobuf): the same logs, encoded by the official classes."""
    body = otlp_pb.to_protobuf("logs", LOGS)

    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        headers = {"Content-Type": "application/x-protobuf"}
        status, payload, _ = await one(port, request("/v1/logs", body, headers))
        assert (status, payload) == (200, {})
        gz = {**headers, "Content-Encoding": "gzip"}
        status, _, _ = await one(port, request("/v1/logs", gzip.compress(body), gz))
        assert status == 200

    # The JSON body gives 10 events (test_logs_body_is_accepted_and_folded); each protobuf copy too.
    assert run_with_receiver(scenario).events == 2 * (10 if samples.available() else 0)


def test_malformed_protobuf_is_400_and_other_types_415() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        pb = {"Content-Type": "application/x-protobuf"}
        status, payload, _ = await one(port, request("/v1/metrics", b"\x0a\x02\x08\x01", pb))
        assert status == 400 and "malformed protobuf" in payload["message"]
        status, payload, _ = await one(port, request("/v1/logs", b"\x0a\x05\x0a", pb))  # truncated
        assert status == 400 and "truncated" in payload["message"]
        status, payload, _ = await one(port, request("/v1/logs", LOGS, {"Content-Type": "text/plain"}))
        assert status == 415 and "application/x-protobuf" in payload["message"]

    assert run_with_receiver(scenario).empty


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"resourceLogs": 3}', b"\xff\xfe"])
def test_malformed_is_400_and_the_connection_lives_on(body: bytes) -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as s:
            buf = bytearray()
            await s.send(request("/v1/logs", body))
            status, payload, _ = await read_response(s, buf)
            assert status == 400 and payload["message"]
            await s.send(request("/v1/logs", LOGS))  # same connection: keep-alive
            assert (await read_response(s, buf))[0] == 200

    run_with_receiver(scenario)


def test_oversized_is_413_and_closed() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as s:
            await s.send(request("/v1/logs", b"", {"Content-Length": str(10**8)}))
            status, _, headers = await read_response(s, bytearray())
            assert status == 413 and headers["connection"] == "close"
        bomb = gzip.compress(b" " * 5_000_000)
        status, _, _ = await one(port, request("/v1/logs", bomb, {"Content-Encoding": "gzip"}))
        assert status == 413
        assert (await one(port, request("/v1/logs", LOGS)))[0] == 200

    run_with_receiver(scenario, max_body=4096 if len(LOGS) < 4096 else len(LOGS) + 1)


def test_bad_requests_do_not_stop_the_server() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        for raw in (
            b"GARBAGE\r\n\r\n",
            b"POST /v1/logs HTTP/1.1\r\nNoColon\r\n\r\n",
            b"\x00" * 100 + b"\r\n\r\n",
        ):
            async with await anyio.connect_tcp("127.0.0.1", port) as s:
                await s.send(raw)
                assert (await read_response(s, bytearray()))[0] == 400
        async with await anyio.connect_tcp("127.0.0.1", port) as s:
            await s.send(b"POST /v1/logs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")  # then hang up
        assert (await one(port, request("/nope", b"")))[0] == 404
        assert (await one(port, request("/v1/logs", b"", method="GET")))[0] == 405
        assert (await one(port, request("/v1/traces", b'{"resourceSpans": []}')))[0] == 200
        chunked = b"POST /v1/logs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (LOGS[:100], LOGS[100:])
        )
        assert (await one(port, chunked + b"0\r\n\r\n"))[0] == 200

    run_with_receiver(scenario)


def test_concurrent_connections_and_a_slow_client() -> None:
    statuses: list[int] = []

    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as slow:
            await slow.send(request("/v1/logs", LOGS)[:40])  # a stalled client holds its connection

            async def client() -> None:
                statuses.append((await one(port, request("/v1/logs", LOGS)))[0])

            async with anyio.create_task_group() as tg:
                for _ in range(25):
                    tg.start_soon(client)
            buf = bytearray()
            await slow.send(request("/v1/logs", LOGS)[40:])
            statuses.append((await read_response(slow, buf))[0])

    c = run_with_receiver(scenario)
    assert statuses == [200] * 26
    assert c.events == (26 * 10 if samples.available() else 0)


def test_wait_for_body() -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        assert await r.wait_for_body(0.05) is False
        async with anyio.create_task_group() as tg:

            async def later() -> None:
                await anyio.sleep(0.05)
                await one(port, request("/v1/logs", LOGS))

            tg.start_soon(later)
            assert await r.wait_for_body(5) is True

    run_with_receiver(scenario)


_PREFIXES = [b"", b"POST /v1/logs HTTP/1.1\r\n", b"POST /v1/metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PREFIXES), st.binary(max_size=300))
def test_any_bytes_leave_the_server_serving(prefix: bytes, junk: bytes) -> None:
    async def scenario(port: int, c: Collector, r: Receiver) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as s:
            await s.send(prefix + junk)
            await s.send_eof()
            with anyio.move_on_after(2):
                while True:
                    try:
                        await s.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert (await one(port, request("/v1/logs", LOGS)))[0] == 200

    run_with_receiver(scenario)
