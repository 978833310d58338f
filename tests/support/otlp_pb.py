"""OTLP JSON bodies re-encoded as protobuf by the official classes (opentelemetry-proto), so tests
of our own protobuf reader have an independent encoder to read from."""

from __future__ import annotations

from typing import Any


def to_protobuf(kind: str, body: bytes | str) -> bytes:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    cls: Any = {
        "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
        "logs": logs_service_pb2.ExportLogsServiceRequest,
    }[kind]
    data: bytes = json_format.Parse(body, cls()).SerializeToString()
    return data
