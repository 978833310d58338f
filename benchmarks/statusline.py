"""`claude-run statusline` against `claude-run --version` on a 50k-record ledger (target: at most 2x).

    python benchmarks/statusline.py [--records 50000] [--rounds 41]

Claude runs the status-line command on every refresh. Each round times, back to back and in
rotating order: `claude-run --version` (the floor: Python, the package, the argument parser),
`claude-run statusline` with an up-to-date day-totals file (the usual refresh), and the same right
after one record was appended (the tail is read). The first refresh after the ledger is new,
replaced or rotated starts a detached full read and shows `today …`; both times are printed too.
Medians; the ratio is median/median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchsetup import compile_sources  # noqa: E402

from claude_run.budgets.daytotals import SUFFIX, iso_ms  # noqa: E402

SAMPLE = ROOT.parent.parent / "shared" / "samples" / "claude-code-2.1.330" / "statusline-input.json"
FALLBACK_INPUT = (
    b'{"session_id":"36a6f896-266f-43ce-adb6-77795e3426a5","model":{"id":"claude-sonnet-4-5",'
    b'"display_name":"Sonnet 4.5"},"cost":{"total_cost_usd":0.00722805},"context_window":'
    b'{"used_percentage":3},"rate_limits":{"five_hour":{"used_percentage":41,"resets_at":1796461517}}}'
)


def record(i: int, started: float) -> bytes:
    rec = {
        "v": 1,
        "id": f"01BENCH{i:019d}",
        "started_at": iso_ms(started),
        "ended_at": iso_ms(started + 60),
        "mode": ("non-interactive", "interactive", "imported")[i % 3],
        "status": "success",
        "session_id": f"{i:08x}-0000-4000-8000-000000000000",
        "model": "claude-sonnet-4-5",
        "tokens": {"input": 200, "output": 50, "cache_read": 8000, "cache_creation": 3000},
        "models": {"claude-sonnet-4-5": {"input": 200, "output": 50, "cost_usd": 0.015}},
        "cost_usd": 0.015,
        "cost_source": "claude",
        "project": "widgets",
        "git": {"branch": "main", "commit": "0" * 40, "remote": "github.com:acme/widgets"},
        "tags": {"team": "a"},
        "claude_run_version": "0.1.0",
    }
    return orjson.dumps(rec) + b"\n"


def command() -> list[str]:
    script = Path(sys.executable).with_name("claude-run")
    return [str(script)] if script.exists() else [sys.executable, "-m", "claude_run"]


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=True)
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=41)
    args = ap.parse_args()
    compile_sources(ROOT / "src")
    stdin = SAMPLE.read_bytes() if SAMPLE.exists() else FALLBACK_INPUT
    base = command()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        now = time.time()
        with open(ledger, "wb") as fh:  # a year of runs, the newest today
            for i in range(args.records):
                fh.write(record(i, now - i * (365 * 86400 / args.records)))
        env = {**os.environ, "CLAUDE_RUN_LEDGER": str(ledger), "NO_COLOR": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cold, background = [], []
        state = Path(str(ledger) + SUFFIX)
        for _ in range(3):
            state.unlink(missing_ok=True)
            t0 = time.perf_counter()
            cold.append(timed([*base, "statusline"], env, stdin)[0])  # says "today …", starts the read
            while not state.exists():
                time.sleep(0.005)
            background.append(time.perf_counter() - t0)
        _, line = timed([*base, "statusline"], env, stdin)
        version, warm, tail = [], [], []
        for r in range(args.rounds):
            jobs = [
                (version, [*base, "--version"], None),
                (warm, [*base, "statusline"], stdin),
            ]
            for bucket, argv, data in jobs[r % 2 :] + jobs[: r % 2]:
                bucket.append(timed(argv, env, data)[0])
            with open(ledger, "ab") as fh:
                fh.write(record(args.records + r, time.time()))
            tail.append(timed([*base, "statusline"], env, stdin)[0])
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        ms = statistics.median
        print(f"ledger: {args.records} records, {ledger.stat().st_size / 1e6:.1f} MB; {args.rounds} rounds")
        print(f"status line printed: {line.decode().strip()}")
        print(f"claude-run --version                  median {ms(version) * 1000:7.1f} ms")
        print(f"claude-run statusline (up to date)    median {ms(warm) * 1000:7.1f} ms")
        print(f"claude-run statusline (one append)    median {ms(tail) * 1000:7.1f} ms")
        print(f"claude-run statusline (new ledger)    median {ms(cold) * 1000:7.1f} ms  (starts a full read)")
        print(f"  ... until the detached full read is saved: median {ms(background) * 1000:7.1f} ms")
        print(f"ratio up to date / --version: {ms(warm) / ms(version):.2f}  (target <= 2)")
        print(f"ratio one append / --version: {ms(tail) / ms(version):.2f}")
        print(f"load average at the end: {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
