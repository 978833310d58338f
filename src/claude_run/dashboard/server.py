"""A small HTTP server on anyio (no web framework): the page, a JSON view, and server-sent events.

Routes (GET/HEAD only):
- `/`            the page, server-rendered for the filters in the query string
- `/api/view`    the view model as JSON (`?period=&project=&model=&tag=`; `period` in the CLI's
                 date words: 30d, this-month, last-quarter, 2026-01-01..2026-01-31, all)
- `/events`      text/event-stream: an `event: view` with the rendered fragments now, then again
                 every time the ledger changes (the server polls file sizes; the browser never polls)

One watcher task stats the ledger files every `poll` seconds and, when they changed, reopens the
shared `Live` engine (the index plus the appended tail); each SSE client then renders its own
filters from it. The Host header must name the address we listen on, so a web page elsewhere
cannot read the ledger through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import orjson

from ..errors import ClaudeRunError, UsageError
from ..httpd import Conn, HttpError, allowed_hosts, guarded, host_allowed, parse_head, response_head
from .data import LATEST_SHOWN, Budgets, Filters, Live, parse_filters
from .page import document
from .render import content, filter_form, options_signature

MAX_HEAD = 16 * 1024
HEARTBEAT_S = 15.0
READ_STEP = 64 * 1024 * 1024  # a larger ledger is opened after listening (the page says it is reading)
HEAD_TIMEOUT_S = 10.0


@dataclass
class Hub:
    """The shared engine and a broadcast 'it changed' signal (an Event replaced on every change)."""

    live: Live
    latest: int = LATEST_SHOWN
    version: int = 0
    changed: anyio.Event = field(default_factory=anyio.Event)

    def bump(self) -> None:
        self.version += 1
        old, self.changed = self.changed, anyio.Event()
        old.set()


async def watch(hub: Hub, poll: float) -> None:
    today = date.today()
    complained = False
    while True:
        # A big ledger not read before listening is read at once; after that, look every `poll` s.
        await anyio.sleep(0 if hub.live.behind and not complained else poll)
        try:
            changed = await anyio.to_thread.run_sync(hub.live.refresh)
            complained = False
        except (ClaudeRunError, OSError) as exc:
            # e.g. the ledger became a symlink or unreadable: keep serving what we have, say so once.
            if not complained:
                message = exc.message if isinstance(exc, ClaudeRunError) else str(exc)
                sys.stderr.write(f"claude-run dashboard: {message}\n")
                complained = True
            continue
        if date.today() != today:  # a new day: "the last 7 days" moved even if no run came
            today = date.today()
            changed = True
        if changed:
            hub.bump()


def _filters(query: dict[str, list[str]]) -> Filters:
    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    return parse_filters(one("period"), one("project"), one("model"), one("tag"))


def _response(status: int, ctype: str, body: bytes, *, head: bool = False, extra: str = "") -> bytes:
    extra = (
        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
        + extra
    )
    return response_head(status, ctype, len(body), close=True, extra=extra) + (b"" if head else body)


async def _view_event(hub: Hub, filters: Filters) -> bytes:
    def build() -> bytes:
        view = hub.live.view(filters, latest=hub.latest)
        payload = {
            "content": content(view),
            "filters": filter_form(view),
            "sig": options_signature(view),
            "records": view["read"]["records"],
        }
        return b"event: view\ndata: " + orjson.dumps(payload) + b"\n\n"

    return await anyio.to_thread.run_sync(build)


async def _events(stream: anyio.abc.ByteStream, hub: Hub, filters: Filters) -> None:
    await stream.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\n"
        b"X-Accel-Buffering: no\r\nConnection: keep-alive\r\n\r\nretry: 2000\n\n"
    )
    while True:
        waiter = hub.changed  # taken before rendering, so a change during rendering is not missed
        await stream.send(await _view_event(hub, filters))
        while True:
            with anyio.move_on_after(HEARTBEAT_S) as scope:
                await waiter.wait()
            if not scope.cancelled_caught:
                break
            await stream.send(b": keep-alive\n\n")  # also tells us when the browser went away


async def handle(stream: anyio.abc.ByteStream, hub: Hub, allowed: set[str] | None) -> None:
    async with stream:
        try:
            with anyio.fail_after(HEAD_TIMEOUT_S):  # an idle or trickling client must not hold a task forever
                raw = await Conn(stream, MAX_HEAD).read_head()
            if raw is None:
                return
            method, target, _, headers = parse_head(raw)
        except HttpError as exc:
            if exc.status == 400:
                await stream.send(_response(400, "text/plain", b"bad request\n"))
            return
        except (OSError, TimeoutError):
            return
        is_head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await stream.send(_response(405, "text/plain", b"GET only\n", extra="Allow: GET, HEAD\r\n"))
            return
        if not host_allowed(headers, allowed):
            await stream.send(_response(421, "text/plain", b"unexpected Host header\n"))
            return
        url = urlsplit(target)
        try:
            filters = _filters(parse_qs(url.query))
        except UsageError as exc:
            await stream.send(_response(400, "text/plain; charset=utf-8", exc.message.encode() + b"\n"))
            return
        if url.path == "/":
            view = await anyio.to_thread.run_sync(lambda: hub.live.view(filters, latest=hub.latest))
            body = document(view, live=True).encode()
            await stream.send(_response(200, "text/html; charset=utf-8", body, head=is_head))
        elif url.path == "/api/view":
            view = await anyio.to_thread.run_sync(lambda: hub.live.view(filters, latest=hub.latest))
            await stream.send(_response(200, "application/json", orjson.dumps(view), head=is_head))
        elif url.path == "/events" and not is_head:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await _events(stream, hub, filters)
        elif url.path == "/favicon.ico":
            await stream.send(_response(204, "text/plain", b"", head=True))
        else:
            await stream.send(_response(404, "text/plain", b"not found\n", head=is_head))


async def serve(
    ledger: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    poll: float = 0.5,
    latest: int = LATEST_SHOWN,
    ready: Callable[[str, bool], Any] | None = None,
    read_step: int = READ_STEP,
    budgets: Budgets | None = None,
) -> None:
    """Read the ledger, listen, and serve until cancelled. `ready(url, behind)` is called once listening."""
    live = Live(ledger, budgets)
    # A small ledger is read before we listen; a huge one after, while the page says it is reading.
    if live.pending_bytes() <= read_step:
        await anyio.to_thread.run_sync(live.refresh)
    hub = Hub(live, latest=latest)
    try:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    allowed = allowed_hosts(host, bound)  # the one rule of every server (httpd)
    shown_host = f"[{host}]" if ":" in host else host
    try:
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(watch, hub, poll)
            if ready is not None:
                ready(f"http://{shown_host}:{bound}/", live.behind)

            async def _serve_one(stream: anyio.abc.ByteStream) -> None:
                await handle(stream, hub, allowed)

            # One client's hang-up, garbage or a view that fails to render ends its connection only.
            await listener.serve(guarded(_serve_one, "dashboard"), task_group=tg)
    finally:
        live.close()
