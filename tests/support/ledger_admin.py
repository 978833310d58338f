"""Helpers for the ledger store/admin tests: record factories and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

SRC = Path(__file__).resolve().parents[2] / "src"


def make_record(
    rid: str, *, started_at: str = "2026-05-01T12:00:00.000Z", supersedes: str | None = None, **extra: Any
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": 1,
        "id": rid,
        "started_at": started_at,
        "status": "success",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 10, "output": 20, "cache_read": 0, "cache_creation": 0},
        "cost_usd": 0.001,
        "tags": {},
    }
    if supersedes is not None:
        rec["supersedes"] = supersedes
    rec.update(extra)
    return rec


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")


def ids_in(ledger: Path) -> list[str]:
    from claude_run.ledger.store import iter_records

    return [rec["id"] for rec in iter_records(ledger)]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(SRC)
    full_env.pop("CLAUDE_RUN_LEDGER", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )
