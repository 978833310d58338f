"""A scripted mock of the Anthropic Messages API, for driving the real Claude Code CLI in tests.

Usage::

    script = [tool_use("Bash", {"command": "echo tool-ran"}, usage=Usage(input=85, output=19)),
              text("done", usage=Usage(input=122, cache_creation_5m=1539, output=26))]
    with MockAnthropic(script) as api:
        run = run_claude(claude_bin, "hi", home=home, api_url=api.url, args=["--allowedTools", "Bash"])
        assert run.model_usage() == api.usage_by_model()
        assert run.result["total_cost_usd"] == pytest.approx(api.list_cost())

Every ``POST /v1/messages`` takes the next planned reply of the script, in arrival order, whether the
request asks for a stream or not.  ``api.requests`` logs every HTTP request (any path); ``api.served``
lists the usage figures the mock returned, one entry per message reply, in order (a stream cut short
after ``message_start`` is listed with ``complete=False`` and ``output=1``, what the client was told).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

JsonObject = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------
# Usage figures and prices
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply (or a sum of replies), as the Messages API reports them."""

    input: int = 0
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    cache_read: int = 0
    output: int = 0

    @property
    def cache_creation(self) -> int:
        """All cache-write tokens, both TTLs."""
        return self.cache_creation_5m + self.cache_creation_1h

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input=self.input + other.input,
            cache_creation_5m=self.cache_creation_5m + other.cache_creation_5m,
            cache_creation_1h=self.cache_creation_1h + other.cache_creation_1h,
            cache_read=self.cache_read + other.cache_read,
            output=self.output + other.output,
        )

    def start_json(self) -> JsonObject:
        """The ``usage`` object of ``message_start``: input side final, output_tokens a placeholder 1."""
        return {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_creation_5m,
                "ephemeral_1h_input_tokens": self.cache_creation_1h,
            },
            "output_tokens": 1,
        }

    def final_json(self) -> JsonObject:
        """The ``usage`` object of a complete (non-streamed) message."""
        return {**self.start_json(), "output_tokens": self.output}

    @classmethod
    def from_model_usage(cls, entry: JsonObject) -> Usage:
        """Read one entry of a ``result`` event's ``modelUsage`` (camelCase token fields)."""
        return cls(
            input=entry["inputTokens"],
            cache_creation_5m=entry["cacheCreationEphemeral5mInputTokens"],
            cache_creation_1h=entry["cacheCreationEphemeral1hInputTokens"],
            cache_read=entry["cacheReadInputTokens"],
            output=entry["outputTokens"],
        )

    def model_usage_json(self) -> JsonObject:
        """The token fields of one entry of a ``result`` event's ``modelUsage``, for comparison."""
        return {
            "inputTokens": self.input,
            "outputTokens": self.output,
            "cacheReadInputTokens": self.cache_read,
            "cacheCreationInputTokens": self.cache_creation,
            "cacheCreationEphemeral5mInputTokens": self.cache_creation_5m,
            "cacheCreationEphemeral1hInputTokens": self.cache_creation_1h,
        }


