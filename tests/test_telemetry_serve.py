"""`claude-run telemetry serve`: sessions become ledger records (idle, shutdown, superseding)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.telemetry.inbound.sessions import SessionBook
from support import otlp_pb
from support import telemetry_samples as samples

pytestmark = pytest.mark.skipif(not samples.available(), reason="shared Claude Code samples not present")
SRC = Path(__file__).resolve().parents[1] / "src"
SESSION = "19260bb2-a3ac-4884-8cf5-97aee5b9bab8"


def logs(request_suffix: str = "") -> bytes:
    body = samples.bodies("otlp-logs.http-json.log")[0]
    return body.replace(b'"req_', b'"req_' + request_suffix.encode()) if request_suffix else body


def metrics() -> bytes:
    return samples.bodies("otlp-metrics.http-json.log")[0]


def test_book_writes_after_idle_and_supersedes() -> None:
    book = SessionBook(idle_s=10)
    book.feed("logs", orjson.loads(logs()), now=100)
    book.feed("metrics", orjson.loads(metrics()), now=101)
    assert book.due(105) == []
    assert book.due(111) == [SESSION]
    ids = iter(["R1", "R2"])
    (rec,) = book.take_records([SESSION], lambda: next(ids), {"user": "u"})
    assert rec["mode"] == "telemetry" and rec["session_id"] == SESSION and rec["id"] == "R1"
    assert rec["tokens"] == {"input": 651, "output": 129, "cache_read": 9717, "cache_creation": 3221}
    assert math.isclose(rec["cost_usd"], 0.01888185)
    assert rec["models"]["claude-sonnet-4-5"]["output"] == 129
    assert rec["claude_version"] == "2.1.330"
    assert rec["started_at"] == "2026-11-23T08:00:32.341Z" and rec["ended_at"] == "2026-11-23T08:00:32.885Z"
    assert "supersedes" not in rec
    assert book.due(1000) == []  # written, nothing new
    book.feed("logs", orjson.loads(logs("again")), now=200)  # the session goes on
    (rec2,) = book.take_records(book.due(300), lambda: next(ids), {})
    assert rec2["supersedes"] == "R1"
    assert rec2["telemetry"]["requests"]["count"] == 4
    assert rec2["tokens"]["input"] == 2 * 651


def test_book_ignores_claude_runs_own_runs() -> None:
    data = orjson.loads(logs())
    data["resourceLogs"][0]["resource"]["attributes"].append(
        {"key": "claude_run.run_id", "value": {"stringValue": "01ABC"}}
    )
    book = SessionBook(idle_s=0)
    book.feed("logs", data, now=1)
    assert book.sessions == {} and book.ignored_tracked == 10


def post(endpoint: str, path: str, body: bytes, ctype: str = "application/json") -> int:
    req = urllib.request.Request(endpoint + path, data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-m", "claude_run", "telemetry", "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--ledger", str(tmp_path / "l.jsonl"), *extra], env=env, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    assert "receiving OTLP/HTTP JSON on " in first, first
    endpoint = first.split(" on ", 1)[1].split(",", 1)[0]
    return proc, endpoint


def read_ledger(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "l.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_serve_records_on_shutdown_from_protobuf_and_json(tmp_path: Path) -> None:
    """The logs arrive as protobuf (OpenTelemetry's default protocol), the metrics as JSON."""
    proc, endpoint = start(tmp_path, "--tag", "source=ide")
    try:
        pb = otlp_pb.to_protobuf("logs", logs())
        assert post(endpoint, "/v1/logs", pb, "application/x-protobuf") == 200
        assert post(endpoint, "/v1/metrics", metrics()) == 200
        assert post(endpoint, "/v1/metrics", b"\x0a\x05\x0a", "application/x-protobuf") == 400
        assert post(endpoint, "/v1/metrics", metrics(), "text/plain") == 415
        assert post(endpoint, "/v1/logs", b"{broken") == 400
        assert read_ledger(tmp_path) == []  # not idle yet
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    (rec,) = read_ledger(tmp_path)
    assert rec["tokens"] == {"input": 651, "output": 129, "cache_read": 9717, "cache_creation": 3221}
    assert rec["tags"] == {"source": "ide"}
    assert rec["telemetry"]["tools"]["calls"] == {"Bash": 1}


@pytest.mark.slow
def test_serve_records_idle_sessions_and_supersedes(tmp_path: Path) -> None:
    proc, endpoint = start(tmp_path, "--idle", "0.3", "--quiet")
    try:
        assert post(endpoint, "/v1/logs", logs()) == 200
        deadline = time.monotonic() + 15
        while not read_ledger(tmp_path):
            assert time.monotonic() < deadline, "no record after the idle time"
            time.sleep(0.1)
        assert post(endpoint, "/v1/logs", logs("more")) == 200
        while len(read_ledger(tmp_path)) < 2:
            assert time.monotonic() < deadline, "no superseding record"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    first, second = read_ledger(tmp_path)
    assert second["supersedes"] == first["id"]
    assert second["telemetry"]["requests"]["count"] == 2 * first["telemetry"]["requests"]["count"] == 4


def test_a_busy_port_is_one_line_exit_70(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "claude_run",
                "telemetry",
                "serve",
                "--port",
                str(port),
                "--ledger",
                str(tmp_path / "l"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 70
    assert "cannot listen" in proc.stderr and "Traceback" not in proc.stderr
