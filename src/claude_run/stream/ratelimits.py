"""The subscription quota as Claude reported it during a run: the last state of each window.

Claude Code emits a `rate_limit_event` (see `events.RateLimitEvent`) on an OAuth (Pro/Max) login
whenever the API's `anthropic-ratelimit-unified-*` headers change; with an API key it emits none.
Each window (`five_hour`, `seven_day`, `seven_day_overage_included`...) keeps the state of the last
event that carried it, stamped with when claude-run saw that event (the event has no time of its own).
"""

from __future__ import annotations

from ..record.schema import QuotaWindow, RateLimits, iso_utc
from .events import RateLimitEvent, WindowState

# The plan quota windows Claude reports (`rate_limit_event`, `unifiedWindows`).
FIVE_HOUR = "five_hour"
SEVEN_DAY = "seven_day"


class RateLimitTracker:
    """Folds rate_limit_events; one dict update per event, nothing per other event."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[WindowState, float]] = {}
        self.last: RateLimitEvent | None = None
        self.seen_at: float | None = None

    def feed(self, event: RateLimitEvent, now: float) -> None:
        self.last = event
        self.seen_at = now
        for window in event.windows:
            self.windows[window.name] = (window, now)

    def utilization(self, name: str) -> float | None:
        entry = self.windows.get(name)
        return entry[0].utilization if entry is not None else None

    def field(self) -> RateLimits | None:
        """The record's `rate_limits`, or None when Claude reported none (API key, Bedrock...)."""
        if self.last is None or self.seen_at is None:
            return None
        windows: dict[str, QuotaWindow] = {}
        for name, (w, seen) in self.windows.items():
            windows[name] = {
                "utilization": w.utilization,
                "resets_at": iso_utc(w.resets_at) if w.resets_at is not None else None,
                "status": w.status,
                "seen_at": iso_utc(seen),
            }
        return {
            "seen_at": iso_utc(self.seen_at),
            "status": self.last.status,
            "limiting": self.last.limiting,
            "overage": self.last.overage,
            "windows": windows,
        }
