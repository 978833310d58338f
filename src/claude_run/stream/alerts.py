"""`--warn-context PCT` / `--warn-quota PCT`: one warning when a run crosses a line, and a note.

Checked after each event that can move the figures (a request's usage, a rate_limit_event); each
line warns once per run: the context once, each quota window once.
"""

from __future__ import annotations

from .events import AssistantEvent, Event, RateLimitEvent, StreamEvent
from .usage import UsageFolder

WINDOW_NAMES = {
    "five_hour": "5-hour",
    "seven_day": "7-day",
    "seven_day_overage_included": "7-day (overage included)",
    "seven_day_opus": "7-day Opus",
    "seven_day_sonnet": "7-day Sonnet",
    "overage": "overage",
}


def window_label(name: str) -> str:
    return WINDOW_NAMES.get(name, name)


class Alerts:
    def __init__(self, warn_context: float | None, warn_quota: float | None) -> None:
        self.warn_context = warn_context
        self.warn_quota = warn_quota
        self.fired: set[str] = set()
        self.notes: list[str] = []

    @property
    def active(self) -> bool:
        return self.warn_context is not None or self.warn_quota is not None

    def check(self, event: Event, folder: UsageFolder) -> list[str]:
        """The warning lines this event makes due (usually none); their notes are kept in `notes`."""
        out: list[str] = []
        if self.warn_context is not None and isinstance(event, (AssistantEvent, StreamEvent)):
            pct = folder.context_pct()
            if pct is not None and pct >= self.warn_context and "context" not in self.fired:
                self.fired.add("context")
                model = folder.context_model or "the model"
                text = (
                    f"context at {pct:g}% of {model}'s window "
                    f"({folder.context_tokens:,} tokens; --warn-context {self.warn_context:g})"
                )
                out.append(text)
        if self.warn_quota is not None and isinstance(event, RateLimitEvent):
            for window in event.windows:
                if window.utilization is None or window.name in self.fired:
                    continue
                pct = round(window.utilization * 100, 1)
                if pct >= self.warn_quota:
                    self.fired.add(window.name)
                    out.append(
                        f"{window_label(window.name)} quota at {pct:g}% (--warn-quota {self.warn_quota:g})"
                    )
        self.notes += out
        return out
