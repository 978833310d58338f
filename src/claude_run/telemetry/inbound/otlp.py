"""Decode OTLP/HTTP JSON bodies (metrics and logs) into flat, typed points and events.

The OTLP JSON encoding is the protobuf JSON mapping: lowerCamelCase keys, 64-bit integers as JSON
strings (`"intValue": "42"`, `"timeUnixNano": "1795420832341000000"`). Claude Code 2.1.330 sends
`intValue` as a JSON number instead: both are accepted. Unknown fields are ignored (the protocol
grows); a body whose shape is wrong where we need it raises `OtlpDecodeError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

AttrValue: TypeAlias = str | int | float | bool | list["AttrValue"] | dict[str, "AttrValue"] | bytes | None

# AggregationTemporality enum values of the OTLP metrics proto.
TEMPORALITY_UNSPECIFIED = 0
DELTA = 1
CUMULATIVE = 2


class OtlpDecodeError(ValueError):
    """The body is not OTLP JSON of the kind the endpoint expects."""


@dataclass(frozen=True)
class LogEvent:
    """One OTLP log record; Claude Code's events carry their name in `event.name`."""

    name: str
    time_ns: int
    attributes: dict[str, AttrValue]
    resource: dict[str, AttrValue]
    body: AttrValue = None
    scope: str = ""

    def attr(self, key: str) -> AttrValue:
        return self.attributes.get(key)


@dataclass(frozen=True)
class MetricPoint:
    """One data point of a sum, gauge or histogram, with its metric's identity beside it."""

    name: str
    kind: str  # sum | gauge | histogram
    value: float  # the point's value; a histogram's sum
    attributes: dict[str, AttrValue]
    resource: dict[str, AttrValue]
    time_ns: int = 0
    start_ns: int = 0
    temporality: int = TEMPORALITY_UNSPECIFIED
    monotonic: bool = False
    unit: str = ""
    count: int | None = None  # histograms only
    scope: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def loads(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OtlpDecodeError("the body must be a JSON object")
    return data


def to_int(value: object) -> int | None:
    """An OTLP int64: a JSON string per the spec, a number from some senders (Claude Code)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def to_float(value: object) -> float | None:
    """An OTLP double; the JSON mapping spells non-finite values "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def attr_value(any_value: object) -> AttrValue:
    """Decode an OTLP `AnyValue` object to a plain Python value."""
    if not isinstance(any_value, dict):
        return None
    if "stringValue" in any_value:
        v = any_value["stringValue"]
        return v if isinstance(v, str) else str(v)
    if "intValue" in any_value:
        return to_int(any_value["intValue"])
    if "doubleValue" in any_value:
        return to_float(any_value["doubleValue"])
    if "boolValue" in any_value:
        v = any_value["boolValue"]
        return v if isinstance(v, bool) else str(v).lower() == "true"
    if "arrayValue" in any_value:
        arr = any_value["arrayValue"]
        values = arr.get("values") if isinstance(arr, dict) else None
        return [attr_value(v) for v in values] if isinstance(values, list) else []
    if "kvlistValue" in any_value:
        kv = any_value["kvlistValue"]
        return attributes(kv.get("values") if isinstance(kv, dict) else None)
    if "bytesValue" in any_value:
        import base64

        try:
            return base64.b64decode(str(any_value["bytesValue"]))
        except ValueError:
            return None
    return None


def attributes(items: object) -> dict[str, AttrValue]:
    """A list of OTLP `KeyValue` objects as a dict (later keys win, as in the SDKs)."""
    out: dict[str, AttrValue] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = attr_value(item.get("value"))
    return out


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"`{key}` must be a list")
    return value


def _resource(obj: Mapping[str, Any]) -> dict[str, AttrValue]:
    res = obj.get("resource")
    return attributes(res.get("attributes")) if isinstance(res, dict) else {}


def _scope_name(obj: Mapping[str, Any]) -> str:
    scope = obj.get("scope")
    name = scope.get("name") if isinstance(scope, dict) else None
    return name if isinstance(name, str) else ""


