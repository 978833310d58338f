"""The dashboard server over plain HTTP: JSON view, SSE push on append, refusals, and the CLI."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from claude_run.ledger.store import append
from support.dashboard_ledger import known_records, make_record, write_ledger
from support.dashboard_server import SRC, dashboard


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ledger = write_ledger(tmp_path / "ledger.jsonl", known_records(datetime.now(timezone.utc)))
    with dashboard(ledger, tmp_path / "server.log") as url:
        yield url, ledger


def _conn(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)


def _get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = _conn(url)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_api_view_json(server: tuple[str, Path]) -> None:
    url, _ = server
    status, headers, body = _get(url, "/api/view?period=all&project=alpha")
    assert status == 200 and headers["content-type"] == "application/json"
    view = json.loads(body)
    assert view["filters"] == {"period": "all", "project": "alpha", "model": None, "tag": None}
    assert view["totals"]["runs"] == 3
    assert view["totals"]["cost_usd"] == pytest.approx(0.125 + 1.5 + 0.031415)


def test_refusals(server: tuple[str, Path]) -> None:
    url, _ = server
    assert _get(url, "/api/view?period=soon")[0] == 400
    assert _get(url, "/nope")[0] == 404
    # DNS rebinding: a page served from evil.example must not read the ledger through our port.
    assert _get(url, "/api/view", {"Host": "evil.example"})[0] == 421
    conn = _conn(url)
    conn.request("POST", "/", body=b"x")
    assert conn.getresponse().status == 405
    conn.close()


def test_events_push_a_new_view_on_append(server: tuple[str, Path]) -> None:
    url, ledger = server
    conn = _conn(url)
    conn.request("GET", "/events?period=all")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")

    def next_view() -> dict[str, object]:
        data = None
        while True:
            line = resp.fp.readline().decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return data

    first = next_view()
    assert first["records"] == 6 and "chart-cost-usd" in str(first["content"])
    rec = make_record(when=datetime.now(timezone.utc), project="zeta", cost=3.0)
    append(ledger, rec)
    second = next_view()
    assert second["records"] == 7
    assert rec["id"] in str(second["content"]) and "zeta" in str(second["filters"])
    conn.close()


def test_port_in_use_is_a_one_line_error(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, ledger = server
    port = str(urlsplit(url).port)
    out = subprocess.run(
        [sys.executable, "-m", "claude_run", "dashboard", "--port", port, "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=30,
    )
    assert out.returncode == 2
    assert "cannot listen on 127.0.0.1:" + port in out.stderr
    assert "Traceback" not in out.stderr


def test_a_big_ledger_is_served_while_it_is_read(tmp_path: Path) -> None:
    """The first read goes a slice at a time (here 2 kB, normally 64 MB): the server listens before
    the ledger is read, says so, and pushed views grow until it is read, flagged partial until then."""
    ledger = write_ledger(tmp_path / "ledger.jsonl", known_records(datetime.now(timezone.utc)))
    with dashboard(ledger, tmp_path / "server.log", "--read-step", "2000") as url:
        assert "still reading the ledger" in (tmp_path / "server.log").read_text()
        conn = _conn(url)
        conn.request("GET", "/events?period=all")
        resp = conn.getresponse()
        seen: list[int] = []
        data = None
        while not seen or seen[-1] < 6:
            line = resp.fp.readline().decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                seen.append(data["records"])
                assert ('id="loading"' in data["content"]) == (seen[-1] < 6)
                data = None
        conn.close()
    # How many partial views a client catches depends on timing; what it sees must only ever grow.
    assert seen == sorted(seen) and seen[-1] == 6
