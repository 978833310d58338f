"""A minimal OTLP/HTTP receiver (JSON and protobuf encodings) on anyio: just enough HTTP/1.1.

Routes: `POST /v1/metrics`, `POST /v1/logs` (and `/v1/traces`, accepted and dropped). Every body is
handed to `sink(kind, data)` in the OTLP JSON shape (protobuf bodies are read into it by
`otlp_proto`). Answers follow the OTLP/HTTP spec: 200 with an empty JSON response on success; 400
for a malformed body or one of the wrong shape; 413 above the size limit; 415 for another
Content-Type or Content-Encoding.
Connections are kept alive and served concurrently; a slow or broken client only costs its own task,
and nothing a client sends can stop the server.
"""

from __future__ import annotations

import socket
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import orjson

from ...httpd import Conn, HttpError, allowed_for, guarded, host_allowed, parse_head, respond
from .otlp import OtlpDecodeError

MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 30.0  # a keep-alive connection with no new request for this long is closed
BODY_TIMEOUT_S = 30.0  # a client must finish sending a request within this long
ROUTES = {"/v1/metrics": "metrics", "/v1/logs": "logs", "/v1/traces": "traces"}
JSON = "application/json"
PROTOBUF = "application/x-protobuf"

Sink = Callable[[str, Mapping[str, Any]], None]


@dataclass
class ReceiverStats:
    requests: int = 0
    bodies: dict[str, int] = field(default_factory=dict)
    rejected: dict[int, int] = field(default_factory=dict)


def _gunzip(data: bytes, limit: int) -> bytes:
    # Bounded decompression: a small gzip bomb must not become a 10 GB allocation.
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error:
        raise HttpError(400, "body is not valid gzip") from None
    if len(out) > limit or d.unconsumed_tail:
        raise HttpError(413, f"decompressed body larger than {limit} bytes")
    return out


