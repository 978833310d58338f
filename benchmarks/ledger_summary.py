"""Benchmark: `ledger summary` on a large ledger, against the floor of merely parsing every line.

Targets (issue "One read engine"): cold <= 0.6x the floor; warm, and warm after one append, <= 0.3 s;
peak RSS <= 250 MB.

    PYTHONPATH=src python benchmarks/ledger_summary.py [--records 1000000] [--dir /tmp/x] [--keep]

Writes a ledger of records shaped like `runner.build_run_record` output (a year of dates, many models,
projects, branches, CI jobs, tags, some multi-model, unpriced, imported and superseding records), then
in the same run measures:

- floor: parse every line with orjson in one Python loop;
- each command (`--by day`, `--by model`, `--by tag:team --since 90d`) as a whole subprocess:
  cold (no index: a lean read, while a detached process builds the index), warm (from the index),
  warm after appending one run (index + tail);
- peak RSS of each command (ru_maxrss of the child), and the cold command's CPU time against the
  floor's (less sensitive than wall time to the other processes on shared cores).

It prints the figures and the load average seen, since other processes share the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from benchsetup import compile_sources  # noqa: E402

from claude_run.record.schema import iso_utc, new_id  # noqa: E402

MODELS = {
    "claude-sonnet-4-5-20250929": (3e-6, 15e-6, 0.3e-6, 3.75e-6),
    "claude-opus-4-1-20250805": (15e-6, 75e-6, 1.5e-6, 18.75e-6),
    "claude-haiku-4-5-20251001": (1e-6, 5e-6, 0.1e-6, 1.25e-6),
    "claude-3-5-haiku-20241022": (0.8e-6, 4e-6, 0.08e-6, 1e-6),
    "claude-sonnet-4-20250514": (3e-6, 15e-6, 0.3e-6, 3.75e-6),
    "claude-opus-4-5-20251101": (5e-6, 25e-6, 0.5e-6, 6.25e-6),
    "claude-sonnet-4-5-20250929[1m]": (6e-6, 22.5e-6, 0.6e-6, 7.5e-6),
    "internal-gateway-model": None,  # no list price: unpriced
}
TEAMS = ["platform", "payments", "search", "mobile", "data", "infra", "growth", "security", "ml", "web"]
STATUSES = (
    ["success"] * 88 + ["error"] * 6 + ["budget_exceeded"] * 2 + ["interrupted"] * 2 + ["timeout", "crashed"]
)
JOBS = ["review", "fix-tests", "triage", "docs", "refactor", "lint-fix"]


def _projects(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(40):
        main = rng.choice(list(MODELS)[:6])
        out.append(
            {
                "name": f"service-{i:02d}",
                "team": TEAMS[i % len(TEAMS)],
                "model": main,
                "remote": f"https://github.com/acme/service-{i:02d}.git",
                "cwd": hashlib.sha256(f"/work/service-{i:02d}".encode()).hexdigest()[:16],
                "weight": rng.paretovariate(1.2),
            }
        )
    return out


def make_record(
    rng: random.Random, t: float, projects: list[dict[str, Any]], weights: list[float]
) -> dict[str, Any]:
    p = rng.choices(projects, weights)[0]
    in_ci = rng.random() < 0.55
    week = int(t // (7 * 86400))
    branch = "main" if rng.random() < 0.4 else f"feature/{p['name'][-2:]}-{week % 97}-{rng.randrange(4)}"
    model = p["model"] if rng.random() < 0.8 else rng.choice(list(MODELS))
    models = [model] + (["claude-haiku-4-5-20251001"] if rng.random() < 0.3 and "haiku" not in model else [])
    mode = rng.choices(["non-interactive", "hybrid", "interactive"], [80, 12, 8])[0]
    status = rng.choice(STATUSES)
    duration = int(rng.lognormvariate(10.5, 0.8))
    per: dict[str, dict[str, Any]] = {}
    totals = {"input": 0, "output": 0, "cache_read": 0, "cache_creation": 0}
    cost: float | None = 0.0
    for m in models:
        toks = {
            "input": int(rng.lognormvariate(6, 1.5)),
            "output": int(rng.lognormvariate(7, 1.2)),
            "cache_read": int(rng.lognormvariate(10.5, 1.3)) if rng.random() < 0.9 else 0,
            "cache_creation": int(rng.lognormvariate(8.5, 1.2)),
        }
        rates = MODELS[m]
        priced = zip(totals, rates, strict=True) if rates is not None else None
        c = None if priced is None else round(sum(toks[k] * r for k, r in priced), 10)
        per[m] = {**toks, "cost_usd": c, "cost_source": "claude" if c is not None else "unpriced"}
        for k in totals:
            totals[k] += toks[k]
        cost = None if c is None or cost is None else cost + c
    tags = {"team": p["team"], "env": "ci" if in_ci else "local"}
    if in_ci and rng.random() < 0.3:
        tags["pr"] = str(1000 + week * 7 + rng.randrange(40))
    if rng.random() < 0.1:
        tags["experiment"] = rng.choice(["a", "b"])
    run_id = str(rng.randrange(10**9, 10**10))
    rec: dict[str, Any] = {
        "v": 1,
        "id": new_id(int(t * 1000)),
        "started_at": iso_utc(t),
        "ended_at": iso_utc(t + duration / 1000),
        "mode": mode,
        "status": status,
        "exit_code": 0 if status == "success" else 1,
        "tags": tags,
        "task_sha256": hashlib.sha256(str(rng.random()).encode()).hexdigest(),
        "user": hashlib.sha256(f"u{rng.randrange(60)}".encode()).hexdigest()[:16],
        "source": "run",
        "claude_run_version": "0.1.0",
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "claude_version": "2.1.330",
        "model": model,
        "tokens": totals,
        "cost_usd": None if cost is None else round(cost, 10),
        "cost_source": "claude" if cost is not None else "unpriced",
        "models": per,
        "duration_ms": duration,
        "duration_api_ms": int(duration * 0.8),
        "num_turns": rng.randrange(1, 30),
        "subtype": "success" if status == "success" else "error_during_execution",
        "is_error": status != "success",
        "terminal_reason": None,
        "api_error_status": None,
        "project": p["name"],
        "cwd_sha256": p["cwd"],
        "git": {
            "branch": branch,
            "commit": hashlib.sha1(str(rng.random()).encode()).hexdigest(),
            "remote": p["remote"],
        },
        "ci": {
            "provider": "github",
            "workflow": "claude",
            "job": rng.choice(JOBS),
            "run_id": run_id,
            "attempt": "1",
            "ref": f"refs/heads/{branch}",
            "commit": hashlib.sha1(run_id.encode()).hexdigest(),
            "url": f"https://github.com/acme/{p['name']}/actions/runs/{run_id}",
        }
        if in_ci
        else None,
    }
    return rec


def write_ledger(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    projects = _projects(rng)
    weights = [p["weight"] for p in projects]
    end = time.time() - 3600
    start = end - 365 * 86400
    step = (end - start) / n
    imported_last: dict[str, dict[str, Any]] = {}
    with open(path, "wb") as fh:
        buf: list[bytes] = []
        for i in range(n):
            t = start + i * step + rng.random() * step
            rec = make_record(rng, t, projects, weights)
            r = rng.random()
            if r < 0.03:  # an imported interactive session; some grow and are re-imported (supersedes)
                rec["mode"], rec["source"], rec["ci"] = "imported", "import", None
                old = imported_last.get(rec["project"]) if rng.random() < 0.3 else None
                if old is not None:
                    rec["supersedes"], rec["session_id"] = old["id"], old["session_id"]
                imported_last[rec["project"]] = rec
            buf.append(orjson.dumps(rec) + b"\n")
            if len(buf) >= 10000:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    os.chmod(path, 0o600)


def floor(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one orjson pass over every line."""
    loads = orjson.loads
    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
    return time.perf_counter() - t0, time.process_time() - c0


