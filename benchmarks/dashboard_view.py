"""How the dashboard copes with a 1,000,000-record ledger. Prints figures; asserts nothing.

    PYTHONPATH=src python benchmarks/dashboard_view.py [--records 1000000] [--ledger PATH] [--keep]

Measures, in one process on this machine:
- floor: parsing every line with orjson in one loop (the least any full read can cost)
- cold: the dashboard's first full fold of the ledger (what `dashboard` does before it listens,
  and what `ledger report --html` does once)
- view: answering one filter set from the sums (what each page load / SSE push costs), and the size
  of what the browser receives
- warm: the fold after one more run is appended (what the live page costs per new run)
- peak RSS of the process
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

from claude_run.dashboard.data import Rollup, parse_filters
from claude_run.dashboard.page import document
from claude_run.ledger.store import append, encode
from claude_run.record import iso_utc, new_id

MODELS = [
    ("claude-sonnet-4-5", 3e-6, 15e-6),
    ("claude-opus-4-1", 15e-6, 75e-6),
    ("claude-haiku-4-5", 1e-6, 5e-6),
    ("claude-sonnet-4", 3e-6, 15e-6),
    ("claude-3-5-haiku", 0.8e-6, 4e-6),
    ("claude-opus-4-5", 5e-6, 25e-6),
    ("internal-proxy-model", 0, 0),  # unknown to genai-prices: unpriced
]


def generate(path: Path, count: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    now = datetime.now(timezone.utc).timestamp()
    # Realistic nesting: branches belong to a project, a project mostly belongs to one team.
    projects = [f"project-{i:02d}" for i in range(30)]
    branches = {p: ["main", *[f"feat/{p[-2:]}-{j}" for j in range(rnd.randint(0, 6))]] for p in projects}
    teams = ["web", "data", "infra", "mobile", "ml", "sec", "docs", "qa"]
    team_of = {p: teams[i % len(teams)] for i, p in enumerate(projects)}
    batch: list[bytes] = []
    with open(path, "wb") as fh:
        for i in range(count):
            ts = now - rnd.random() * 365 * 86400
            model, pin, pout = MODELS[min(int(rnd.expovariate(0.7)), len(MODELS) - 1)]
            inp, out = rnd.randint(10, 5000), rnd.randint(50, 20000)
            read, write = rnd.randint(0, 200_000), rnd.randint(0, 20_000)
            cost = (
                None if model.startswith("internal") else round(inp * pin + out * pout + read * pin / 10, 6)
            )
            project = rnd.choice(projects)
            branch = rnd.choice(branches[project])
            tags = {"team": team_of[project] if rnd.random() < 0.9 else rnd.choice(teams)}
            if branch != "main" and rnd.random() < 0.6:
                tags["pr"] = str(rnd.randint(1, 2000))
            rec = {
                "v": 1,
                "id": new_id(int(ts * 1000)),
                "started_at": iso_utc(ts),
                "ended_at": iso_utc(ts + 60),
                "mode": "non-interactive",
                "status": "success" if rnd.random() < 0.93 else "error",
                "exit_code": 0,
                "tags": tags,
                "user": "0123456789abcdef",
                "source": "run",
                "claude_run_version": "0.1.0",
                "session_id": f"s{i}",
                "claude_version": "2.1.330",
                "model": model,
                "tokens": {"input": inp, "output": out, "cache_read": read, "cache_creation": write},
                "cost_usd": cost,
                "cost_source": "claude" if cost is not None else "unpriced",
                "models": {
                    model: {
                        "input": inp,
                        "output": out,
                        "cache_read": read,
                        "cache_creation": write,
                        "cost_usd": cost,
                        "cost_source": "claude" if cost is not None else "unpriced",
                    }
                },
                "duration_ms": rnd.randint(2000, 600_000),
                "num_turns": rnd.randint(1, 40),
                "project": project,
                "git": {"branch": branch, "commit": "0" * 40, "remote": None},
                "ci": {
                    "provider": "github",
                    "job": "review",
                    "url": "https://github.com/acme/app/actions/runs/1",
                }
                if rnd.random() < 0.5
                else None,
            }
            batch.append(encode(rec))
            if len(batch) >= 10_000:
                fh.write(b"".join(batch))
                batch.clear()
        fh.write(b"".join(batch))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--ledger", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep a generated ledger")
    args = ap.parse_args()
    tmp = None
    if args.ledger and args.ledger.exists():
        ledger = args.ledger
    else:
        if args.ledger:
            ledger = args.ledger
        else:
            tmp = tempfile.TemporaryDirectory(prefix="dash-bench-")
            ledger = Path(tmp.name) / "ledger.jsonl"
        t = time.perf_counter()
        generate(ledger, args.records)
        print(f"generated {args.records:,} records in {time.perf_counter() - t:.1f} s")
    size = ledger.stat().st_size
    print(f"ledger {ledger}: {size / 1e9:.2f} GB")

    # CPU time beside wall time: this machine is shared, and CPU time is what contention distorts least.
    t, c = time.perf_counter(), time.process_time()
    n = 0
    with open(ledger, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    floor, floor_cpu = time.perf_counter() - t, time.process_time() - c
    print(
        f"floor (orjson.loads of every line, one loop): {floor:.2f} s wall,"
        f" {floor_cpu:.2f} s CPU for {n:,} lines"
    )

    rollup = Rollup(ledger)
    t, c = time.perf_counter(), time.process_time()
    rollup.refresh()
    cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"cold fold CPU: {cold_cpu:.2f} s ({cold_cpu / floor_cpu:.2f}x floor CPU)")
    rows = sum(len(r) for r in rollup.days.values())
    tagged_rows = sum(len(r) for t in rollup.tag_days.values() for r in t.values())
    print(
        f"cold fold: {cold:.2f} s ({cold / floor:.2f}x floor); {rollup.records:,} records ->"
        f" {rows:,} rows + {tagged_rows:,} tag rows"
    )

    for label, flt in (
        ("view 30d", parse_filters("30d")),
        ("view all", parse_filters("all")),
        ("view 90d tag team=web", parse_filters("90d", tag="team=web")),
        ("view 365d project-07 / sonnet", parse_filters("365d", "project-07", "claude-sonnet-4-5")),
    ):
        t = time.perf_counter()
        view = rollup.view(flt)
        took = time.perf_counter() - t
        t = time.perf_counter()
        rollup.view(flt)
        again = time.perf_counter() - t
        t = time.perf_counter()
        page = document(view, live=True).encode()
        render = time.perf_counter() - t
        print(
            f"{label}: view {took * 1000:.0f} ms (cached {again * 1000:.2f} ms),"
            f" render {render * 1000:.0f} ms,"
            f" page {len(page) / 1024:.0f} KiB,"
            f" JSON {len(orjson.dumps(view)) / 1024:.0f} KiB; runs {view['totals']['runs']:,},"
            f" ${view['totals']['cost_usd']:,.2f}"
        )

    with open(ledger, "rb") as fh:
        rec = orjson.loads(fh.readline())
    rec["id"] = new_id()
    rec["started_at"] = iso_utc(time.time())
    append(ledger, rec)
    t = time.perf_counter()
    changed = rollup.refresh()
    warm = time.perf_counter() - t
    t = time.perf_counter()
    rollup.view(parse_filters("30d"))
    warm_view = time.perf_counter() - t
    print(
        f"warm after one append: fold {warm * 1000:.1f} ms (changed={changed}),"
        f" view 30d {warm_view * 1000:.0f} ms"
    )
    t = time.perf_counter()
    unchanged = rollup.refresh()
    print(
        f"unchanged look (one stat per segment): {(time.perf_counter() - t) * 1000:.2f} ms"
        f" (changed={unchanged})"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MB")
    if tmp is not None and not args.keep:
        tmp.cleanup()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
