"""`claude-run ledger push --otlp`: valid OTLP JSON with the right sums, sent once per endpoint."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from claude_run.httpd import bind, endpoint_of
from claude_run.telemetry.inbound.otlp import decode_logs, decode_metrics
from claude_run.telemetry.inbound.receiver import Receiver
from claude_run.telemetry.outbound.push import TOKEN_BUCKETS, metrics_body
from support import telemetry_samples as samples
from support.telemetry_ledgers import MODELS, record

SRC = Path(__file__).resolve().parents[1] / "src"


class Collector:
    """A tiny OTLP test server: the built-in receiver keeping every raw body."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.sock = bind()
        self.endpoint = endpoint_of(self.sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: anyio.run(self._main), daemon=True)

    async def _main(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                Receiver(lambda kind, data: self.bodies.append((kind, dict(data)))).serve, self.sock
            )
            while not self._stop.is_set():
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()

    def metrics(self) -> list[Any]:
        return [p for kind, b in self.bodies if kind == "metrics" for p in decode_metrics(b)]

    def logs(self) -> list[Any]:
        return [e for kind, b in self.bodies if kind == "logs" for e in decode_logs(b)]


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c._thread.start()
    yield c
    c._stop.set()
    c._thread.join(5)


def push(ledger: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "claude_run",
            "ledger",
            "push",
            "--otlp",
            url,
            "--ledger",
            str(ledger),
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(ledger: Path, recs: list[dict[str, Any]]) -> None:
    with ledger.open("a") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")


def sums(points: list[Any], name: str, **match: str) -> float:
    return math.fsum(
        p.value for p in points if p.name == name and all(p.attributes.get(k) == v for k, v in match.items())
    )


def test_body_follows_the_otlp_json_mapping() -> None:
    body = metrics_body([record("A", tokens=(5, 6, 70000, 8))], version="0.1.0")
    hist = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    assert hist["name"] == "gen_ai.client.token.usage" and hist["unit"] == "{token}"
    point = hist["histogram"]["dataPoints"][0]
    assert isinstance(point["count"], str) and isinstance(point["timeUnixNano"], str)  # int64 as strings
    assert len(point["bucketCounts"]) == len(TOKEN_BUCKETS) + 1
    big = next(p for p in hist["histogram"]["dataPoints"] if p["sum"] == 70000)
    assert big["bucketCounts"].index("1") == 9  # 65536 < 70000 <= 262144


def test_push_sends_right_sums_once(tmp_path: Path, collector: Collector) -> None:
    ledger = tmp_path / "l.jsonl"
    recs = [
        record("A", tokens=(10, 20, 300, 40), cost=0.5, tags={"team": "red"}),
        record("B", model=MODELS[1], tokens=(1, 2, 3, 4), cost=1.25, status="error"),
        record("C", model="mystery", cost=None),
    ]
    write(ledger, recs)
    proc = push(ledger, collector.endpoint)
    assert proc.returncode == 0, proc.stderr
    assert "sent 3 record(s)" in proc.stderr
    pts = collector.metrics()
    tok = "gen_ai.client.token.usage"
    assert sums(pts, tok, **{"gen_ai.token.type": "output"}) == 20 + 2 + 20
    assert sums(pts, tok, **{"gen_ai.token.type": "input"}) == (10 + 300 + 40) + (1 + 3 + 4) + (10 + 300 + 40)
    assert sums(pts, tok, **{"claude_run.token.kind": "cache_read"}) == 300 + 3 + 300
    assert sums(pts, tok, **{"gen_ai.request.model": MODELS[1]}) == 1 + 2 + 3 + 4
    assert all(p.attributes["gen_ai.provider.name"] == "anthropic" for p in pts if p.name == tok)
    assert all(p.kind == "histogram" and p.temporality == 1 for p in pts if p.name == tok)
    assert sums(pts, "claude_run.cost.usage") == 1.75  # unpriced C sends no $0
    assert sums(pts, "claude_run.runs") == 3
    assert sums(pts, "claude_run.runs", **{"claude_run.status": "error"}) == 1
    assert sums(pts, tok, **{"claude_run.tag.team": "red"}) == 370
    logs = collector.logs()
    assert sorted(e.attr("claude_run.id") for e in logs) == ["A", "B", "C"]
    a = next(e for e in logs if e.attr("claude_run.id") == "A")
    assert a.name == "claude_run.run" and a.attr("gen_ai.usage.input_tokens") == 350

    # Pushing again sends nothing; a new record goes alone.
    before = len(collector.bodies)
    assert "sent 0 record(s)" in push(ledger, collector.endpoint).stderr
    assert len(collector.bodies) == before
    write(ledger, [record("D", cost=2.0)])
    assert "sent 1 record(s)" in push(ledger, collector.endpoint).stderr
    assert sums(collector.metrics(), "claude_run.cost.usage") == 3.75


def test_a_grown_session_is_sent_as_the_difference(tmp_path: Path, collector: Collector) -> None:
    ledger = tmp_path / "l.jsonl"
    write(ledger, [record("T1", mode="telemetry", session_id="s", tokens=(1, 1, 1, 1), cost=0.1)])
    assert push(ledger, collector.endpoint).returncode == 0
    write(
        ledger,
        [record("T2", mode="telemetry", session_id="s", tokens=(3, 5, 1, 1), cost=0.4, supersedes="T1")],
    )
    assert push(ledger, collector.endpoint).returncode == 0
    pts = collector.metrics()
    assert math.isclose(sums(pts, "claude_run.cost.usage"), 0.4)
    assert sums(pts, "gen_ai.client.token.usage", **{"claude_run.token.kind": "output"}) == 5
    assert sums(pts, "claude_run.runs") == 1


def test_errors_are_one_line(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    write(ledger, [record("A")])
    sock = bind()
    dead = endpoint_of(sock)
    sock.close()
    proc = push(ledger, dead)
    assert proc.returncode == 70 and "cannot reach" in proc.stderr and "Traceback" not in proc.stderr
    assert push(ledger, "ftp://x").returncode == 2
    dry = push(ledger, "http://127.0.0.1:9", "--dry-run")
    assert dry.returncode == 0
    first = json.loads(dry.stdout.splitlines()[0])
    assert first["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"] == "claude-run"


def test_bodies_parse_strictly_as_the_official_otlp_protos() -> None:
    """The OTLP protobuf definitions (package opentelemetry-proto) reject unknown fields and wrong types."""
    json_format = pytest.importorskip(
        "google.protobuf.json_format", reason="opentelemetry-proto not installed"
    )
    metrics_pb = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")
    logs_pb = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
    from claude_run.telemetry.outbound.push import logs_body

    recs = [
        record("A", tokens=(10, 20, 300, 40), cost=0.5, tags={"team": "red"}),
        record("B", model=MODELS[1], cost=None),
    ]
    m = json_format.Parse(
        json.dumps(metrics_body(recs, version="0.1.0", user="u")), metrics_pb.ExportMetricsServiceRequest()
    )
    hist = m.resource_metrics[0].scope_metrics[0].metrics[0]
    assert hist.name == "gen_ai.client.token.usage"
    assert sum(p.sum for p in hist.histogram.data_points) == 10 + 20 + 300 + 40 + 10 + 20 + 300 + 40
    assert all(sum(p.bucket_counts) == p.count == 1 for p in hist.histogram.data_points)
    lg = json_format.Parse(json.dumps(logs_body(recs, version="0.1.0")), logs_pb.ExportLogsServiceRequest())
    assert len(lg.resource_logs[0].scope_logs[0].log_records) == 2
    # And the bodies Claude Code really sent parse the same way (the decoder's input is that format).
    for body in samples.bodies("otlp-metrics.http-json.log") if samples.available() else []:
        json_format.Parse(body, metrics_pb.ExportMetricsServiceRequest())
