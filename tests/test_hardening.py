"""Issue 21's cases as explicit examples (the reader-side ones belong to the read engine's tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
REC = {
    "v": 1,
    "id": "01JHARD0000000000000000001",
    "started_at": "2026-06-01T10:00:00.000Z",
    "status": "success",
    "mode": "non-interactive",
    "project": "a|b",
    "tokens": {"input": 1, "output": 2, "cache_read": 0, "cache_creation": 0},
    "cost_usd": 0.5,
    "cost_source": "claude",
    "tags": {"t": "x\x1b[31mred\nnext", "h": "<b>bold</b>"},
}


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args],
        env=full,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(orjson.dumps(REC) + b"\n")
    path.chmod(0o600)
    return path


def _one_line(p: subprocess.CompletedProcess[str], code: int) -> None:
    assert p.returncode == code, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_rotate_force_never_renames_a_directory(tmp_path: Path) -> None:  # case 4
    target = tmp_path / "dir"
    target.mkdir()
    _one_line(cli("ledger", "rotate", "--force", "--ledger", str(target)), 74)
    assert target.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


@pytest.mark.parametrize(
    "args",
    [
        ["ledger", "list"],
        ["ledger", "verify"],
        ["ledger", "prune", "--before", "30d"],
        ["ledger", "reset", "--yes"],
        ["ledger", "import", "--dry-run"],
        ["ledger", "merge", "x.jsonl"],
        ["ledger", "report", "--html", "-"],
        ["ledger", "show", "01J"],
        ["metrics"],
    ],
)
def test_a_directory_or_root_as_ledger_is_one_line_74(tmp_path: Path, args: list[str]) -> None:  # case 5
    _one_line(cli(*args, "--ledger", str(tmp_path)), 74)
    _one_line(cli(*args, env={"CLAUDE_RUN_LEDGER": "/"}), 74)


def test_show_refuses_a_symlinked_ledger(ledger: Path, tmp_path: Path) -> None:  # case 6
    link = tmp_path / "link.jsonl"
    link.symlink_to(ledger)
    p = cli("ledger", "show", "01JHARD", "--ledger", str(link))
    _one_line(p, 74)
    assert "symbolic link" in p.stderr


def test_a_missing_ledger_is_named_and_nothing_is_created(tmp_path: Path) -> None:  # case 12 (lock part)
    missing = tmp_path / "typo.jsonl"
    for args in (["summary"], ["list"], ["export"], ["show", "x"], ["verify"]):
        p = cli("ledger", *args, "--ledger", str(missing))
        _one_line(p, 74)
        assert "no ledger at" in p.stderr and p.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["ledger", "summary", "--until", "9999-12-31"], {}),
        (["ledger", "list", "--until", "9999-12-31"], {}),
        (["ledger", "export", "--until", "9999-12-31"], {}),
        (["ledger", "prune", "--before", "0001-01-01", "--dry-run"], {}),
        (["ledger", "import", "--dry-run", "--since", "30d"], {}),
        (["ledger", "push", "--dry-run", "--otlp", "http://127.0.0.1:9", "--since", "this-month"], {}),
        (["ledger", "report", "--html", "-", "--period", "this-month"], {}),
    ],
)
def test_the_one_date_grammar_everywhere(ledger: Path, args: list[str], env: dict[str, str]) -> None:  # 5, 8
    p = cli(*args, "--ledger", str(ledger), env={"CLAUDE_CONFIG_DIR": str(ledger.parent), **env})
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["ledger", "prune", "--before", "99999999d"], {}, 2),
        (["ledger", "prune", "--before", "9999999999h"], {}, 2),
        (["ledger", "rotate", "--keep-days", "inf"], {}, 2),
        (["ledger", "rotate", "--keep-days", "1e400"], {}, 2),
        (["ledger", "rotate"], {"CLAUDE_RUN_LEDGER_KEEP_DAYS": "inf"}, 2),
        (["ledger", "compare", "--format", "bogus"], {}, 2),
        (["ledger", "summary", "--status", "bogus"], {}, 2),
        (["ledger", "summary", "--by", ""], {}, 2),
    ],
)
def test_bad_values_are_one_line_errors(
    ledger: Path, args: list[str], env: dict[str, str], code: int
) -> None:  # cases 5, 7, 13
    p = cli(*args, "--ledger", str(ledger), env=env)
    _one_line(p, code)
    if "CLAUDE_RUN_LEDGER_KEEP_DAYS" in env:
        assert "$CLAUDE_RUN_LEDGER_KEEP_DAYS" in p.stderr


def test_compare_csv_is_csv(ledger: Path) -> None:  # case 7
    p = cli("ledger", "compare", "--format", "csv", "--ledger", str(ledger))
    assert p.returncode == 0
    assert p.stdout.splitlines()[0] == "metric,period,against,change,change_pct"


def test_verify_reports_duplicates_and_impossible_figures(tmp_path: Path) -> None:  # cases 10, 16
    path = tmp_path / "l.jsonl"
    lines = [REC, {**REC, "id": "neg", "cost_usd": -10}, {**REC, "id": "big", "cost_usd": 1e308}, REC]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    path.chmod(0o600)
    p = cli("ledger", "verify", "--ledger", str(path))
    assert p.returncode == 1
    assert f"{path}:2: negative cost_usd" in p.stdout
    assert f"{path}:3: absurd cost_usd" in p.stdout
    assert f"{path}:4: duplicate id {REC['id']} (first at line 1)" in p.stdout


def test_terminal_and_markdown_escaping(ledger: Path) -> None:  # case 11
    for args in (["list"], ["summary", "--by", "tag:t"]):
        out = cli("ledger", *args, "--ledger", str(ledger)).stdout
        assert "\x1b" not in out and "\\x1b[31mred\\nnext" in out
    md = cli(
        "ledger",
        "summary",
        "--by",
        "project",
        "--by",
        "tag:h",
        "--format",
        "markdown",
        "--ledger",
        str(ledger),
    )
    row = next(line for line in md.stdout.splitlines() if "a\\|b" in line)
    assert "&lt;b&gt;bold&lt;/b&gt;" in row and row.count(" | ") == row.count("|") - row.count("\\|") - 2


def test_run_refusals_before_claude_starts(tmp_path: Path) -> None:  # cases 2, 13, 14
    marker = tmp_path / "ran"
    claude = tmp_path / "claude"
    claude.write_text(f"#!/bin/sh\ntouch {marker}\n")
    claude.chmod(0o755)
    ledger = tmp_path / "l.jsonl"
    base = ["--claude-bin", str(claude), "--ledger", str(ledger)]
    cases = [
        (["ledgr", *base], {}, "did you mean `claude-run ledger`"),
        (["metric", *base], {}, "did you mean `claude-run metrics`"),
        (["--hybrid", "-i", "x", *base], {}, "conflicts"),
        (["x", "--track", *base], {"CLAUDE_RUN_TRACK": "junk"}, "$CLAUDE_RUN_TRACK"),
        (["x", *base], {"CLAUDE_RUN_TRACK": "junk"}, "$CLAUDE_RUN_TRACK"),
        (["x", *base], {"CLAUDE_RUN_KILL_GRACE": "junk"}, "$CLAUDE_RUN_KILL_GRACE"),
        (["x", *base], {"CLAUDE_RUN_TELEMETRY": "maybe"}, "$CLAUDE_RUN_TELEMETRY"),
        (["--track", *base], {}, "not a terminal"),
        (["x", "--track", *base], {"CLAUDE_RUN_LEDGER_KEEP_DAYS": "inf"}, "$CLAUDE_RUN_LEDGER_KEEP_DAYS"),
        (["x", "--track", *base], {"CLAUDE_RUN_LEDGER_MAX_BYTES": "junk"}, "$CLAUDE_RUN_LEDGER_MAX_BYTES"),
    ]
    for args, env, words in cases:
        p = cli(*args, env=env)  # stdin is a pipe, not a terminal
        _one_line(p, 2)
        assert words in p.stderr, (args, p.stderr)
    assert not marker.exists() and not ledger.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int, data: bytes, *, close_early: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if close_early:
            return b""
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def test_metrics_serve_survives_bad_requests_and_checks_host(ledger: Path) -> None:  # cases 1, 3
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_run",
            "metrics",
            "--serve",
            f"127.0.0.1:{port}",
            "--ledger",
            str(ledger),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port)
        assert b" 405 " in _exchange(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        _exchange(port, b"GET /metr", close_early=True)
        _exchange(port, b"\x00\xff garbage\r\n\r\n")
        evil = _exchange(port, b"GET /metrics HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
        assert b" 421 " in evil
        good = _exchange(port, f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert b" 200 " in good and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_telemetry_serve_refuses_a_foreign_host(tmp_path: Path) -> None:  # case 3
    port = _free_port()
    ledger = tmp_path / "l.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_run",
            "telemetry",
            "serve",
            "--port",
            str(port),
            "--ledger",
            str(ledger),
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port)
        body = b'{"resourceLogs": []}'
        head = (
            "POST /v1/logs HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        assert b" 421 " in _exchange(port, head.encode() + body)
        _exchange(port, b"POST /v1/lo", close_early=True)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert not ledger.exists() or ledger.read_bytes() == b""


def test_merge_of_a_binary_file_is_one_warning(ledger: Path, tmp_path: Path) -> None:  # polish
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 40 + b"\n".join([b"\xff\xfe"] * 400))
    p = cli("ledger", "merge", str(binary), "--ledger", str(ledger))
    assert p.returncode == 0
    warnings = [line for line in p.stderr.splitlines() if "not valid records" in line]
    assert len(warnings) == 1 and str(binary) in warnings[0]


def test_help_shows_plain_metavars_and_dashboard_has_no_command() -> None:  # polish
    help_text = cli("ledger", "summary", "--help").stdout
    assert "<str>" not in help_text and "<list[str]>" not in help_text and "<bool>" not in help_text
    assert "[OPTIONS] COMMAND" not in cli("dashboard", "--help").stdout


def test_html_report_is_private(ledger: Path, tmp_path: Path) -> None:  # polish
    out = tmp_path / "r.html"
    assert cli("ledger", "report", "--html", str(out), "--ledger", str(ledger)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600


def test_tags_with_control_characters_are_refused_before_the_run(tmp_path: Path) -> None:  # case 11
    p = cli("x", "--tag", "k=a\x1b[2Jb", "--claude-bin", "/nonexistent")
    assert p.returncode == 2 and "control characters" in p.stderr


def test_the_multi_model_footnote_only_when_a_run_used_several(tmp_path: Path) -> None:  # polish
    one = {
        "input": 1,
        "output": 2,
        "cache_read": 0,
        "cache_creation": 0,
        "cost_usd": 0.25,
        "cost_source": "claude",
    }
    single = {**REC, "model": "claude-sonnet-4-5", "models": {"claude-sonnet-4-5": one}}
    path = tmp_path / "l.jsonl"
    path.write_bytes(orjson.dumps(single) + b"\n")
    path.chmod(0o600)
    assert "several models" not in cli("ledger", "summary", "--by", "model", "--ledger", str(path)).stdout
    double = {
        **single,
        "id": "01JHARD0000000000000000002",
        "models": {"claude-sonnet-4-5": one, "claude-haiku-4-5": one},
    }
    path.write_bytes(orjson.dumps(single) + b"\n" + orjson.dumps(double) + b"\n")
    assert "several models" in cli("ledger", "summary", "--by", "model", "--ledger", str(path)).stdout


def test_the_dashboard_survives_bad_requests(ledger: Path) -> None:  # servers: one shared layer
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_run", "dashboard", "--port", str(port), "--ledger", str(ledger)],
        env={**os.environ, "PYTHONPATH": SRC},
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(port)
        _exchange(port, b"GET / HT", close_early=True)
        _exchange(port, b"\x00\xff\r\n\r\n")
        assert b" 421 " in _exchange(port, b"GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n")
        good = _exchange(port, f"GET /api/view HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert b" 200 " in good and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
