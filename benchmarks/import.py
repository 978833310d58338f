"""Benchmark `claude-run ledger import` against ccusage and a plain Python floor, side by side.

    python benchmarks/import.py [--sessions 1000] [--messages 200] [--dir DIR] [--ccusage BIN]

Generates (once, cached in --dir) a history shaped like real Claude Code transcripts (see
tests/support/import_history.py), then measures, in one run on the same files:
- floor: one Python process that skips lines without "usage" and parses the rest with orjson;
- claude-run first import (wall, peak RSS of the whole process tree, largest single process);
- claude-run re-import with nothing new;
- ccusage 20 `daily --json --offline` (the native binary; install: `npm install --no-save
  ccusage@20 @ccusage/ccusage-linux-x64@20` in a directory, pass --ccusage or let it be found
  under ./node_modules or /tmp/import-cc20/node_modules);
- optionally ccusage 18 (`--ccusage18 BIN`), slow and memory-hungry.
Figures are printed with the machine's load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.import_history import HistorySpec, generate  # noqa: E402

FLOOR = r"""
import os, sys, orjson
n = 0
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".jsonl"):
            with open(os.path.join(root, name), "rb") as fh:
                for line in fh:
                    if b'"usage"' in line:
                        orjson.loads(line)
                        n += 1
print(n)
"""


def _tree_rss_kb(pid: int) -> tuple[int, int, int]:
    """(sum of VmRSS, sum of Pss, largest single VmRSS) over pid and its descendants, in kB.

    RSS summed over processes counts shared pages (the interpreter, libraries) once per process;
    Pss splits them among sharers, so its sum is what the tree really occupies.
    """
    total = pss = largest = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        kb = int(line.split()[1])
                        total += kb
                        largest = max(largest, kb)
                        break
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total, pss, largest


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak RSS (tree sum sampled every 10 ms; max single process from rusage)."""
    import resource

    peak = [0, 0, 0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for i, kb in enumerate(_tree_rss_kb(proc.pid)):
                peak[i] = max(peak[i], kb)
            done.wait(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_tree_mb": peak[0] / 1024,
        "peak_pss_tree_mb": peak[1] / 1024,
        "peak_rss_single_mb": peak[2] / 1024,
        "stdout": out.decode()[-4000:],  # type: ignore[dict-item]
        "stderr": err.decode()[-4000:],  # type: ignore[dict-item]
    }


def find_ccusage(given: str | None) -> str | None:
    if given:
        return given
    for base in (REPO / "node_modules", Path("/tmp/import-cc20/node_modules")):
        native = base / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage"
        if native.exists():
            if not os.access(native, os.X_OK):
                native.chmod(0o755)  # npm unpacks it without the bit; ccusage's own cli.js sets it too
            return str(native)
    return shutil.which("ccusage")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=None, help="history dir (kept and reused)")
    ap.add_argument("--ccusage", default=None, help="ccusage 20 binary")
    ap.add_argument("--ccusage18", default=None, help="ccusage 18 binary (node dist/index.js)")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()

    hist = args.dir or Path(tempfile.gettempdir()) / f"claude-run-bench-{args.sessions}x{args.messages}"
    marker = hist / ".complete"
    if not marker.exists():
        shutil.rmtree(hist, ignore_errors=True)
        t = time.perf_counter()
        generate(hist, HistorySpec(sessions=args.sessions, messages=args.messages, seed=42))
        marker.write_text("ok")
        print(f"generated {hist} in {time.perf_counter() - t:.1f} s")
    size = sum(p.stat().st_size for p in hist.rglob("*.jsonl"))
    print(f"history: {args.sessions} sessions x {args.messages} messages, {size / 1e6:.0f} MB, {hist}")
    print(f"machine: {os.cpu_count()} cores, load average before: {os.getloadavg()}")

    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    work = Path(tempfile.mkdtemp(prefix="claude-run-bench-"))
    ledger = work / "ledger.jsonl"
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    imp = [py, "-m", "claude_run", "ledger", "import", str(hist), "--ledger", str(ledger), *jobs]
    results: dict[str, dict[str, float]] = {}
    # Warm the page cache once so every contender reads from memory.
    measure([py, "-c", FLOOR, str(hist)])
    results["floor (python+orjson, 1 process)"] = measure([py, "-c", FLOOR, str(hist)])
    results["claude-run import, first"] = measure(imp, env)
    results["claude-run import, nothing new"] = measure(imp, env)
    # One session grows by two messages (then the file is put back as it was, for the next run).
    grown = sorted(hist.rglob("*.jsonl"))[0]
    size_before = grown.stat().st_size
    usage_lines = [x for x in grown.read_bytes().splitlines() if b'"usage"' in x][-2:]
    try:
        with open(grown, "ab") as fh:
            for x in usage_lines:
                fh.write(x.replace(b'"msg_', b'"msg_grown').replace(b'"req_', b'"req_grown') + b"\n")
        results["claude-run import, one session grew"] = measure(imp, env)
    finally:
        os.truncate(grown, size_before)
    cc = find_ccusage(args.ccusage)
    cc_env = dict(os.environ, CLAUDE_CONFIG_DIR=str(hist), HOME=str(work), TZ="UTC")
    if cc:
        results["ccusage 20 daily --json --offline"] = measure([cc, "daily", "--json", "--offline"], cc_env)
    else:
        print("ccusage 20 not found: npm install --no-save ccusage@20 @ccusage/ccusage-linux-x64@20")
    if args.ccusage18:
        results["ccusage 18 daily --json --offline"] = measure(
            ["node", args.ccusage18, "daily", "--json", "--offline"], cc_env
        )
    print(f"load average after: {os.getloadavg()}")
    width = max(len(k) for k in results)
    print(
        f"{'':{width}}  {'wall s':>7}  {'CPU s':>6}  {'peak RSS sum MB':>15}  {'peak PSS sum MB':>15}"
        f"  {'largest RSS MB':>14}"
    )
    for name, r in results.items():
        print(
            f"{name:{width}}  {r['wall_s']:7.2f}  {r['cpu_s']:6.2f}  {r['peak_rss_tree_mb']:15.0f}"
            f"  {r['peak_pss_tree_mb']:15.0f}  {r['peak_rss_single_mb']:14.0f}"
        )
    first = results["claude-run import, first"]
    print("claude-run:", str(first["stderr"]).strip().splitlines()[-1] if first["stderr"] else "")
    if cc:
        ccr = results["ccusage 20 daily --json --offline"]
        print(f"first import / ccusage 20 wall: {first['wall_s'] / ccr['wall_s']:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
