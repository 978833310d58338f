"""The built-in receiver's part in one tracked -p run: serve, wait for the final flush, fill the record.

When the record's telemetry is complete: Claude Code exports every 5 s (OTEL_*_EXPORT_INTERVAL) and
flushes at exit, awaiting our answer, so by the time the child has exited its last bodies are usually
already folded. `settle()` then returns at once when telemetry's totals equal the `result` event's;
otherwise it waits for more bodies while they keep coming (each within `QUIET_S`), at most
`SETTLE_LIMIT_S` in all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .plan import Plan

SETTLE_LIMIT_S = 1.5
QUIET_S = 0.1

Expected = Callable[[], tuple[Mapping[str, Any], float | None] | None]


class RunTelemetry:
    def __init__(self, plan: Plan, env: Mapping[str, str]) -> None:
        from .inbound.collector import Collector

        self.plan = plan
        self.env = dict(env)
        self.collector = Collector()
        self.receiver: Any = None
        self.forwarder: Any = None
        self.settle_ms: float = 0.0

    @property
    def endpoint(self) -> str | None:
        return self.plan.endpoint

    async def serve(self) -> None:
        """Serve until cancelled (the session's watcher task group cancels it)."""
        from .inbound.receiver import Receiver

        fd = self.plan.take_fd()
        if fd is None:
            return
        if self.plan.forward_signals:
            from .outbound.forward import Forwarder

            self.forwarder = Forwarder.from_env(self.env, self.plan.forward_signals)
        on_raw = self.forwarder.submit if self.forwarder is not None else None
        self.receiver = Receiver(self.collector.feed, on_raw=on_raw)
        await self.receiver.serve(fd)

    async def settle(self, expected: Expected, limit: float = SETTLE_LIMIT_S) -> None:
        """After the child exited: wait (bounded) until the final flush has been folded in."""
        import anyio

        from .inbound.collector import agrees

        t0 = anyio.current_time()
        deadline = t0 + limit
        try:
            while self.receiver is not None:
                want = expected()
                if (
                    want is not None
                    and not self.collector.empty
                    and agrees(self.collector.detail(), want[0], want[1])
                ):
                    return
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    return
                if not await self.receiver.wait_for_body(min(remaining, QUIET_S)):
                    # Quiet: Claude Code sends its final flush before it exits, so nothing more is coming.
                    return
        finally:
            self.settle_ms = (anyio.current_time() - t0) * 1000

    def close(self) -> None:
        self.plan.close()
        if self.forwarder is not None:
            self.forwarder.close()

    def record_fields(self, tokens: Mapping[str, Any] | None, cost_usd: float | None) -> dict[str, Any]:
        """`telemetry` and `telemetry_agrees` for the record, or a note when nothing arrived."""
        from .inbound.collector import agrees

        out: dict[str, Any] = {}
        notes: list[str] = []
        if self.collector.empty:
            notes.append("telemetry never arrived at the built-in receiver; usage is from claude's output")
        else:
            detail = self.collector.detail()
            detail["wait_ms"] = round(self.settle_ms, 1)  # time spent after exit waiting for the flush
            if self.forwarder is not None:
                detail["forwarded"] = self.forwarder.summary()
            out["telemetry"] = detail
            out["telemetry_agrees"] = agrees(detail, tokens, cost_usd)
        if self.forwarder is not None and self.forwarder.failed:
            notes.append(f"forwarding telemetry to your OTLP endpoint failed {self.forwarder.failed} time(s)")
        if notes:
            out["notes"] = notes
        return out
