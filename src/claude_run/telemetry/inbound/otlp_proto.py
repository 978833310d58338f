"""OTLP/HTTP protobuf bodies (metrics and logs) read into the OTLP JSON shape that `otlp` decodes.

Why protobuf at all: it is OpenTelemetry's default protocol, so a user's own exporter most often
speaks it; `telemetry serve` takes it as is, and a tracked run forwards it to the user's endpoint
unchanged (it used to have to leave such users alone). Why a reader of our own: the protobuf runtime
and the generated OTLP classes cost ~50 ms to import, for bodies of a few kilobytes whose schema is
small and stable. Tracked runs with no exporter of the user's still get JSON, which orjson reads
~15x faster than this (docs/telemetry.md).

The output follows the protobuf JSON mapping the OTLP/JSON encoding uses (lowerCamelCase keys;
bytes as base64, except trace and span ids as hex), with 64-bit integers as Python ints, which
`otlp.to_int` takes as readily as strings. Fields this decoder does not know are skipped by wire type,
as the protocol grows; a body that is not well-formed protobuf raises `OtlpDecodeError`. The field
numbers are those of opentelemetry-proto v1 (common, resource, metrics, logs); the tests check them
against the official generated classes.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from .otlp import OtlpDecodeError

# Field kinds (how a value is read off the wire and shown in the JSON mapping).
STR, BYTES, HEX, UINT, INT64, BOOL, ENUM, FIXED64, SFIXED64, FIXED32, DOUBLE, MSG = range(12)
_VARINT_KINDS = {UINT, INT64, BOOL, ENUM}
_FIXED64_KINDS = {FIXED64, SFIXED64, DOUBLE}

# A schema: field number → (JSON name, kind, repeated, message schema for MSG fields).
Schema = dict[int, tuple[str, int, bool, Any]]

ANY_VALUE: Schema = {}
KEY_VALUE: Schema = {1: ("key", STR, False, None), 2: ("value", MSG, False, ANY_VALUE)}
ANY_VALUE.update(
    {
        1: ("stringValue", STR, False, None),
        2: ("boolValue", BOOL, False, None),
        3: ("intValue", INT64, False, None),
        4: ("doubleValue", DOUBLE, False, None),
        5: ("arrayValue", MSG, False, {1: ("values", MSG, True, ANY_VALUE)}),
        6: ("kvlistValue", MSG, False, {1: ("values", MSG, True, KEY_VALUE)}),
        7: ("bytesValue", BYTES, False, None),
    }
)
_ATTRS = ("attributes", MSG, True, KEY_VALUE)
RESOURCE: Schema = {1: _ATTRS, 2: ("droppedAttributesCount", UINT, False, None)}
SCOPE: Schema = {
    1: ("name", STR, False, None),
    2: ("version", STR, False, None),
    3: _ATTRS,
    4: ("droppedAttributesCount", UINT, False, None),
}
NUMBER_POINT: Schema = {
    7: _ATTRS,
    2: ("startTimeUnixNano", FIXED64, False, None),
    3: ("timeUnixNano", FIXED64, False, None),
    4: ("asDouble", DOUBLE, False, None),
    6: ("asInt", SFIXED64, False, None),
    8: ("flags", UINT, False, None),
}
HISTOGRAM_POINT: Schema = {
    9: _ATTRS,
    2: ("startTimeUnixNano", FIXED64, False, None),
    3: ("timeUnixNano", FIXED64, False, None),
    4: ("count", FIXED64, False, None),
    5: ("sum", DOUBLE, False, None),
    6: ("bucketCounts", FIXED64, True, None),
    7: ("explicitBounds", DOUBLE, True, None),
    10: ("flags", UINT, False, None),
    11: ("min", DOUBLE, False, None),
    12: ("max", DOUBLE, False, None),
}
_TEMPORALITY = ("aggregationTemporality", ENUM, False, None)
METRIC: Schema = {
    1: ("name", STR, False, None),
    2: ("description", STR, False, None),
    3: ("unit", STR, False, None),
    5: ("gauge", MSG, False, {1: ("dataPoints", MSG, True, NUMBER_POINT)}),
    7: (
        "sum",
        MSG,
        False,
        {1: ("dataPoints", MSG, True, NUMBER_POINT), 2: _TEMPORALITY, 3: ("isMonotonic", BOOL, False, None)},
    ),
    9: ("histogram", MSG, False, {1: ("dataPoints", MSG, True, HISTOGRAM_POINT), 2: _TEMPORALITY}),
    12: ("metadata", MSG, True, KEY_VALUE),
}
_SCHEMA_URL = ("schemaUrl", STR, False, None)
LOG_RECORD: Schema = {
    1: ("timeUnixNano", FIXED64, False, None),
    11: ("observedTimeUnixNano", FIXED64, False, None),
    2: ("severityNumber", ENUM, False, None),
    3: ("severityText", STR, False, None),
    5: ("body", MSG, False, ANY_VALUE),
    6: _ATTRS,
    7: ("droppedAttributesCount", UINT, False, None),
    8: ("flags", FIXED32, False, None),
    9: ("traceId", HEX, False, None),
    10: ("spanId", HEX, False, None),
    12: ("eventName", STR, False, None),
}


def _export_request(signal: str, items: str, item: Schema) -> Schema:
    """Export{Metrics,Logs}ServiceRequest: resource parts of scope parts of `items`."""
    scope_part: Schema = {1: ("scope", MSG, False, SCOPE), 2: (items, MSG, True, item), 3: _SCHEMA_URL}
    resource_part: Schema = {
        1: ("resource", MSG, False, RESOURCE),
        2: (f"scope{signal}", MSG, True, scope_part),
        3: _SCHEMA_URL,
    }
    return {1: (f"resource{signal}", MSG, True, resource_part)}


METRICS_REQUEST = _export_request("Metrics", "metrics", METRIC)
LOGS_REQUEST = _export_request("Logs", "logRecords", LOG_RECORD)
REQUESTS = {"metrics": METRICS_REQUEST, "logs": LOGS_REQUEST}
_D = struct.Struct("<d")
_Q = struct.Struct("<Q")
_q = struct.Struct("<q")
_I = struct.Struct("<I")
_MAX_DEPTH = 32  # AnyValue nests (arrays, kvlists): a hostile body must not exhaust the stack


def to_json(kind: str, body: bytes) -> dict[str, Any]:
    """An `Export{Metrics,Logs}ServiceRequest` in protobuf as its OTLP JSON form; {} for traces,
    which the receiver does not read."""
    schema = REQUESTS.get(kind)
    if schema is None:
        return {}
    return _message(memoryview(body), schema, 0)


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise OtlpDecodeError("malformed protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >> 64:
                raise OtlpDecodeError("malformed protobuf: varint longer than 64 bits")
            return result, pos
        shift += 7
        if shift >= 70:
            raise OtlpDecodeError("malformed protobuf: varint longer than 10 bytes")


def _scalar(kind: int, raw: int) -> Any:
    """A varint or fixed-width value as the JSON mapping shows it."""
    if kind in (INT64, SFIXED64, ENUM):  # two's complement (int32 enums are sign-extended too)
        return raw - (1 << 64) if raw >> 63 else raw
    if kind == BOOL:
        return raw != 0
    if kind == DOUBLE:
        return _D.unpack(_Q.pack(raw))[0]
    return raw


def _message(buf: memoryview, schema: Schema, depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise OtlpDecodeError("malformed protobuf: nested too deeply")
    out: dict[str, Any] = {}
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OtlpDecodeError("malformed protobuf: field number 0")
        spec = schema.get(number)
        raw: Any
        if wire == 0:
            raw, pos = _varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise OtlpDecodeError("malformed protobuf: truncated 64-bit field")
            raw = _Q.unpack_from(buf, pos)[0]
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise OtlpDecodeError("malformed protobuf: truncated 32-bit field")
            raw = _I.unpack_from(buf, pos)[0]
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise OtlpDecodeError("malformed protobuf: truncated length-delimited field")
            raw = buf[pos : pos + size]
            pos += size
        else:  # groups (3, 4) are not used by OTLP; 6 and 7 do not exist
            raise OtlpDecodeError(f"malformed protobuf: wire type {wire}")
        if spec is None:
            continue  # a field this decoder does not know: skipped
        name, kind, repeated, sub = spec
        value = _value(kind, wire, raw, sub, depth, repeated)
        if repeated:
            if isinstance(value, list):  # a packed run of scalars
                out.setdefault(name, []).extend(value)
            else:
                out.setdefault(name, []).append(value)
        else:
            out[name] = value  # the last one wins, as protobuf merges scalars
    return out


def _value(kind: int, wire: int, raw: Any, sub: Schema | None, depth: int, repeated: bool) -> Any:
    if kind == MSG:
        if wire != 2 or sub is None:
            raise OtlpDecodeError("malformed protobuf: a message field with the wrong wire type")
        return _message(raw, sub, depth + 1)
    if kind in (STR, BYTES, HEX):
        if wire != 2:
            raise OtlpDecodeError("malformed protobuf: a string field with the wrong wire type")
        data = bytes(raw)
        if kind == STR:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise OtlpDecodeError("malformed protobuf: a string that is not UTF-8") from None
        return data.hex() if kind == HEX else base64.b64encode(data).decode("ascii")
    if wire == 2 and repeated:  # a packed run of scalars (proto3 packs repeated scalars)
        data = bytes(raw)
        if kind in _FIXED64_KINDS:
            if len(data) % 8:
                raise OtlpDecodeError("malformed protobuf: a packed 64-bit field of odd length")
            return [_scalar(kind, v) for (v,) in _Q.iter_unpack(data)]
        if kind in _VARINT_KINDS:
            mv = memoryview(data)
            out, pos = [], 0
            while pos < len(data):
                v, pos = _varint(mv, pos, len(data))
                out.append(_scalar(kind, v))
            return out
        raise OtlpDecodeError("malformed protobuf: a packed field of the wrong kind")
    expected = 0 if kind in _VARINT_KINDS else 1 if kind in _FIXED64_KINDS else 5
    if wire != expected:
        raise OtlpDecodeError("malformed protobuf: a scalar field with the wrong wire type")
    return _scalar(kind, raw)