def wait_for_index(ledger: Path, timeout: float = 600) -> float:
    """Seconds until the index the cold command started building is published and not locked."""
    import fcntl

    root = ledger.with_name(ledger.name + ".index")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        manifest = root / "engine.json"
        if manifest.exists():
            with open(root / "build.lock", "a+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return time.perf_counter() - t0
                except OSError:
                    pass
        time.sleep(0.1)
    raise SystemExit("the index was not built in time")


def run_cmd(ledger: Path, args: list[str]) -> tuple[float, float, float, bytes]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one `claude-run ledger summary ...` process."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "TZ": "UTC"}
    cmd = [sys.executable, "-c", _CHILD, "ledger", "summary", "--ledger", str(ledger), "--tz", "UTC", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(args)}\n{out.stderr.decode()}")
    last = out.stderr.decode().strip().splitlines()[-1].split()
    return wall, float(last[-1]) / 1024, float(last[1]), out.stdout


# The child reports its own peak RSS and its workers' (ru_maxrss of RUSAGE_CHILDREN is the largest).
_CHILD = """
import resource, sys
from claude_run.__main__ import main
code = main(sys.argv[1:])
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.flush()
sys.stderr.write(f"\\ncpu_s {me.ru_utime + me.ru_stime:.3f} rss_kb {max(me.ru_maxrss, kids.ru_maxrss)}\\n")
sys.exit(code)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated ledger")
    ap.add_argument("--reuse", action="store_true", help="reuse a ledger already in --dir")
    args = ap.parse_args()
    compile_sources(SRC)
    work = args.dir or Path(tempfile.mkdtemp(prefix="claude-run-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ledger = work / "ledger.jsonl"
    if not (args.reuse and ledger.exists()):
        t0 = time.perf_counter()
        write_ledger(ledger, args.records)
        print(
            f"wrote {args.records:,} records, {ledger.stat().st_size / 1e9:.2f} GB"
            f" in {time.perf_counter() - t0:.1f}s"
        )
    size = ledger.stat().st_size
    print(f"ledger: {ledger} ({size / 1e9:.2f} GB), cores: {os.cpu_count()}, load: {os.getloadavg()}")
    floor(ledger)  # warm the page cache so floor and cold runs read from memory alike
    fl, _ = floor(ledger)
    print(f"floor (orjson.loads every line, one loop): {fl:.2f}s")
    queries = [["--by", "day"], ["--by", "model"], ["--by", "tag:team", "--since", "90d"]]
    projects = _projects(random.Random(7))
    results = []
    index = ledger.with_name(ledger.name + ".index")
    for q in queries:
        shutil.rmtree(index, ignore_errors=True)
        # The floor again right before each cold command: on shared cores it drifts by ±20% within
        # minutes, so each ratio is taken against the floor measured next to it.
        fl, fl_cpu = floor(ledger)
        cold, cold_rss, cold_cpu, _ = run_cmd(ledger, q)
        built = wait_for_index(ledger)  # the cold command left a detached process building it
        warm, warm_rss, _cpu, _out1 = run_cmd(ledger, q)
        extra = orjson.dumps(make_record(random.Random(), time.time() - 60, projects, [1.0] * len(projects)))
        with open(ledger, "ab") as fh:  # one more run, as `claude-run --track` would append it
            fh.write(extra + b"\n")
        appended, app_rss, _cpu, _out2 = run_cmd(ledger, q)
        results.append((" ".join(q), cold, cold_rss, warm, warm_rss, appended, app_rss, fl))
        print(
            f"summary {' '.join(q):28s} cold {cold:6.2f}s ({cold / fl:.2f}x floor {fl:.2f}s,"
            f" cpu {cold_cpu:.2f}s = {cold_cpu / fl_cpu:.2f}x the floor's, {cold_rss:.0f} MB;"
            f" index built in the background in {built:.1f}s)"
            f"  warm {warm:5.2f}s ({warm_rss:.0f} MB)  appended {appended:5.2f}s ({app_rss:.0f} MB)"
        )
    print(f"load average after: {os.getloadavg()}")
    print(
        "targets: cold <= 0.6x floor: "
        + ("met" if all(r[1] <= 0.6 * r[7] for r in results) else "NOT met")
        + "; warm and after one append <= 0.3 s: "
        + ("met" if all(r[3] <= 0.3 and r[5] <= 0.3 for r in results) else "NOT met")
        + "; RSS <= 250 MB: "
        + ("met" if all(max(r[2], r[4], r[6]) <= 250 for r in results) else "NOT met")
    )
    _ = resource
    if not args.keep and args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
