"""`claude-run metrics --serve`: GET /metrics answers the ledger's exposition, read fresh per scrape."""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Callable

import anyio
import anyio.abc

from ...httpd import Conn, HttpError, allowed_for, guarded, host_allowed, parse_head, respond

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve_metrics(host: str, port: int, render: Callable[[], str], *, quiet: bool = False) -> None:
    from ...httpd import bind

    try:
        sock = bind(host, port)
    except OSError as exc:
        from ...errors import TelemetryError

        raise TelemetryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    if not quiet:
        bound = sock.getsockname()
        sys.stderr.write(f"claude-run metrics: serving http://{bound[0]}:{bound[1]}/metrics (Ctrl-C stops)\n")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        anyio.run(_serve, sock, render)


async def _serve(sock: socket.socket, render: Callable[[], str]) -> None:
    allowed = allowed_for(sock)
    sock.setblocking(False)
    listener = await anyio.abc.SocketListener.from_socket(sock)

    async def handle(stream: anyio.abc.ByteStream) -> None:
        conn = Conn(stream)
        async with stream:
            while True:
                head = None
                with anyio.move_on_after(30):
                    try:
                        head = await conn.read_head()
                    except HttpError as err:  # half a request, then a close; a head too large
                        await respond(stream, err.status, err.message.encode() + b"\n", True, "text/plain")
                        return
                if head is None:
                    return
                try:
                    method, target, version, headers = parse_head(head)
                except HttpError as err:
                    await respond(stream, err.status, err.message.encode() + b"\n", True, "text/plain")
                    return
                if not host_allowed(headers, allowed):
                    await respond(stream, 421, b"unexpected Host header\n", True, "text/plain")
                    return
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                path = target.split("?", 1)[0]
                if method not in ("GET", "HEAD"):
                    # Its body (if any) is never read: close rather than parse it as the next request.
                    await respond(stream, 405, b"GET only: try GET /metrics\n", True, "text/plain")
                    return
                if path not in ("/metrics", "/"):
                    await respond(stream, 404, b"try GET /metrics\n", close, "text/plain")
                elif path == "/":
                    await respond(stream, 200, b'<a href="/metrics">/metrics</a>\n', close, "text/html")
                else:
                    try:
                        text = await anyio.to_thread.run_sync(render)
                        body, status = text.encode(), 200
                    except Exception as exc:  # a bad ledger must not kill the exporter
                        body, status = f"cannot read the ledger: {exc}\n".encode(), 500
                    await respond(stream, status, b"" if method == "HEAD" else body, close, CONTENT_TYPE)
                if close:
                    return

    async with listener:
        await listener.serve(guarded(handle, "metrics"))
