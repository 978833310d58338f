"""Our OTLP protobuf reader against the official classes (opentelemetry-proto): every field it knows
reads back as the official JSON mapping has it, on generated messages and on Claude Code's bodies."""

from __future__ import annotations

import base64
import contextlib
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_run.telemetry.inbound import otlp, otlp_proto
from support import otlp_pb
from support import telemetry_samples as samples

json_format = pytest.importorskip("google.protobuf.json_format", reason="opentelemetry-proto not installed")
common = pytest.importorskip("opentelemetry.proto.common.v1.common_pb2")
metrics_pb = pytest.importorskip("opentelemetry.proto.metrics.v1.metrics_pb2")
logs_pb = pytest.importorskip("opentelemetry.proto.logs.v1.logs_pb2")
metrics_service = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")
logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")

# The JSON mapping writes 64-bit integers as strings; our reader gives ints (otlp.to_int takes both).
INT64_KEYS = {"intValue", "asInt", "timeUnixNano", "startTimeUnixNano", "observedTimeUnixNano", "count"}
HEX_KEYS = {"traceId", "spanId"}  # bytes as hex in OTLP/JSON (MessageToDict gives base64)


def normalised(ref: Any, key: str = "") -> Any:
    """MessageToDict's output in the shape our reader gives."""
    if isinstance(ref, dict):
        return {k: normalised(v, k) for k, v in ref.items()}
    if isinstance(ref, list):
        return [normalised(v, key) for v in ref]
    if key in INT64_KEYS or key == "bucketCounts":
        return int(ref)
    if key in HEX_KEYS:
        return base64.b64decode(ref).hex()
    return ref


text = st.text(max_size=12)
i64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)


def any_value(depth: int = 0) -> st.SearchStrategy[Any]:
    scalars: list[st.SearchStrategy[Any]] = [
        text.map(lambda v: common.AnyValue(string_value=v)),
        st.booleans().map(lambda v: common.AnyValue(bool_value=v)),
        i64.map(lambda v: common.AnyValue(int_value=v)),
        finite.map(lambda v: common.AnyValue(double_value=v)),
        st.binary(max_size=8).map(lambda v: common.AnyValue(bytes_value=v)),
    ]
    if depth < 2:
        inner = any_value(depth + 1)
        scalars.append(
            st.lists(inner, max_size=3).map(
                lambda vs: common.AnyValue(array_value=common.ArrayValue(values=vs))
            )
        )
        scalars.append(
            st.lists(st.tuples(text, inner), max_size=3).map(
                lambda kvs: common.AnyValue(
                    kvlist_value=common.KeyValueList(values=[common.KeyValue(key=k, value=v) for k, v in kvs])
                )
            )
        )
    return st.one_of(scalars)


attrs = st.lists(st.tuples(text, any_value()), max_size=3).map(
    lambda kvs: [common.KeyValue(key=k, value=v) for k, v in kvs]
)
resource = attrs.map(lambda a: {"attributes": a})
scope = st.builds(
    lambda name, version, a: common.InstrumentationScope(name=name, version=version, attributes=a),
    text,
    text,
    attrs,
)


@st.composite
def number_point(draw: Any) -> Any:
    p = metrics_pb.NumberDataPoint(
        attributes=draw(attrs),
        start_time_unix_nano=draw(u64),
        time_unix_nano=draw(u64),
        flags=draw(st.integers(0, 9)),
    )
    if draw(st.booleans()):
        p.as_int = draw(i64)
    else:
        p.as_double = draw(finite)
    return p


@st.composite
def histogram_point(draw: Any) -> Any:
    bounds = draw(st.lists(finite, max_size=4))
    p = metrics_pb.HistogramDataPoint(
        attributes=draw(attrs),
        start_time_unix_nano=draw(u64),
        time_unix_nano=draw(u64),
        count=draw(u64),
        bucket_counts=draw(st.lists(u64, min_size=len(bounds) + 1, max_size=len(bounds) + 1)),
        explicit_bounds=bounds,
    )
    for field in ("sum", "min", "max"):
        if draw(st.booleans()):
            setattr(p, field, draw(finite))
    return p


@st.composite
def metric(draw: Any) -> Any:
    m = metrics_pb.Metric(name=draw(text), description=draw(text), unit=draw(text))
    kind = draw(st.sampled_from(["sum", "gauge", "histogram"]))
    if kind == "sum":
        m.sum.data_points.extend(draw(st.lists(number_point(), max_size=3)))
        m.sum.aggregation_temporality = draw(st.integers(0, 2))
        m.sum.is_monotonic = draw(st.booleans())
    elif kind == "gauge":
        m.gauge.data_points.extend(draw(st.lists(number_point(), max_size=3)))
    else:
        m.histogram.data_points.extend(draw(st.lists(histogram_point(), max_size=2)))
        m.histogram.aggregation_temporality = draw(st.integers(0, 2))
    return m


