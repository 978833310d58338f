"""Time `claude-run metrics` (read the ledger + exposition) on a synthetic ledger of N records.

PYTHONPATH=src python benchmarks/telemetry_metrics.py [N]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))

from claude_run.commands.metrics import render  # noqa: E402
from claude_run.telemetry.outbound.prometheus import exposition  # noqa: E402
from support.telemetry_ledgers import MODELS, record  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    recs = [
        record(str(i), project=f"p{i % 40}", model=MODELS[i % 3], tags={"team": f"t{i % 25}"}, requests=3)
        for i in range(n)
    ]
    ledger = Path(tempfile.mkdtemp(prefix="tel-metrics-")) / "l.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in recs))
    walls, folds = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        text = render(ledger, ["team"], 10)
        walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        exposition(recs, tag_labels=["team"])
        folds.append(time.perf_counter() - t0)
    print(f"records: {n}, series lines: {sum(1 for line in text.splitlines() if not line.startswith('#'))}")
    print(f"median read + exposition: {statistics.median(walls) * 1000:.0f} ms")
    print(f"median exposition alone:  {statistics.median(folds) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
