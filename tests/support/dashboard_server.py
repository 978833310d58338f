"""Start `claude-run dashboard --port 0` as a subprocess and learn its URL from its stderr line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


@contextmanager
def dashboard(ledger: Path, log: Path, *extra: str, start_timeout: float = 30) -> Iterator[str]:
    # TZ=UTC: the page's days are local days; the tests' expected days are UTC days.
    env = {**os.environ, "PYTHONPATH": str(SRC), "TZ": "UTC"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "claude_run",
                "dashboard",
                "--port",
                "0",
                "--poll",
                "0.1",
                "--ledger",
                str(ledger),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    try:
        deadline = time.monotonic() + start_timeout
        url = None
        while url is None:
            for line in log.read_text().splitlines():
                if " serving " in line:
                    url = line.split(" serving ", 1)[1].split()[0]
            if url is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dashboard did not start:\n" + log.read_text())
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