@dataclass(frozen=True)
class Price:
    """List prices in USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    def cost(self, usage: Usage) -> float:
        """USD cost of ``usage`` at these prices."""
        return (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_creation_5m * self.cache_write_5m
            + usage.cache_creation_1h * self.cache_write_1h
            + usage.cache_read * self.cache_read
        ) / 1_000_000


#: List prices Claude Code 2.1.330 bills these models at (sonnet and haiku checked against its ``costUSD``).
LIST_PRICES: dict[str, Price] = {
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 6.0, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 2.0, 0.10),
    "claude-opus-4-1": Price(15.0, 75.0, 18.75, 30.0, 1.50),
}


def list_cost(model: str, usage: Usage) -> float:
    """USD list-price cost of ``usage`` on ``model`` (a key of :data:`LIST_PRICES`, date suffix allowed)."""
    return LIST_PRICES[re.sub(r"-\d{8}$", "", model)].cost(usage)


# ---------------------------------------------------------------------------------------------------------
# Planned replies
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Common timing options of a planned reply.

    ``delay``: seconds to wait before sending the response headers (a slow first byte).
    ``stall``: seconds to wait right after ``message_start`` (usage already sent) before the rest of
    the stream; streamed message replies only.  Both sleeps end early when the mock shuts down.
    ``for_model``: when set, only a request asking for this model takes the reply; a request takes the
    first unconsumed reply whose ``for_model`` is unset or equal to its model.  Use it when a main
    thread and a background subagent call the API concurrently.
    """

    delay: float = field(default=0.0, kw_only=True)
    stall: float = field(default=0.0, kw_only=True)
    for_model: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class MessageReply(Reply):
    """A successful message: content blocks (built by subclasses) with explicit usage."""

    usage: Usage = field(default_factory=Usage, kw_only=True)
    model: str | None = field(default=None, kw_only=True)
    """Model to report; ``None`` echoes the model the request asked for."""
    stop_reason: str | None = field(default=None, kw_only=True)
    """``None`` picks ``tool_use`` when the reply has a tool_use block, else ``end_turn``."""
    drop: bool = field(default=False, kw_only=True)
    """Streamed replies: close the connection right after ``message_start`` (and ``stall``).

    Claude Code then retries, and still counts the dropped message's ``message_start`` usage (with
    its placeholder ``output_tokens: 1``); :attr:`MockAnthropic.served` records exactly that.
    """

    def blocks(self) -> list[JsonObject]:
        """The complete content blocks of the message."""
        raise NotImplementedError

    def effective_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(b["type"] == "tool_use" for b in self.blocks()) else "end_turn"


@dataclass(frozen=True)
class TextReply(MessageReply):
    """An assistant message with one text block."""

    text: str = "mock answer"

    def blocks(self) -> list[JsonObject]:
        return [{"type": "text", "text": self.text}]


@dataclass(frozen=True)
class ToolUseReply(MessageReply):
    """An assistant message asking for one tool call, optionally preceded by a text block."""

    name: str = "Bash"
    input: JsonObject = field(default_factory=dict)
    text: str | None = None
    tool_id: str | None = None
    """The tool_use id; ``None`` generates a fresh ``toolu_...`` id."""

    def blocks(self) -> list[JsonObject]:
        tool_id = self.tool_id or f"toolu_{uuid.uuid4().hex[:24]}"
        call: JsonObject = {"type": "tool_use", "id": tool_id, "name": self.name, "input": self.input}
        return ([{"type": "text", "text": self.text}] if self.text is not None else []) + [call]