@st.composite
def log_record(draw: Any) -> Any:
    r = logs_pb.LogRecord(
        time_unix_nano=draw(u64),
        observed_time_unix_nano=draw(u64),
        severity_number=draw(st.integers(0, 24)),
        severity_text=draw(text),
        attributes=draw(attrs),
        dropped_attributes_count=draw(st.integers(0, 5)),
        flags=draw(st.integers(0, (1 << 32) - 1)),
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        event_name=draw(text),
    )
    if draw(st.booleans()):
        r.body.CopyFrom(draw(any_value()))
    return r


@st.composite
def export_request(draw: Any, cls: Any, signal: str, items: str, item: st.SearchStrategy[Any]) -> Any:
    """An Export{Metrics,Logs}ServiceRequest: resources of scopes of `item`s (`signal`: metrics, logs)."""
    req = cls()
    for _ in range(draw(st.integers(0, 2))):
        resource_part = getattr(req, f"resource_{signal}").add(schema_url=draw(text))
        resource_part.resource.attributes.extend(draw(attrs))
        for _ in range(draw(st.integers(0, 2))):
            scope_part = getattr(resource_part, f"scope_{signal}").add(schema_url=draw(text))
            scope_part.scope.CopyFrom(draw(scope))
            getattr(scope_part, items).extend(draw(st.lists(item, max_size=3)))
    return req


metrics_request = export_request(metrics_service.ExportMetricsServiceRequest, "metrics", "metrics", metric())
logs_request = export_request(logs_service.ExportLogsServiceRequest, "logs", "log_records", log_record())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=st.one_of(metrics_request.map(lambda r: ("metrics", r)), logs_request.map(lambda r: ("logs", r))))
def test_every_field_reads_as_the_official_json_mapping(req: tuple[str, Any]) -> None:
    kind, msg = req
    ours = otlp_proto.to_json(kind, msg.SerializeToString())
    assert ours == normalised(json_format.MessageToDict(msg, use_integers_for_enums=True))


def test_non_finite_doubles_and_negative_enums() -> None:
    msg = metrics_service.ExportMetricsServiceRequest()
    m = msg.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    m.gauge.data_points.add(as_double=math.inf)
    m.gauge.data_points.add(as_double=-math.inf)
    ours = otlp_proto.to_json("metrics", msg.SerializeToString())
    points = ours["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"]
    assert [p["asDouble"] for p in points] == [math.inf, -math.inf]
    rec = logs_pb.LogRecord(severity_number=-3)  # an int32 enum below zero: ten bytes on the wire
    req = logs_service.ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.append(rec)
    got = otlp_proto.to_json("logs", req.SerializeToString())
    assert got["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] == -3


@pytest.mark.skipif(not samples.available(), reason="shared Claude Code samples not present")
@pytest.mark.parametrize(
    ("name", "kind", "decode"),
    [
        ("otlp-metrics.http-json.log", "metrics", otlp.decode_metrics),
        ("otlp-logs.http-json.log", "logs", otlp.decode_logs),
    ],
)
def test_claude_codes_bodies_decode_the_same_from_either_encoding(name: str, kind: str, decode: Any) -> None:
    for body in samples.bodies(name):
        from_pb = decode(otlp_proto.to_json(kind, otlp_pb.to_protobuf(kind, body)))
        assert from_pb == decode(body) and from_pb


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_raises_only_the_decode_error(data: bytes) -> None:
    for kind in ("metrics", "logs"):
        with contextlib.suppress(otlp.OtlpDecodeError):
            otlp_proto.to_json(kind, data)


def test_malformed_bodies_say_what_is_wrong() -> None:
    cases = {
        b"\x0a\x05\x0a": "truncated length-delimited",
        b"\x08": "truncated varint",
        b"\x09\x01\x02": "truncated 64-bit",
        b"\x0b": "wire type 3",
        b"\x00\x00": "field number 0",
        b"\x08" + b"\xff" * 10 + b"\x01": "varint",
        b"\x0a\x02\x08\x01": "wrong wire type",  # resourceMetrics.resource sent as a varint
        # resourceMetrics.scopeMetrics.metrics.gauge.dataPoints.timeUnixNano as a packed run
        b"\x0a\x0f\x12\x0d\x12\x0b\x2a\x09\x0a\x07\x1a\x05\x01\x02\x03\x04\x05": "wrong wire type",
    }
    for body, message in cases.items():
        with pytest.raises(otlp.OtlpDecodeError, match=message):
            otlp_proto.to_json("metrics", body)
    value = common.AnyValue(string_value="x")
    for _ in range(40):  # arrays in arrays, past any real body: refused, not a RecursionError
        value = common.AnyValue(array_value=common.ArrayValue(values=[value]))
    req = logs_service.ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.add().body.CopyFrom(value)
    with pytest.raises(otlp.OtlpDecodeError, match="nested too deeply"):
        otlp_proto.to_json("logs", req.SerializeToString())
    assert otlp_proto.to_json("traces", b"\xff") == {}  # traces are not read
