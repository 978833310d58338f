"""What a budget adds before claude starts: `budget.check` (daily and monthly) on a large ledger.

    python benchmarks/budget_check.py --ledger /tmp/lb/ledger.jsonl      # e.g. ledger_summary.py's 1M
    python benchmarks/budget_check.py --records 100000                   # writes one first

Each round is a fresh process that times, from before the import to after the check, what a
budgeted run does before it spawns claude: import the read engine (DuckDB) and sum the two periods
from the index (plus the ledger's new tail). The index is built first, as any report or earlier
budgeted run leaves it. Target (issue "One read engine"): at most 100 ms on a 1M-record ledger.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = """
import sys, time
t0 = time.perf_counter()
from claude_run.budgets.check import BudgetSpec, check
spec = BudgetSpec(daily=1e12, monthly=1e12, tags={"team": "platform"})
check(spec, __import__("pathlib").Path(sys.argv[1]))
print(time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ledger", type=Path)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    from benchsetup import compile_sources

    compile_sources(SRC)
    tmp = None
    ledger = args.ledger
    if ledger is None:
        from ledger_summary import write_ledger

        tmp = tempfile.TemporaryDirectory()
        ledger = Path(tmp.name) / "ledger.jsonl"
        write_ledger(ledger, args.records)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run(
        [sys.executable, "-m", "claude_run", "ledger", "index", "--ledger", str(ledger)], env=env, check=True
    )
    times = []
    for _ in range(args.rounds):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(ledger)], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip()))
    size = ledger.stat().st_size
    med = statistics.median(times) * 1000
    print(
        f"{ledger} ({size / 1e9:.2f} GB): budget check (import + daily + monthly) median {med:.0f} ms,"
        f" min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.rounds} rounds;"
        f" load {os.getloadavg()}; target <= 100 ms: {'met' if med <= 100 else 'NOT met'}"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
