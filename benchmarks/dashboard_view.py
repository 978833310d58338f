"""How the dashboard copes with a 1,000,000-record ledger. Prints figures; asserts nothing.

    PYTHONPATH=src python benchmarks/dashboard_view.py [--records 1000000] [--ledger PATH] [--keep]

The ledger is `benchmarks/ledger_summary.py`'s (`write_ledger`: a year, many models, projects,
branches, tags, multi-model, unpriced, imported and superseding records). Measured in one process,
on this machine, in one run (the cores are shared, so only ratios within a run mean much):
- floor: parsing every line with orjson in one loop (the least any full read can cost);
- first all-time view with no index (what a first `dashboard` or `report --html` costs: the engine
  reads the dashboard's columns in memory and builds its index in the background), and its ratio
  to the floor — issue 12's target is <= 1.0x;
- the same with the index warm (every later start);
- views per filter set, cached views, the page size;
- one appended run: the watcher's reopen (index + tail) and the next view; an unchanged look;
- a fresh engine per request against one kept engine (what the server does);
- peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_summary import write_ledger

from claude_run.dashboard.data import COLUMNS, Live, _prepare, compute, parse_filters
from claude_run.dashboard.page import document
from claude_run.ledger.store import segments
from claude_run.query import index
from claude_run.query.engine import build_index, open_engine
from claude_run.record.schema import iso_utc, new_id


def floor(ledger: Path) -> float:
    loads = orjson.loads
    t = time.perf_counter()
    for path in segments(ledger):
        with open(path, "rb") as fh:
            for line in fh:
                loads(line)
    return time.perf_counter() - t


def first_view(ledger: Path) -> tuple[float, Live, str]:
    """From nothing to the first all-time view, as the server does it."""
    t = time.perf_counter()
    live = Live(ledger)
    live.refresh()
    live.view(parse_filters("all"))
    took = time.perf_counter() - t
    assert live._eng is not None
    return took, live, live._eng.source


def wait_for_index(ledger: Path, limit: float = 900) -> float:
    """Until the index is up to date (the background build the first view spawned has finished;
    `build_index` says False while another process holds the build lock)."""
    t = time.perf_counter()
    while not build_index(ledger) and time.perf_counter() - t < limit:
        time.sleep(0.5)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--ledger", type=Path, help="an existing ledger to use (else one is written)")
    ap.add_argument("--keep", action="store_true", help="keep a generated ledger")
    args = ap.parse_args()
    tmp = None
    if args.ledger and args.ledger.exists():
        ledger = args.ledger
    else:
        tmp = Path(tempfile.mkdtemp(prefix="dash-bench-"))
        ledger = args.ledger or tmp / "ledger.jsonl"
        t = time.perf_counter()
        write_ledger(ledger, args.records)
        print(f"wrote {args.records:,} records in {time.perf_counter() - t:.1f} s")
    size = sum(p.stat().st_size for p in segments(ledger))
    print(f"ledger {ledger}: {size / 1e9:.2f} GB in {len(segments(ledger))} segment(s)")

    floor(ledger)  # warm the page cache, so the floor and the dashboard read from memory alike
    fl = floor(ledger)
    print(f"floor (orjson.loads of every line, one loop, one process): {fl:.2f} s")

    shutil.rmtree(index.index_dir(ledger), ignore_errors=True)
    cold, live, source = first_view(ledger)
    print(f"first all-time view, no index ({source}): {cold:.2f} s = {cold / fl:.2f}x floor (target <= 1.0x)")
    live.close()
    waited = wait_for_index(ledger)
    print(f"background index build finished {waited:.1f} s later")
    fl2 = floor(ledger)
    warm, live, source = first_view(ledger)
    print(
        f"first all-time view, index warm ({source}): {warm:.2f} s = {warm / fl2:.2f}x floor"
        f" (floor again: {fl2:.2f} s)"
    )

    for label, flt in (
        ("view all", parse_filters("all")),
        ("view 30d", parse_filters("30d")),
        ("view 90d tag team=search", parse_filters("90d", tag="team=search")),
        ("view 365d service-07 / sonnet", parse_filters("365d", "service-07", "claude-sonnet-4-5-20250929")),
    ):
        live._cache.clear()
        t = time.perf_counter()
        view = live.view(flt)
        took = time.perf_counter() - t
        t = time.perf_counter()
        live.view(flt)
        again = time.perf_counter() - t
        page = document(view, live=True).encode()
        print(
            f"{label}: {took * 1000:.0f} ms (cached {again * 1000:.2f} ms), page {len(page) / 1024:.0f} KiB,"
            f" JSON {len(orjson.dumps(view)) / 1024:.0f} KiB; runs {view['totals']['runs']:,},"
            f" ${view['totals']['cost_usd']:,.2f}"
        )

    with open(ledger, "rb") as fh:
        rec = orjson.loads(fh.readline())
    rec["id"] = new_id()
    rec["started_at"] = iso_utc(time.time())
    with open(ledger, "ab") as fh:  # one more run's line, as a tracked run appends it (no rotation)
        fh.write(orjson.dumps(rec) + b"\n")
    t = time.perf_counter()
    changed = live.refresh()
    reopen = time.perf_counter() - t
    t = time.perf_counter()
    live.view(parse_filters("30d"))
    after = time.perf_counter() - t
    print(
        f"one appended run: reopen {reopen * 1000:.0f} ms (changed={changed}),"
        f" then view 30d {after * 1000:.0f} ms"
    )
    t = time.perf_counter()
    unchanged = live.refresh()
    print(f"unchanged look: {(time.perf_counter() - t) * 1000:.2f} ms (changed={unchanged})")
    live.close()

    # A fresh engine per request (open, prepare, answer) against the kept one (a cached answer,
    # or one query set when the filters are new): why the server keeps one and reopens on change.
    t = time.perf_counter()
    eng = open_engine(ledger, columns=COLUMNS)
    static = _prepare(eng, ledger, size)
    compute(eng, static, ledger, parse_filters("30d"))
    eng.close()
    print(f"fresh engine per request, view 30d: {(time.perf_counter() - t) * 1000:.0f} ms")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MB")
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