class Receiver:
    """Serve OTLP/HTTP on a listening socket; hand each decoded body to `sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        max_body: int = MAX_BODY,
        quiet: bool = True,
        on_raw: Callable[[str, bytes, str], None] | None = None,
    ) -> None:
        self.sink = sink
        # Gets each accepted body (decompressed) and its Content-Type, e.g. to forward it as is.
        self.on_raw = on_raw
        self.max_body = max_body
        self.quiet = quiet
        self.stats = ReceiverStats()
        self.arrived = anyio.Event()  # set on every accepted body; replaced after each wait
        self._last_body_at = 0.0
        self.allowed: set[str] | None = None  # Host header values accepted (set from the socket served)

    @property
    def last_body_at(self) -> float:
        return self._last_body_at

    async def serve(
        self,
        sock: socket.socket | int,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve a listening socket (or its descriptor); the listener takes ownership and closes it."""
        if isinstance(sock, int):
            sock = socket.socket(fileno=sock)
        self.allowed = allowed_for(sock)
        sock.setblocking(False)
        listener = await anyio.abc.SocketListener.from_socket(sock)
        task_status.started()
        async with listener:
            await listener.serve(guarded(self.handle, "telemetry", quiet=self.quiet))

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        """One connection: requests in a loop (keep-alive) until the peer closes or errs."""
        conn = Conn(stream)
        try:
            async with stream:
                while True:
                    head = None
                    with anyio.move_on_after(IDLE_TIMEOUT_S):
                        head = await conn.read_head()
                    if head is None:
                        return  # closed by the peer, or idle too long
                    keep = await self._one_request(conn, head)
                    if not keep:
                        return
        except Exception as exc:  # a broken client must never take the server down
            if not self.quiet:
                sys.stderr.write(f"claude-run telemetry: connection error: {exc!r}\n")

    async def _one_request(self, conn: Conn, head: bytes) -> bool:
        close = False
        try:
            method, target, version, headers = parse_head(head)
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            if not host_allowed(headers, self.allowed):
                # A page in a browser can reach loopback but cannot name it in Host: no spend injected.
                raise HttpError(421, "unexpected Host header", close=True)
            status, payload = await self._route(conn, method, target, headers)
        except HttpError as err:
            status, payload = err.status, _status_body(err.status, err.message)
            close = close or err.close
        except Exception as exc:
            status, payload = 500, _status_body(500, f"internal error: {exc!r}")
        self.stats.requests += 1
        if status != 200:
            self.stats.rejected[status] = self.stats.rejected.get(status, 0) + 1
        await respond(conn.stream, status, payload, close)
        return not close

    async def _route(
        self, conn: Conn, method: str, target: str, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        path = target.split("?", 1)[0]
        kind = ROUTES.get(path)
        if kind is None:
            await self._discard_body(conn, headers)
            return 404, _status_body(404, f"no such endpoint {path}; use /v1/metrics or /v1/logs")
        if method != "POST":
            await self._discard_body(conn, headers)
            return 405, _status_body(405, "only POST is supported")
        body = await self._read_body(conn, headers)
        ctype = headers.get("content-type", JSON).split(";", 1)[0].strip().lower()
        if ctype not in (JSON, PROTOBUF, ""):
            return 415, _status_body(
                415, f"unsupported Content-Type {ctype}; send application/json or application/x-protobuf"
            )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            body = _gunzip(body, self.max_body)
        elif encoding not in ("identity", ""):
            return 415, _status_body(415, f"unsupported Content-Encoding {encoding}; use gzip or none")
        if ctype == PROTOBUF:
            from . import otlp_proto  # not needed by tracked runs, which send JSON: loaded on demand

            try:
                data: Any = otlp_proto.to_json(kind, body)
            except OtlpDecodeError as exc:
                return 400, _status_body(400, str(exc))
        else:
            try:
                data = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError as exc:
                return 400, _status_body(400, f"malformed JSON: {exc}")
            if not isinstance(data, dict):
                return 400, _status_body(400, "the body must be a JSON object")
        if kind != "traces":
            try:
                self.sink(kind, data)
            except OtlpDecodeError as exc:
                return 400, _status_body(400, str(exc))
        self.stats.bodies[kind] = self.stats.bodies.get(kind, 0) + 1
        if self.on_raw is not None:
            self.on_raw(kind, body, ctype or JSON)
        self._last_body_at = anyio.current_time()
        self.arrived.set()
        self.arrived = anyio.Event()
        return 200, b"{}"

    async def _read_body(self, conn: Conn, headers: dict[str, str]) -> bytes:
        try:
            with anyio.fail_after(BODY_TIMEOUT_S):
                return await self._read_body_unbounded(conn, headers)
        except TimeoutError:
            raise HttpError(408, "the body did not arrive in time", close=True) from None

    async def wait_for_body(self, timeout: float) -> bool:
        """True when a body arrives within `timeout` seconds."""
        event = self.arrived
        with anyio.move_on_after(timeout):
            await event.wait()
            return True
        return False

    async def _read_body_unbounded(self, conn: Conn, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await conn.read_chunked(self.max_body)
        length_text = headers.get("content-length")
        if length_text is None:
            raise HttpError(411, "Content-Length or chunked Transfer-Encoding required", close=True)
        try:
            length = int(length_text)
        except ValueError:
            raise HttpError(400, "bad Content-Length", close=True) from None
        if length < 0:
            raise HttpError(400, "bad Content-Length", close=True)
        if length > self.max_body:
            # Not reading the body: answer, then close, so its bytes are never parsed as a request.
            raise HttpError(413, f"body of {length} bytes is larger than {self.max_body}", close=True)
        return await conn.read_exact(length)

    async def _discard_body(self, conn: Conn, headers: dict[str, str]) -> None:
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) <= self.max_body:
            await conn.read_exact(int(length))
        elif length or "transfer-encoding" in headers:
            raise HttpError(404, "not found", close=True)


def _status_body(code: int, message: str) -> bytes:
    # OTLP/HTTP error responses carry a google.rpc.Status; its JSON form is {code, message}.
    grpc_code = {400: 3, 404: 5, 413: 8, 415: 3, 421: 7, 500: 13}.get(code, 2)
    return orjson.dumps({"code": grpc_code, "message": message})
