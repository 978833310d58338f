"""The OTLP JSON decoder and the collector, on the bodies Claude Code 2.1.330 really sent."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_run.telemetry.inbound.collector import Collector, agrees, percentile
from claude_run.telemetry.inbound.otlp import (
    CUMULATIVE,
    DELTA,
    OtlpDecodeError,
    attr_value,
    decode_logs,
    decode_metrics,
    to_int,
)
from support import telemetry_samples as samples

pytestmark = pytest.mark.skipif(not samples.available(), reason="shared Claude Code samples not present")


def test_sample_bodies_decode_with_exact_figures() -> None:
    (logs_body,) = samples.bodies("otlp-logs.http-json.log")
    (metrics_body,) = samples.bodies("otlp-metrics.http-json.log")
    events = decode_logs(logs_body)
    assert [e.name for e in events] == [
        "managed_settings_resolved",
        "plugin_loaded",
        "plugin_loaded",
        "plugin_loaded",
        "user_prompt",
        "tool_decision",
        "api_request",
        "tool_result",
        "api_request",
        "assistant_response",
    ]
    first_req = events[6]
    assert first_req.attr("input_tokens") == 307
    assert first_req.attr("cache_read_tokens") == 4808
    assert first_req.attr("cost_usd") == 0.0092934
    assert first_req.attr("anthropic.custom_base_url") is True
    assert first_req.time_ns == 1795420832733000000
    assert first_req.resource["service.version"] == "2.1.330"
    assert events[0].attr("managed_settings.sources") == []
    tool = events[7]
    assert tool.attr("duration_ms") == "49"  # Claude sends this one as a string

    points = decode_metrics(metrics_body)
    token_points = {p.attributes["type"]: p.value for p in points if p.name == "claude_code.token.usage"}
    assert token_points == {"input": 651, "output": 129, "cacheRead": 9717, "cacheCreation": 3221}
    cost = [p for p in points if p.name == "claude_code.cost.usage"]
    assert [p.value for p in cost] == [0.01888185]
    assert cost[0].temporality == DELTA and cost[0].monotonic
    assert cost[0].start_ns == 1795420832717000000


def test_collector_matches_the_result_event() -> None:
    c = Collector()
    for body in samples.bodies("otlp-logs.http-json.log"):
        c.feed("logs", orjson.loads(body))
    for body in samples.bodies("otlp-metrics.http-json.log"):
        c.feed("metrics", orjson.loads(body))
    d = c.detail()
    assert d["requests"]["count"] == 2
    assert d["requests"]["by_model"] == {"claude-sonnet-4-5": 2}
    assert d["requests"]["duration_ms"] == {"p50": 21, "p95": 65, "max": 65}
    assert d["requests"]["ttft_ms"] == {"p50": 14, "p95": 23, "max": 23}
    assert d["tools"] == {"calls": {"Bash": 1}, "failures": {}, "total_ms": 49}
    assert d["tokens"] == {"input": 651, "output": 129, "cache_read": 9717, "cache_creation": 3221}
    assert math.isclose(d["cost_usd"], 0.01888185, rel_tol=1e-12)
    assert c.session_ids == {"19260bb2-a3ac-4884-8cf5-97aee5b9bab8"}

    result = samples.result_event()
    usage = result["usage"]
    tokens = {
        "input": usage["input_tokens"],
        "output": usage["output_tokens"],
        "cache_read": usage["cache_read_input_tokens"],
        "cache_creation": usage["cache_creation_input_tokens"],
    }
    assert agrees(d, tokens, result["total_cost_usd"]) is True
    assert agrees(d, {**tokens, "output": tokens["output"] + 1}, result["total_cost_usd"]) is False
    assert agrees(d, tokens, result["total_cost_usd"] + 0.001) is False
    assert agrees(d, None, None) is None


def test_metrics_alone_give_the_totals() -> None:
    c = Collector()
    for body in samples.bodies("otlp-metrics.http-json.log"):
        c.feed("metrics", orjson.loads(body))
    assert c.tokens() == {"input": 651, "output": 129, "cache_read": 9717, "cache_creation": 3221}
    assert c.cost_usd() == 0.01888185
    assert c.detail()["active_time_s"] == 0.371


def _sum_body(value: str | float, time_ns: str, temporality: int) -> dict[str, object]:
    point = {"attributes": [{"key": "type", "value": {"stringValue": "added"}}], "timeUnixNano": time_ns}
    point["startTimeUnixNano"] = "1"
    point["asInt" if isinstance(value, str) else "asDouble"] = value
    metric = {
        "name": "claude_code.lines_of_code.count",
        "sum": {"aggregationTemporality": temporality, "isMonotonic": True, "dataPoints": [point]},
    }
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}


def test_cumulative_keeps_latest_and_delta_sums() -> None:
    cum = Collector()
    cum.feed("metrics", _sum_body("5", "10", CUMULATIVE))
    cum.feed("metrics", _sum_body("7", "20", CUMULATIVE))
    cum.feed("metrics", _sum_body("6", "15", CUMULATIVE))  # late, older: ignored
    assert cum.detail()["lines"] == {"added": 7, "removed": 0}
    delta = Collector()
    delta.feed("metrics", _sum_body(5.0, "10", DELTA))
    delta.feed("metrics", _sum_body(2.0, "20", DELTA))
    assert delta.detail()["lines"] == {"added": 7, "removed": 0}


def test_int64_as_string_and_enum_names() -> None:
    assert attr_value({"intValue": "9007199254740993"}) == 9007199254740993
    assert attr_value({"intValue": 12}) == 12
    assert attr_value({"doubleValue": "NaN"}) != attr_value({"doubleValue": "NaN"})
    assert attr_value({"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": False}}]}}) == {
        "a": False
    }
    body = _sum_body("3", "5", CUMULATIVE)
    body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"] = (  # type: ignore[index]
        "AGGREGATION_TEMPORALITY_DELTA"
    )
    assert decode_metrics(body)[0].temporality == DELTA


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1,2]", b'{"resourceLogs": 5}', b'{"resourceLogs": [1]}', b'{"somethingElse": []}'],
)
def test_wrong_shapes_raise(body: bytes) -> None:
    with pytest.raises(OtlpDecodeError):
        decode_logs(body)


def test_empty_body_is_no_events() -> None:
    assert decode_logs(b"{}") == []
    assert decode_metrics(b"{}") == []


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=50))
def test_percentile_is_a_measured_value(values: list[int]) -> None:
    for q in (50, 95, 100):
        p = percentile(values, q)
        assert p in values
        assert sum(v <= p for v in values) >= q / 100 * len(values)  # type: ignore[operator]
    assert percentile(values, 100) == max(values)


@given(st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1)))
def test_int64_round_trip(value: int) -> None:
    assert to_int(str(value)) == value
    assert attr_value({"intValue": str(value)}) == value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_decoder_never_crashes_on_json(value: object) -> None:
    try:
        decode_logs(
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": value, "body": value}]}]}]}
        )
        decode_metrics(
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {"metrics": [{"name": "x", "sum": {"dataPoints": [{"asInt": value}]}}]}
                        ]
                    }
                ]
            }
        )
    except OtlpDecodeError:
        pass
