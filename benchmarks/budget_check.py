"""What the pre-spawn budget check costs on a large ledger (it reads the whole ledger for now).

    PYTHONPATH=src python benchmarks/budget_check.py [RECORDS]

Prints the median wall time of `budget.check` with a daily and a monthly budget (two reads).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from claude_run.budget import BudgetSpec, check
from claude_run.record import iso_utc, new_id


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        with open(ledger, "wb") as fh:
            for i in range(n):
                started = now - timedelta(minutes=i * 5)  # ~1 year of runs at 100k
                rec = {
                    "v": 1,
                    "id": new_id(),
                    "started_at": iso_utc(started.timestamp()),
                    "status": "success",
                    "model": "claude-sonnet-4-5",
                    "tokens": {"input": 200, "output": 50, "cache_read": 8000, "cache_creation": 3000},
                    "cost_usd": 0.015,
                    "cost_source": "claude",
                    "tags": {"team": "a" if i % 2 else "b"},
                    "project": "widgets",
                }
                fh.write(orjson.dumps(rec) + b"\n")
        size = ledger.stat().st_size
        spec = BudgetSpec(daily=1e9, monthly=1e9, tags={"team": "a"})
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            check(spec, ledger)
            times.append(time.perf_counter() - t0)
        print(
            f"{n} records, {size / 1e6:.1f} MB: budget check median {statistics.median(times) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
