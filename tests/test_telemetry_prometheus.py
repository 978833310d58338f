"""`claude-run metrics`: exposition text, bounded labels, atomic textfile, and a real Prometheus scrape."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_run.commands.metrics import parse_addr, write_textfile
from claude_run.errors import UsageError
from claude_run.telemetry.outbound import prometheus
from support.telemetry_ledgers import MODELS, record

SRC = Path(__file__).resolve().parents[1] / "src"
SAMPLE_RE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


def exposition(records: list[dict[str, Any]], **kw: Any) -> str:
    """The exposition of a ledger holding `records`, through the read engine."""
    import tempfile

    import orjson

    from claude_run.query.engine import opened

    with tempfile.TemporaryDirectory() as d:
        ledger = Path(d) / "ledger.jsonl"
        ledger.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        with opened(ledger) as eng:
            return prometheus.exposition(eng, **kw)


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE_RE.match(line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **match: str) -> float:
    return sum(
        v for n, labels, v in samples if n == name and all(labels.get(k) == x for k, x in match.items())
    )


def test_counters_sum_the_ledger() -> None:
    recs = [
        record("A", cost=0.5, tokens=(1, 2, 3, 4), tags={"team": "red"}, requests=2),
        record("B", cost=0.25, model=MODELS[1], tokens=(10, 20, 30, 40), status="error"),
        record("C", cost=None, model="mystery-model", status="success"),
    ]
    s = parse(exposition(recs, tag_labels=["team"]))
    assert total(s, "claude_run_runs_total") == 3
    assert total(s, "claude_run_runs_total", status="error") == 1
    assert total(s, "claude_run_cost_usd_total") == 0.75
    assert total(s, "claude_run_cost_usd_total", model="mystery-model") == 0  # unpriced is never $0
    assert total(s, "claude_run_unpriced_runs_total", model="mystery-model") == 1
    assert total(s, "claude_run_tokens_total", type="output", model=MODELS[0]) == 2
    assert total(s, "claude_run_tokens_total", type="output", model="mystery-model") == 20
    assert total(s, "claude_run_tokens_total", type="cache_creation", model=MODELS[1]) == 40
    assert total(s, "claude_run_api_requests_total") == 2
    assert total(s, "claude_run_runs_total", tag_team="red") == 1
    assert total(s, "claude_run_ledger_records") == 3


def test_superseded_and_duplicate_sessions_are_not_counted() -> None:
    recs = [
        record("T1", mode="telemetry", session_id="s1", cost=0.1),
        record("T2", mode="telemetry", session_id="s1", cost=0.3, supersedes="T1"),  # the session grew
        record("R", session_id="s2", cost=1.0),
        record("I", mode="imported", session_id="s2", cost=1.0),  # the same session, imported later
    ]
    assert total(parse(exposition(recs)), "claude_run_cost_usd_total") == 1.3


def test_label_values_are_escaped() -> None:
    text = exposition([record("A", project='we"ird\\pro\nject', tags={"a-b": "x"})], tag_labels=["a-b"])
    assert 'project="we\\"ird\\\\pro\\nject"' in text
    assert 'tag_a_b="x"' in text


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([f"p{i}" for i in range(15)]),
            st.sampled_from([*MODELS, "m4", "m5"]),
            st.one_of(st.none(), st.floats(min_value=0, max_value=50, allow_nan=False)),
            st.sampled_from(["a", "b", "c", "d", "e"]),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_bounding_keeps_totals_and_cardinality(
    rows: list[tuple[str, str, float | None, str]], top: int
) -> None:
    recs = [
        record(str(i), project=p, model=m, cost=c, tags={"team": t}) for i, (p, m, c, t) in enumerate(rows)
    ]
    s = parse(exposition(recs, tag_labels=["team"], top_projects=top, top_models=top, top_tag_values=top))
    expected_cost = math.fsum(c for _, _, c, _ in rows if c is not None)
    assert math.isclose(total(s, "claude_run_cost_usd_total"), expected_cost, rel_tol=1e-9, abs_tol=1e-9)
    assert total(s, "claude_run_runs_total") == len(rows)
    assert total(s, "claude_run_tokens_total", type="cache_read") == 300 * len(rows)
    for label in ("project", "model", "tag_team"):
        values = {labels[label] for _, labels, _ in s if label in labels}
        assert len(values - {"other"}) <= top


def test_textfile_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "claude_run.prom"
    write_textfile(target, "a 1\n")
    write_textfile(target, "a 2\n")
    assert target.read_text() == "a 2\n"
    assert (target.stat().st_mode & 0o777) == 0o644
    assert os.listdir(tmp_path) == ["claude_run.prom"]


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_addr("9100") == ("127.0.0.1", 9100)
    assert parse_addr("[::1]:9100") == ("::1", 9100)
    with pytest.raises(UsageError):
        parse_addr("host:port")


def _cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args], env=env, capture_output=True, text=True, **kw
    )


def test_cli_prints_and_writes(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in [record("A"), record("B", cost=1.0)]) + "torn{")
    proc = _cli("metrics", "--ledger", str(ledger))
    assert proc.returncode == 0, proc.stderr
    assert total(parse(proc.stdout), "claude_run_cost_usd_total") == 1.25
    assert "unreadable ledger line" in proc.stderr
    out = tmp_path / "m.prom"
    assert _cli("metrics", "--ledger", str(ledger), "--textfile", str(out)).returncode == 0
    assert out.read_text() == proc.stdout
    bad = _cli("metrics", "--ledger", str(ledger), "--textfile", str(tmp_path / "nodir" / "m.prom"))
    assert bad.returncode == 74 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body


PROMETHEUS = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None
)


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None, reason="Prometheus is not installed (Debian: apt-get install prometheus)"
)
def test_a_real_prometheus_scrapes_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    recs = [
        record("A", project="alpha", cost=0.5, tokens=(100, 200, 3000, 400), tags={"team": "red"}),
        record("B", project="beta", model=MODELS[1], cost=1.25, tokens=(1, 2, 3, 4), status="error"),
        record("C", project="alpha", cost=None, model="mystery"),
    ]
    ledger.write_text("".join(json.dumps(r) + "\n" for r in recs))
    mport, pport = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    exporter = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_run",
            "metrics",
            "--ledger",
            str(ledger),
            "--serve",
            f"127.0.0.1:{mport}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: claude_run\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{mport}']\n"
    )
    prom = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{pport}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def query(q: str) -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{pport}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            data = json.loads(_get(url))
            assert data["status"] == "success"
            result: list[dict[str, Any]] = data["data"]["result"]
            return result

        deadline = time.monotonic() + 60
        while True:
            try:
                if query("claude_run_ledger_records"):
                    break
            except OSError:
                pass
            assert prom.poll() is None, prom.stderr.read().decode()[-2000:] if prom.stderr else ""
            assert exporter.poll() is None, exporter.stderr.read().decode() if exporter.stderr else ""
            assert time.monotonic() < deadline, "Prometheus never scraped claude-run metrics"
            time.sleep(0.3)

        def scalar(q: str) -> float:
            result = query(q)
            assert len(result) == 1, result
            return float(result[0]["value"][1])

        assert scalar("claude_run_ledger_records") == 3
        assert scalar("sum(claude_run_cost_usd_total)") == 1.75
        assert scalar('sum(claude_run_cost_usd_total{project="alpha"})') == 0.5
        assert scalar('sum(claude_run_tokens_total{type="cache_read"})') == 3000 + 3 + 300
        assert scalar('sum(claude_run_runs_total{status="error"})') == 1
        assert scalar('sum(claude_run_unpriced_runs_total{model="mystery"})') == 1
        assert scalar('up{job="claude_run"}') == 1
    finally:
        for proc in (prom, exporter):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serve_cache_rereads_only_a_changed_ledger(tmp_path: Path) -> None:
    from claude_run.commands.metrics import cached

    ledger = tmp_path / "l.jsonl"
    ledger.write_text(json.dumps(record("A")) + "\n")
    calls: list[int] = []

    def make() -> str:
        calls.append(1)
        return str(len(ledger.read_text().splitlines()))

    get = cached(make, ledger)
    assert get() == "1" and get() == "1" and len(calls) == 1
    with ledger.open("a") as fh:
        fh.write(json.dumps(record("B")) + "\n")
    assert get() == "2" and len(calls) == 2