@dataclass(frozen=True)
class ErrorReply(Reply):
    """An HTTP error with an Anthropic error body: ``{"type": "error", "error": {type, message}}``."""

    status: int = 500
    error_type: str = "api_error"
    message: str = "mock error"
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"x-should-retry": "false"}`` or ``{"retry-after": "0"}``."""

    def body(self) -> JsonObject:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


def text(message: str = "mock answer", *, usage: Usage | None = None, **options: Any) -> TextReply:
    """Plan a text reply."""
    return TextReply(text=message, usage=usage or Usage(), **options)


def tool_use(
    name: str, tool_input: JsonObject, *, usage: Usage | None = None, **options: Any
) -> ToolUseReply:
    """Plan a tool_use reply, e.g. ``tool_use("Bash", {"command": "echo tool-ran"})``."""
    return ToolUseReply(name=name, input=tool_input, usage=usage or Usage(), **options)


def error(status: int, error_type: str, message: str = "mock error", **options: Any) -> ErrorReply:
    """Plan an HTTP error, e.g. ``error(529, "overloaded_error")``."""
    return ErrorReply(status=status, error_type=error_type, message=message, **options)


def invalid_request(message: str = "mock invalid request", **options: Any) -> ErrorReply:
    """A 400 ``invalid_request_error``.

    Claude Code 2.1.330 answers a plain 400 by retrying without some beta features: six requests in all
    (plan six, or use ``when_done="repeat"``).  A message starting with ``prompt is too long`` is
    handled as a context overflow instead: one request.
    """
    return error(400, "invalid_request_error", message, **options)


def overloaded(message: str = "Overloaded", **options: Any) -> ErrorReply:
    """A 529 ``overloaded_error`` (retried with backoff, ~0.5 s then doubling, unless ``x-should-retry``)."""
    return error(529, "overloaded_error", message, **options)


def server_error(message: str = "Internal server error", **options: Any) -> ErrorReply:
    """A 500 ``api_error`` (retried like 529)."""
    return error(500, "api_error", message, **options)


#: Headers that make Claude Code give up on an error at once instead of retrying.
NO_RETRY = {"x-should-retry": "false"}


def unified_ratelimit_headers(
    *,
    five_hour: float = 0.81,
    seven_day: float = 0.33,
    five_hour_reset: int | None = None,
    seven_day_reset: int | None = None,
    five_hour_status: str = "allowed_warning",
    seven_day_status: str = "allowed",
    status: str = "allowed",
    claim: str = "five_hour",
    now: float | None = None,
) -> dict[str, str]:
    """The ``anthropic-ratelimit-unified-*`` headers a subscription (OAuth) login's responses carry.

    Utilizations are fractions of the window; resets are epoch seconds (default: in 1 hour for the
    5-hour window, in 3 days for the 7-day one).  Claude Code 2.1.330 turns them into a
    ``rate_limit_event`` on stream-json when it runs on ``CLAUDE_CODE_OAUTH_TOKEN``; with an API key
    it ignores them (shared/samples: stream-ratelimit-oauth.jsonl).
    """
    t = time.time() if now is None else now
    five_reset = five_hour_reset if five_hour_reset is not None else int(t) + 3600
    seven_reset = seven_day_reset if seven_day_reset is not None else int(t) + 3 * 86400
    prefix = "anthropic-ratelimit-unified-"
    return {
        prefix + "status": status,
        prefix + "5h-utilization": repr(five_hour),
        prefix + "5h-reset": str(five_reset),
        prefix + "5h-status": five_hour_status,
        prefix + "7d-utilization": repr(seven_day),
        prefix + "7d-reset": str(seven_reset),
        prefix + "7d-status": seven_day_status,
        prefix + "representative-claim": claim,
        prefix + "reset": str(five_reset if claim == "five_hour" else seven_reset),
        prefix + "fallback": "unavailable",
    }


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One HTTP request the mock received, and what it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Request headers, names lower-cased."""
    body: Any
    """The request body parsed as JSON, the raw text when it is not JSON, ``None`` when empty."""
    received_at: float
    """``time.time()`` when the request arrived."""
    model: str | None = None
    """The model the request asked for (``body["model"]``)."""
    streamed: bool = False
    """True when the request asked for a stream (``"stream": true``)."""
    status: int | None = None
    """HTTP status answered (``None`` when the connection closed first)."""
    reply: Reply | None = None
    """The planned reply it consumed (``/v1/messages`` only)."""
    served: Served | None = None
    """The usage it returned (message replies only)."""
    completed: bool = False
    """True when the whole response was written."""
    finished_at: float | None = None


@dataclass(frozen=True)
class Served:
    """Usage figures one message reply actually returned to the client."""

    model: str
    """The model reported in the reply."""
    usage: Usage
    """For a stream cut short after ``message_start``, the input side and ``output=1`` (what was sent)."""
    streamed: bool
    complete: bool
    """False when the stream was cut short (``drop``, shutdown or client gone)."""
    request_index: int
    """Index of the request in :attr:`MockAnthropic.requests`."""


class ScriptExhausted(Exception):
    """No planned reply left for a request (under ``when_done="error"``)."""


