"""Figures for the ledger's durability paths: append throughput, streaming read, verify, merge, prune.

Usage: PYTHONPATH=src python benchmarks/ledger_maintenance.py [RECORDS]   (default 200000)

Prints wall times and the peak RSS of each step (each step runs in a fresh child process so the
peaks do not mask each other). Not a test: nothing is asserted.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]


def _record(n: int) -> dict[str, Any]:
    day = 1 + n % 28
    return {
        "v": 1,
        "id": f"{n:026d}",
        "started_at": f"2026-{1 + n % 12:02d}-{day:02d}T10:00:00.000Z",
        "status": "success",
        "model": MODELS[n % 3],
        "project": f"project-{n % 40}",
        "git": {"branch": f"feature/{n % 90}"},
        "tokens": {"input": n % 5000, "output": n % 3000, "cache_read": n % 70000, "cache_creation": n % 900},
        "cost_usd": (n % 1000) / 1e4,
        "tags": {"team": f"t{n % 7}"},
    }


def _write(path: Path, start: int, count: int) -> None:
    with open(path, "wb") as fh:
        for n in range(start, start + count):
            fh.write(orjson.dumps(_record(n)) + b"\n")


def _child(fn: Callable[[], str], out: Any) -> None:
    t0 = time.perf_counter()
    note = fn()
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((wall, peak_mb, note))


def _step(name: str, fn: Callable[[], str]) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, queue))
    proc.start()
    wall, peak_mb, note = queue.get()
    proc.join()
    print(f"{name:<44} {wall:8.2f} s   peak RSS {peak_mb:7.1f} MB   {note}")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    from claude_run.ledger import store
    from claude_run.ledger.maintenance import merge, prune
    from claude_run.ledger.rotation import RotationPolicy
    from claude_run.ledger.verify import verify

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ledger = tmp / "ledger.jsonl"
        _write(ledger, 0, count)
        size_mb = ledger.stat().st_size / 1e6
        print(f"ledger: {count} records, {size_mb:.0f} MB")

        def appends() -> str:
            target = tmp / "appends.jsonl"
            n = 500
            for i in range(n):
                store.append(target, _record(i), policy=RotationPolicy(0))
            return f"{n} locked+fsynced appends"

        def read() -> str:
            stats = store.ReadStats()
            return f"{sum(1 for _ in store.iter_records(ledger, stats))} records"

        def floor() -> str:
            with open(ledger, "rb") as fh:
                return f"{sum(1 for line in fh if orjson.loads(line))} lines (orjson loop, the floor)"

        def do_verify() -> str:
            return f"{verify(ledger).records} records, ok"

        artifact = tmp / "ci.jsonl"
        _write(artifact, count - 1000, 2000)  # half already present

        def do_merge() -> str:
            result = merge(ledger, [artifact], policy=RotationPolicy(0))
            return f"added {result.added}, already present {result.already_present}"

        def do_prune() -> str:
            import datetime as dt

            result = prune(ledger, dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc))
            return f"removed {result.dropped}, kept {result.kept}"

        _step("append x500 (lock, write, fsync)", appends)
        _step("read all (orjson loop floor)", floor)
        _step("read all (store.iter_records)", read)
        _step("verify", do_verify)
        _step("merge 2000 (1000 new)", do_merge)
        _step("prune --before 2026-07-01 (about half)", do_prune)


if __name__ == "__main__":
    main()