def decode_logs(body: bytes | str | Mapping[str, Any]) -> list[LogEvent]:
    """Every log record of an `ExportLogsServiceRequest`."""
    data = loads(body)
    if "resourceLogs" not in data and data:
        raise OtlpDecodeError("not an OTLP logs body (no `resourceLogs`)")
    events: list[LogEvent] = []
    for rl in _list(data, "resourceLogs"):
        if not isinstance(rl, dict):
            raise OtlpDecodeError("`resourceLogs` items must be objects")
        resource = _resource(rl)
        for sl in _list(rl, "scopeLogs"):
            if not isinstance(sl, dict):
                raise OtlpDecodeError("`scopeLogs` items must be objects")
            scope = _scope_name(sl)
            for lr in _list(sl, "logRecords"):
                if not isinstance(lr, dict):
                    raise OtlpDecodeError("`logRecords` items must be objects")
                attrs = attributes(lr.get("attributes"))
                body_value = attr_value(lr.get("body"))
                name = attrs.get("event.name")
                if not isinstance(name, str):
                    # Older senders put the event name only in the body ("claude_code.api_request").
                    name = body_value if isinstance(body_value, str) else ""
                    name = name.removeprefix("claude_code.")
                time_ns = to_int(lr.get("timeUnixNano")) or to_int(lr.get("observedTimeUnixNano")) or 0
                events.append(LogEvent(name, time_ns, attrs, resource, body_value, scope))
    return events


def decode_metrics(body: bytes | str | Mapping[str, Any]) -> list[MetricPoint]:
    """Every data point of an `ExportMetricsServiceRequest` (sums, gauges, histograms)."""
    data = loads(body)
    if "resourceMetrics" not in data and data:
        raise OtlpDecodeError("not an OTLP metrics body (no `resourceMetrics`)")
    points: list[MetricPoint] = []
    for rm in _list(data, "resourceMetrics"):
        if not isinstance(rm, dict):
            raise OtlpDecodeError("`resourceMetrics` items must be objects")
        resource = _resource(rm)
        for sm in _list(rm, "scopeMetrics"):
            if not isinstance(sm, dict):
                raise OtlpDecodeError("`scopeMetrics` items must be objects")
            scope = _scope_name(sm)
            for metric in _list(sm, "metrics"):
                if not isinstance(metric, dict):
                    raise OtlpDecodeError("`metrics` items must be objects")
                points.extend(_metric_points(metric, resource, scope))
    return points


def _metric_points(
    metric: Mapping[str, Any], resource: dict[str, AttrValue], scope: str
) -> list[MetricPoint]:
    name = metric.get("name")
    if not isinstance(name, str):
        raise OtlpDecodeError("a metric has no name")
    unit = metric.get("unit") if isinstance(metric.get("unit"), str) else ""
    out: list[MetricPoint] = []
    for kind in ("sum", "gauge", "histogram"):
        body = metric.get(kind)
        if not isinstance(body, dict):
            continue
        temporality = to_int(body.get("aggregationTemporality")) or TEMPORALITY_UNSPECIFIED
        if isinstance(body.get("aggregationTemporality"), str) and not temporality:
            # The JSON mapping also allows enum names.
            temporality = {
                "AGGREGATION_TEMPORALITY_DELTA": DELTA,
                "AGGREGATION_TEMPORALITY_CUMULATIVE": CUMULATIVE,
            }.get(body["aggregationTemporality"], TEMPORALITY_UNSPECIFIED)
        monotonic = body.get("isMonotonic") is True
        for dp in _list(body, "dataPoints"):
            if not isinstance(dp, dict):
                raise OtlpDecodeError("`dataPoints` items must be objects")
            count: int | None = None
            if kind == "histogram":
                value = to_float(dp.get("sum")) or 0.0
                count = to_int(dp.get("count")) or 0
            elif "asDouble" in dp:
                value = to_float(dp["asDouble"]) or 0.0
            else:
                value = float(to_int(dp.get("asInt")) or 0)
            out.append(
                MetricPoint(
                    name=name,
                    kind=kind,
                    value=value,
                    attributes=attributes(dp.get("attributes")),
                    resource=resource,
                    time_ns=to_int(dp.get("timeUnixNano")) or 0,
                    start_ns=to_int(dp.get("startTimeUnixNano")) or 0,
                    temporality=temporality,
                    monotonic=monotonic,
                    unit=str(unit),
                    count=count,
                    scope=scope,
                )
            )
    return out
