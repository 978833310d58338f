"""Just enough HTTP/1.1 on anyio byte streams, shared by every server of the project (the OTLP
receiver, `metrics --serve`, the dashboard): framing, the Host check, and the guard that keeps one
bad connection from ending the server.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

MAX_HEADER = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class Conn:
    """Buffered reads from one byte stream."""

    def __init__(self, stream: anyio.abc.ByteStream, max_head: int = MAX_HEADER) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.max_head = max_head

    async def _fill(self) -> bool:
        try:
            chunk = await self.stream.receive(65536)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        self.buf += chunk
        return True

    async def read_head(self) -> bytes | None:
        """Bytes up to the blank line ending the head; None when the peer closed between requests."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > self.max_head:
                raise HttpError(431, "request head too large", close=True)
            if not await self._fill():
                if self.buf.strip():
                    raise HttpError(400, "connection closed mid-request", close=True)
                return None

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self._fill():
                raise HttpError(400, "connection closed before the whole body arrived", close=True)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > MAX_HEADER:
                raise HttpError(400, "chunk header too long", close=True)
            if not await self._fill():
                raise HttpError(400, "connection closed mid-chunk", close=True)

    async def read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            size_line = (await self.read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise HttpError(400, "bad chunk size", close=True) from None
            if size == 0:
                while await self.read_line():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > limit:
                raise HttpError(413, f"body larger than {limit} bytes", close=True)
            body += await self.read_exact(size)
            await self.read_exact(2)


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line", close=True) from None
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, "malformed header line", close=True)
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return method, target, version, headers


def response_head(status: int, content_type: str, length: int, *, close: bool, extra: str = "") -> bytes:
    """A response's status line and headers. `extra`: more header lines, each ending in CRLF."""
    return (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        f"{extra}Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode()


async def respond(
    stream: anyio.abc.ByteStream,
    status: int,
    payload: bytes,
    close: bool,
    content_type: str = "application/json",
) -> None:
    head = response_head(status, content_type, len(payload), close=close)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await stream.send(head + payload)


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """Host header values to accept, or None for any (when listening beyond loopback on purpose).

    On loopback only our own names pass: a web page the user visits can make the browser send
    requests to 127.0.0.1 (DNS rebinding), but not with a Host header naming 127.0.0.1 — so a
    request naming any other host is answered 421 and never read further.
    """
    if not (host in LOOPBACK or host.startswith("127.") or host in ("0:0:0:0:0:0:0:1",)):
        return None  # reachable under names we cannot know; DNS rebinding needs a loopback target
    names = {host, "127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    return {f"{n}:{port}" for n in names} | names


def allowed_for(sock: object) -> set[str] | None:
    """`allowed_hosts` for a bound listening socket."""
    try:
        name = sock.getsockname()  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    return allowed_hosts(str(name[0]), int(name[1]))


def host_allowed(headers: dict[str, str], allowed: set[str] | None) -> bool:
    """A request without Host (HTTP/1.0, raw clients) is no browser's: only a named host is checked."""
    host = headers.get("host")
    return allowed is None or host is None or host.strip().lower() in allowed


Handler = Callable[[anyio.abc.ByteStream], Awaitable[None]]


def guarded(handler: Handler, name: str, *, quiet: bool = True) -> Handler:
    """A connection handler that cannot end the server: whatever one client does (hang up, send
    garbage, trip a bug), only its own connection ends. anyio's listener would otherwise let the
    exception cancel every other connection and the accept loop with them."""

    async def handle(stream: anyio.abc.ByteStream) -> None:
        try:
            await handler(stream)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            if not quiet:
                sys.stderr.write(f"claude-run {name}: connection error: {exc!r}\n")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    return handle


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket, bound with the stdlib (fast) before any event loop exists."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def endpoint_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