# ---------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------

WhenDone = Literal["repeat", "error"]


class MockAnthropic:
    """A threaded mock of the Messages API on 127.0.0.1, ephemeral port; a context manager.

    ``script``: planned replies, consumed in order by ``POST /v1/messages`` (any query string, streamed
    or not; see :attr:`Reply.for_model` for routing by model).
    ``when_done``: the answer once the script is used up: ``"repeat"`` the last reply taken, or
    ``"error"`` (default): a 400 ``invalid_request_error`` "mock: script exhausted" with
    ``x-should-retry: false`` (Claude Code then still retries it five times without betas, see
    :func:`invalid_request`).
    ``delta_usage``: ``"output"`` (default) puts only ``output_tokens`` in ``message_delta``'s usage,
    as the samples in shared/ were recorded; ``"full"`` repeats the input-side figures there, as the
    live API does nowadays.
    ``ratelimit_headers``: extra headers on every ``/v1/messages`` answer (message or error), e.g.
    :func:`unified_ratelimit_headers` to act as a subscription login's API; a callable is asked
    for them afresh on each request (to move the utilization as a test goes).

    Other routes: ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}``; ``GET|HEAD
    /api/hello`` (Claude Code's connectivity probe, sent unless nonessential traffic is disabled)
    answers 200; anything else a 404 ``not_found_error``.  Every request is logged in ``requests``.
    """

    def __init__(
        self,
        script: Sequence[Reply] = (),
        *,
        when_done: WhenDone = "error",
        delta_usage: Literal["output", "full"] = "output",
        ratelimit_headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self._script: list[Reply] = list(script)
        self.ratelimit_headers = ratelimit_headers
        self._used: set[int] = set()
        self._last: Reply | None = None
        self.when_done: WhenDone = when_done
        self.delta_usage = delta_usage
        self.requests: list[RequestRecord] = []
        """Every request received, in arrival order."""
        self.served: list[Served] = []
        """Usage returned by each message reply, in the order the replies were sent."""
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> MockAnthropic:
        """Bind an ephemeral port and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("MockAnthropic already started")
        self._closing.clear()
        self._server = _Server(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="mock-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: wake delayed replies, drop open keep-alive connections, free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public state ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MockAnthropic not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for ``ANTHROPIC_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def extend(self, replies: Iterable[Reply]) -> None:
        """Append planned replies to the script (safe while serving)."""
        with self._lock:
            self._script.extend(replies)

    @property
    def remaining(self) -> int:
        """Planned replies not yet taken."""
        with self._lock:
            return len(self._script) - len(self._used)

    def messages_requests(self) -> list[RequestRecord]:
        """The logged ``POST /v1/messages`` requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def usage_by_model(self) -> dict[str, Usage]:
        """Sum of :attr:`served` usage per model, in order of first appearance."""
        totals: dict[str, Usage] = {}
        with self._lock:
            for item in self.served:
                totals[item.model] = totals.get(item.model, Usage()) + item.usage
        return totals

    def total_usage(self) -> Usage:
        """Sum of all :attr:`served` usage."""
        with self._lock:
            return sum((s.usage for s in self.served), Usage())

    def list_cost(self) -> float:
        """List-price USD cost of everything served (each model must be in :data:`LIST_PRICES`)."""
        return sum(list_cost(model, usage) for model, usage in self.usage_by_model().items())

    # -- used by the handler --------------------------------------------------------------------------

    def _take_reply(self, model: str | None) -> Reply:
        with self._lock:
            for i, reply in enumerate(self._script):
                if i not in self._used and reply.for_model in (None, model):
                    self._used.add(i)
                    self._last = reply
                    return reply
            if self.when_done == "repeat" and self._last is not None:
                return self._last
        raise ScriptExhausted

    def _log(self, record: RequestRecord) -> int:
        with self._lock:
            self.requests.append(record)
            return len(self.requests) - 1

    def _serve(self, record: RequestRecord, served: Served) -> None:
        with self._lock:
            record.served = served
            self.served.append(served)

    def _reserve(self, record: RequestRecord, served: Served) -> None:
        """Replace what ``record`` is recorded as having served (a stream that got further, or less far)."""
        with self._lock:
            if record.served is not None:
                self.served[self.served.index(record.served)] = served
            else:
                self.served.append(served)
            record.served = served

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False when the mock is shutting down."""
        if seconds <= 0:
            return not self._closing.is_set()
        return not self._closing.wait(seconds)

    def _message_id(self) -> str:
        return f"msg_mock{next(self._ids):04d}{uuid.uuid4().hex[:12]}"

    def _limit_headers(self) -> dict[str, str]:
        source = self.ratelimit_headers
        if source is None:
            return {}
        return dict(source() if callable(source) else source)


#: The type of the ``mock_api`` fixture: ``mock_api(script, **options) -> MockAnthropic`` (started).
MockApiFactory = Callable[..., MockAnthropic]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], mock: MockAnthropic) -> None:
        self.mock = mock
        super().__init__(address, _Handler)


_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the CLI's HTTP client expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: ``MockAnthropic.requests`` is the log."""

    def setup(self) -> None:
        super().setup()
        with self.server.mock._lock:
            self.server.mock._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.mock._lock:
            self.server.mock._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (*_DISCONNECTS, TimeoutError):
            self.close_connection = True

    # -- dispatch -------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        mock = self.server.mock
        parts = urlsplit(self.path)
        record = RequestRecord(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
            received_at=time.time(),
        )
        if isinstance(record.body, dict):
            model = record.body.get("model")
            record.model = model if isinstance(model, str) else None
            record.streamed = record.body.get("stream") is True
        index = mock._log(record)
        try:
            if self.command == "POST" and parts.path == "/v1/messages":
                self._messages(index, record)
            elif self.command == "POST" and parts.path == "/v1/messages/count_tokens":
                size = len(json.dumps(record.body))
                self._send_json(record, 200, {"input_tokens": max(1, size // 4)})
            elif self.command in ("GET", "HEAD") and parts.path == "/api/hello":
                self._send_json(record, 200, {"message": "hello"})
            else:
                not_found = ErrorReply(
                    status=404, error_type="not_found_error", message=f"mock: no {parts.path}"
                )
                self._send_json(record, 404, not_found.body())
        finally:
            if record.finished_at is None:
                record.finished_at = time.time()
            if not record.completed:
                self.close_connection = True

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    # -- /v1/messages ---------------------------------------------------------------------------------

    def _messages(self, index: int, record: RequestRecord) -> None:
        """Answer with the next planned reply."""
        mock = self.server.mock
        try:
            reply = mock._take_reply(record.model)
        except ScriptExhausted:
            reply = ErrorReply(
                status=400,
                error_type="invalid_request_error",
                message="mock: script exhausted",
                headers=NO_RETRY,
            )
        record.reply = reply
        if not mock._sleep(reply.delay):
            return
        if isinstance(reply, ErrorReply):
            self._send_json(record, reply.status, reply.body(), {**mock._limit_headers(), **reply.headers})
            return
        assert isinstance(reply, MessageReply)
        model = reply.model or record.model or "claude-sonnet-4-5"
        message: JsonObject = {
            "id": mock._message_id(),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": reply.blocks(),
            "stop_reason": reply.effective_stop_reason(),
            "stop_sequence": None,
            "usage": reply.usage.final_json(),
        }
        if record.streamed:
            self._stream(index, record, reply, message)
        else:
            served = Served(model, reply.usage, False, True, index)
            self._send_json(record, 200, message, mock._limit_headers(), served=served)

    def _stream(self, index: int, record: RequestRecord, reply: MessageReply, message: JsonObject) -> None:
        """Write ``message`` as server-sent events, recording what usage reached the client."""
        mock = self.server.mock
        model = message["model"]
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("request-id", _request_id())
            for key, value in mock._limit_headers().items():
                self.send_header(key, value)
            record.status = 200
            self.end_headers()
            start = {**message, "content": [], "stop_reason": None, "usage": reply.usage.start_json()}
            self._event("message_start", {"type": "message_start", "message": start})
        except _DISCONNECTS:
            return
        served = Served(model, replace(reply.usage, output=1), True, False, index)
        mock._serve(record, served)
        if reply.drop or not mock._sleep(reply.stall):
            return
        try:
            self._event("ping", {"type": "ping"})
            for i, block in enumerate(message["content"]):
                for event in _block_events(i, block):
                    self._event(event["type"], event)
            delta_usage: JsonObject = {"output_tokens": reply.usage.output}
            if mock.delta_usage == "full":
                delta_usage = {k: v for k, v in reply.usage.final_json().items() if k != "cache_creation"}
            delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
            self._event("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
        except _DISCONNECTS:
            return
        # Account for the whole reply before its last bytes leave, so a client that has read the whole
        # response always finds it recorded.
        mock._reserve(record, Served(model, reply.usage, True, True, index))
        record.completed = True
        record.finished_at = time.time()
        try:
            self._chunk(_sse("message_stop", {"type": "message_stop"}), end=True)
        except _DISCONNECTS:
            record.completed = False
            mock._reserve(record, served)

    # -- writing --------------------------------------------------------------------------------------

    def _event(self, name: str, data: JsonObject) -> None:
        self._chunk(_sse(name, data))

    def _chunk(self, payload: bytes, *, end: bool = False) -> None:
        """Write one chunk of a chunked body; ``end`` appends the terminating empty chunk."""
        data = f"{len(payload):x}\r\n".encode() + payload + b"\r\n" + (b"0\r\n\r\n" if end else b"")
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(
        self,
        record: RequestRecord,
        status: int,
        payload: JsonObject,
        headers: dict[str, str] | None = None,
        *,
        served: Served | None = None,
    ) -> None:
        """Write a JSON response, recording it (and ``served``) before its last bytes leave."""
        mock = self.server.mock
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _request_id())
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        record.status = status
        try:
            if self.command != "HEAD":
                self.end_headers()
            if served is not None:
                mock._serve(record, served)
            record.completed = True
            record.finished_at = time.time()
            if self.command == "HEAD":
                self.end_headers()
            else:
                self.wfile.write(data)
            self.wfile.flush()
        except _DISCONNECTS:
            record.completed = False
            if served is not None:
                mock._reserve(record, replace(served, complete=False))


def _sse(name: str, data: JsonObject) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _request_id() -> str:
    return f"req_mock{uuid.uuid4().hex[:16]}"


def _block_events(index: int, block: JsonObject) -> Iterator[JsonObject]:
    """``content_block_start/delta/stop`` events streaming one content block."""
    if block["type"] == "text":
        yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
        yield {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": block["text"]},
        }
    elif block["type"] == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield {"type": "content_block_start", "index": index, "content_block": start}
        arguments = json.dumps(block["input"])
        cut = len(arguments) // 2  # two pieces, as the live API splits tool input across deltas
        for piece in (arguments[:cut], arguments[cut:]):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    else:
        raise ValueError(f"unsupported content block type {block['type']!r}")
    yield {"type": "content_block_stop", "index": index}


__all__ = [
    "LIST_PRICES",
    "NO_RETRY",
    "ErrorReply",
    "MessageReply",
    "MockAnthropic",
    "MockApiFactory",
    "Price",
    "Reply",
    "RequestRecord",
    "Served",
    "TextReply",
    "ToolUseReply",
    "Usage",
    "error",
    "invalid_request",
    "list_cost",
    "overloaded",
    "server_error",
    "text",
    "tool_use",
    "unified_ratelimit_headers",
]
