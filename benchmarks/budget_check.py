"""What a budget adds before claude starts: `budget.check` (daily and monthly) on a large ledger.

    python benchmarks/budget_check.py --ledger /tmp/lb/ledger.jsonl      # e.g. ledger_summary.py's 1M
    python benchmarks/budget_check.py --records 100000                   # writes one first

Each round is a fresh process that times, from before the import to after the check, what a
budgeted run does before it spawns claude. Three cases, each round in turn:
- engine: no spend file (`<ledger>.budgets.json`): the read engine (DuckDB) sums the periods from
  the index and writes the file (the first budgeted run, or one after a rewrite or rotation);
- file: the spend file is up to date (the usual case);
- appended: one run was appended since the file was written (folded from the new bytes).
The index is built first, as any report or earlier budgeted run leaves it. Target (issue "One read
engine"): at most 100 ms added on a 1M-record ledger, the usual case.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

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
    from ledger_summary import _projects, make_record

    compile_sources(SRC)
    projects = _projects(random.Random(7))
    weights = [p["weight"] for p in projects]
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
    spend_file = Path(str(ledger) + ".budgets.json")

    def one() -> float:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(ledger)], env=env, capture_output=True, text=True, check=True
        )
        return float(out.stdout.strip())

    times: dict[str, list[float]] = {"engine": [], "file": [], "appended": []}
    size = ledger.stat().st_size
    for _ in range(args.rounds):
        spend_file.unlink(missing_ok=True)
        times["engine"].append(one())
        times["file"].append(one())
        with open(ledger, "ab") as fh:  # one more run, as a tracked run appends it
            fh.write(orjson.dumps(make_record(random.Random(), time.time() - 60, projects, weights)) + b"\n")
        times["appended"].append(one())
    print(f"{ledger} ({size / 1e9:.2f} GB), {args.rounds} rounds, load {os.getloadavg()}:")
    for case, ts in times.items():
        med = statistics.median(ts) * 1000
        print(
            f"  budget check ({case:8s}): median {med:4.0f} ms, min {min(ts) * 1000:4.0f} ms,"
            f" max {max(ts) * 1000:4.0f} ms"
        )
    usual = max(statistics.median(times["file"]), statistics.median(times["appended"])) * 1000
    print(f"target <= 100 ms (file and appended): {'met' if usual <= 100 else 'NOT met'}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
