"""Forward the OTLP bodies a run's receiver got to the user's own OTLP/HTTP endpoint, as they came.

Claude is pointed at the receiver with the user's own protocol (`http/json` or `http/protobuf`), so
every body is forwarded unchanged, with the Content-Type it arrived with. gRPC cannot be: a user
whose exporter speaks grpc keeps their settings untouched and the run gets no built-in receiver
(see `plan.py`).

Bodies are queued and sent by one daemon thread with urllib, so a slow or dead collector never
delays the receiver's answer to Claude; `close()` waits a bounded time for the queue to drain.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

SEND_TIMEOUT_S = 5.0


def parse_headers(value: str) -> dict[str, str]:
    """`OTEL_EXPORTER_OTLP_HEADERS`: comma-separated key=value pairs, values URL-encoded."""
    out: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(val.strip())
    return out


def signal_url(env: Mapping[str, str], signal: str) -> str | None:
    """The user's URL for one signal (`metrics`/`logs`), as the OTLP exporter spec resolves it."""
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific  # used as-is
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return None
    return base.rstrip("/") + f"/v1/{signal}"


def signal_headers(env: Mapping[str, str], signal: str) -> dict[str, str]:
    headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    headers.update(parse_headers(env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS", "")))
    return headers


@dataclass
class Forwarder:
    targets: dict[str, tuple[str, dict[str, str]]]  # signal -> (url, headers)
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[str, bytes, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="claude-run-otlp-forward", daemon=True)
        self._thread.start()

    @classmethod
    def from_env(cls, env: Mapping[str, str], signals: tuple[str, ...]) -> Forwarder | None:
        targets: dict[str, tuple[str, dict[str, str]]] = {}
        for sig in signals:
            url = signal_url(env, sig)
            if url:
                targets[sig] = (url, signal_headers(env, sig))
        return cls(targets) if targets else None

    def submit(self, signal: str, body: bytes, content_type: str = "application/json") -> None:
        if signal in self.targets:
            self._queue.put((signal, body, content_type))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            signal, body, content_type = item
            url, headers = self.targets[signal]
            req = urllib.request.Request(url, data=body, method="POST")
            req.add_header("Content-Type", content_type)
            for key, value in headers.items():
                req.add_header(key, value)
            try:
                with urllib.request.urlopen(req, timeout=SEND_TIMEOUT_S) as resp:
                    resp.read()
                self.sent += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.failed += 1
                if len(self.errors) < 3:
                    self.errors.append(f"{signal} → {url}: {getattr(exc, 'reason', exc)}")

    def close(self, timeout: float = 2.0) -> None:
        """Stop after the queue drains, waiting at most `timeout` seconds."""
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {"sent": self.sent, "failed": self.failed}
        pending = self._queue.qsize()
        if pending:
            out["dropped"] = pending
        if self.errors:
            out["errors"] = list(self.errors)
        return out
