"""rate_limit_event and compact_boundary parsing, the usage fold's quota/context state, the alerts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from claude_run.stream.alerts import Alerts
from claude_run.stream.contextwin import context_field, table_window
from claude_run.stream.events import CompactEvent, RateLimitEvent, from_dict, parse_line
from claude_run.stream.ratelimits import RateLimitTracker
from claude_run.stream.usage import UsageFolder

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "claude-code-2.1.330"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
window = st.fixed_dictionaries(
    {},
    optional={
        "utilization": st.one_of(st.floats(min_value=0, max_value=3), json_values),
        "resetsAt": st.one_of(st.integers(min_value=0, max_value=4_000_000_000), json_values),
        "status": st.one_of(st.sampled_from(["allowed", "allowed_warning", "rejected"]), json_values),
    },
)
info = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.sampled_from(["allowed", "allowed_warning", "rejected"]), json_values),
        "rateLimitType": st.one_of(st.sampled_from(["five_hour", "seven_day"]), json_values),
        "utilization": json_values,
        "resetsAt": json_values,
        "isUsingOverage": json_values,
        "unifiedWindows": st.one_of(
            st.dictionaries(st.sampled_from(["five_hour", "seven_day", "x"]), st.one_of(window, json_values)),
            json_values,
        ),
    },
)


@given(st.one_of(info, json_values))
def test_any_rate_limit_info_parses_to_clean_fields(raw_info: Any) -> None:
    event = from_dict({"type": "rate_limit_event", "rate_limit_info": raw_info})
    assert isinstance(event, RateLimitEvent)
    for w in event.windows:
        assert isinstance(w.name, str)
        assert w.utilization is None or (math.isfinite(w.utilization) and w.utilization >= 0)
        assert w.resets_at is None or isinstance(w.resets_at, int)
        assert w.status is None or isinstance(w.status, str)
    assert event.overage is None or isinstance(event.overage, bool)
    # Whatever came in, the record field is plain JSON.
    tracker = RateLimitTracker()
    tracker.feed(event, 1_796_460_000.5)
    field = tracker.field()
    assert field is not None
    assert orjson.loads(orjson.dumps(field)) == field


@given(
    st.dictionaries(
        st.sampled_from(["five_hour", "seven_day", "seven_day_overage_included"]),
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=0, max_value=4_000_000_000)),
        min_size=1,
    )
)
def test_well_formed_windows_round_trip(windows: dict[str, tuple[float, int]]) -> None:
    unified = {
        name: {"utilization": u, "resetsAt": r, "status": "allowed"} for name, (u, r) in windows.items()
    }
    line = orjson.dumps(
        {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed", "unifiedWindows": unified}}
    )
    event = parse_line(line)
    assert isinstance(event, RateLimitEvent)
    assert {w.name: (w.utilization, w.resets_at) for w in event.windows} == windows


def test_the_real_sample() -> None:
    folder = UsageFolder(clock=lambda: 1_796_460_000.0)
    for line in (SAMPLES / "stream-ratelimit-oauth.jsonl").read_bytes().splitlines():
        event = parse_line(line)
        assert event is not None
        folder.feed(event)
    field = folder.rate_limits.field()
    assert field is not None
    five, seven = field["windows"]["five_hour"], field["windows"]["seven_day"]
    assert (five["utilization"], five["status"]) == (0.81, "allowed_warning")
    assert five["resets_at"] == "2026-12-05T09:25:44.000Z"  # epoch 1796462744
    assert seven["utilization"] == 0.33
    assert field["limiting"] == "five_hour" and field["overage"] is False
    assert five["seen_at"] == field["seen_at"] == "2026-12-05T08:40:00.000Z"
    context = folder.context_field()
    assert context == {
        "peak_tokens": 48 + 4101 + 1513,
        "model": "claude-sonnet-4-5",
        "window": 200_000,  # the result's modelUsage.contextWindow
        "window_source": "claude",
        "peak_pct": 2.8,
        "compactions": 0,
    }


def test_a_window_missing_from_a_later_event_keeps_its_last_state() -> None:
    tracker = RateLimitTracker()
    first = {"unifiedWindows": {"five_hour": {"utilization": 0.5}, "seven_day": {"utilization": 0.2}}}
    tracker.feed(_rle(first), 100.0)
    tracker.feed(_rle({"unifiedWindows": {"five_hour": {"utilization": 0.6}}}), 200.0)
    field = tracker.field()
    assert field is not None
    assert field["windows"]["five_hour"]["utilization"] == 0.6
    assert field["windows"]["seven_day"]["utilization"] == 0.2
    assert field["windows"]["seven_day"]["seen_at"] < field["windows"]["five_hour"]["seen_at"]


def test_no_unified_windows_uses_the_top_level_only_with_a_utilization() -> None:
    bare = _rle({"status": "allowed", "rateLimitType": "five_hour", "resetsAt": 1_900_000_000})
    assert bare.windows == ()
    top = _rle({"status": "rejected", "rateLimitType": "seven_day", "utilization": 1.0, "resetsAt": 5})
    assert [(w.name, w.utilization, w.status) for w in top.windows] == [("seven_day", 1.0, "rejected")]


def test_compactions_and_peak_context() -> None:
    folder = UsageFolder()
    for mid, ctx in (("a", 150_000), ("b", 190_000), ("c", 40_000)):
        folder.feed(_assistant(mid, ctx))
    folder.feed(
        from_dict(
            {
                "type": "system",
                "subtype": "compact_boundary",
                "compact_metadata": {"trigger": "auto", "pre_tokens": 190_500},
            }
        )
    )
    event = from_dict({"type": "system", "subtype": "compact_boundary", "compact_metadata": "odd"})
    assert isinstance(event, CompactEvent) and event.trigger is None
    folder.feed(event)
    # A subagent's request is not the session's context.
    folder.feed(_assistant("side", 199_000, parent="toolu_1"))
    assert folder.peak_context == 190_000 and folder.context_tokens == 40_000
    assert folder.context_pct() == 20.0
    field = folder.context_field(compactions=1)
    assert field is not None
    assert (field["peak_tokens"], field["peak_pct"], field["window_source"], field["compactions"]) == (
        190_000,
        95.0,
        "table",
        2,  # the stream's two; telemetry's one is the same compaction seen twice
    )


def test_context_window_table() -> None:
    assert table_window("claude-sonnet-4-5") == 200_000
    assert table_window("claude-sonnet-4-5[1m]") == 1_000_000
    assert table_window("gpt-4o") is None and table_window(None) is None
    assert context_field(0, None, 0) is None
    unknown = context_field(5000, "gpt-4o", 0)
    assert unknown is not None and unknown["peak_pct"] is None and unknown["window_source"] is None


def test_alerts_fire_once_per_line() -> None:
    folder = UsageFolder()
    alerts = Alerts(warn_context=50, warn_quota=80)
    fired: list[str] = []
    for mid, ctx in (("a", 90_000), ("b", 110_000), ("c", 150_000)):
        event = _assistant(mid, ctx)
        folder.feed(event)
        fired += alerts.check(event, folder)
    for u in (0.79, 0.81, 0.95):
        event = _rle({"unifiedWindows": {"five_hour": {"utilization": u}, "seven_day": {"utilization": 0.1}}})
        folder.feed(event)
        fired += alerts.check(event, folder)
    assert len(fired) == 2 and "55%" in fired[0] and fired[1].startswith("5-hour quota at 81%")
    assert alerts.notes == fired
    quiet = Alerts(None, None)
    assert not quiet.active


def _rle(info: dict[str, Any]) -> RateLimitEvent:
    event = from_dict({"type": "rate_limit_event", "rate_limit_info": info})
    assert isinstance(event, RateLimitEvent)
    return event


def _assistant(mid: str, ctx: int, parent: str | None = None) -> Any:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": ctx - 110,
        "cache_creation_input_tokens": 100,
        "output_tokens": 1,
    }
    message = {"id": mid, "model": "claude-sonnet-4-5", "content": [], "usage": usage}
    return from_dict({"type": "assistant", "message": message, "parent_tool_use_id": parent})


def test_telemetry_compactions_and_main_thread_peak() -> None:
    from claude_run.telemetry.inbound.collector import Collector
    from claude_run.telemetry.inbound.otlp import LogEvent
    from claude_run.telemetry.inbound.sessions import session_record

    def request(n: int, ctx: int, source: str | None) -> LogEvent:
        attrs: dict[str, Any] = {
            "model": "claude-sonnet-4-5",
            "input_tokens": 10,
            "cache_read_tokens": ctx - 10,
        }
        attrs.update({"request_id": f"req{n}", "session.id": "s1"})
        if source is not None:
            attrs["query_source"] = source
        return LogEvent("api_request", n, attrs, {})

    c = Collector()
    c.add_events(
        [
            request(1, 120_000, "sdk"),
            request(2, 180_000, "agent:custom"),  # a subagent's own window
            request(3, 150_000, "compact"),  # the summarizing request
            request(4, 90_000, "repl_main_thread"),
            LogEvent("compaction", 5, {"trigger": "auto", "success": "true"}, {}),
            LogEvent("compaction", 6, {"trigger": "manual", "success": "false"}, {}),
        ]
    )
    assert c.peak_context() == (120_000, "claude-sonnet-4-5")
    assert c.detail()["compactions"] == 1
    rec = session_record("s1", c, "01X", {})
    assert rec["context"]["peak_tokens"] == 120_000 and rec["context"]["compactions"] == 1
    assert rec["context"]["peak_pct"] == 60.0


def test_status_line_and_hybrid_view_show_context_and_quota() -> None:
    import io

    from claude_run.run.display import HybridView, StatusLine, live_limits

    folder = UsageFolder()
    stream = io.StringIO()
    line = StatusLine(stream, enabled=True)
    assert live_limits(folder) == ""  # nothing known yet: nothing shown
    hybrid = io.StringIO()
    view = HybridView(hybrid)
    for raw in (SAMPLES / "stream-ratelimit-oauth.jsonl").read_bytes().splitlines():
        event = parse_line(raw)
        assert event is not None
        folder.feed(event)
        view.show(event)
    line.update(1.0, 1, 100, None, force=True, extra=live_limits(folder))
    assert "ctx 2.8% · 5h 81% · 7d 33%" in stream.getvalue()
    shown = hybrid.getvalue()
    assert "quota allowed: five_hour 81% (allowed_warning) · seven_day 33% (allowed)" in shown
    assert "ctx 2.8%" in shown
