"""Start-up cost of `claude-run --track` up to the moment claude is exec'd (the pre-spawn hot path).

A fake claude (a bash script) stamps the time it starts and kills claude-run at once, so a round
costs only the pre-spawn work and no CPU is spent after it. Rounds alternate the source trees
compared (this checkout and an optional --baseline), so load on the machine hits both alike; the
figures are medians over the rounds, measured from just before `python -m claude_run` is started.

    .venv/bin/python benchmarks/prespawn.py [--rounds 200] [--baseline OTHER/src] [--compile]

claude_run is loaded from cached bytecode, as from an installed wheel (and as in overhead.py, whose
clean environment lets Python write it); --compile compiles its modules at every start instead, as
happens with PYTHONDONTWRITEBYTECODE=1 in a checkout. Also prints the modules imported before the
spawn (from -X importtime).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAKE_CLAUDE = """#!/bin/bash
echo "$EPOCHREALTIME" > "$PRESPAWN_STAMP"
kill -9 $PPID
"""


def command(fake: Path, ledger: Path, *python_options: str) -> list[str]:
    return [
        sys.executable,
        *python_options,
        "-m",
        "claude_run",
        "say hello",
        "--track",
        "--quiet",
        "--ledger",
        str(ledger),
        "--claude-bin",
        str(fake),
        "--",
        "--model",
        "claude-sonnet-4-5",
    ]


def run_once(argv: list[str], env: dict[str, str], stamp: Path) -> tuple[float, str]:
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if not stamp.exists():
        raise SystemExit(f"claude was not started ({proc.returncode}): {proc.stderr[-500:]}")
    return float(stamp.read_text().strip().replace(",", ".")) - t0, proc.stderr


def imported_before_spawn(importtime_stderr: str) -> list[str]:
    # The fake claude kills claude-run right away: what it imported came before the spawn, but for
    # `select`, which it may import right after it (to sleep until claude's first output).
    return [
        line.rsplit("|", 1)[1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--baseline", type=Path, help="another src directory to compare with (e.g. main's)")
    ap.add_argument("--compile", action="store_true", help="compile claude_run's modules at every start")
    args = ap.parse_args()
    trees = {"this": ROOT / "src"}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()

    with tempfile.TemporaryDirectory() as tmp:
        fake = Path(tmp) / "claude"
        fake.write_text(FAKE_CLAUDE)
        fake.chmod(0o755)
        stamp = Path(tmp) / "stamp"
        envs: dict[str, dict[str, str]] = {}
        for name, src in trees.items():
            env = dict(os.environ, PRESPAWN_STAMP=str(stamp))
            env.pop("CLAUDE_RUN_TRACK", None)
            # A copy without __pycache__: the bytecode is written by the warm-up run, or never.
            copy = Path(tmp) / name
            shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
            env["PYTHONPATH"] = str(copy)
            if args.compile:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            else:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
            envs[name] = env
        argv = command(fake, Path(tmp) / "ledger.jsonl")
        for name in trees:
            run_once(argv, envs[name], stamp)  # warm up: page cache, bytecode cache
        times: dict[str, list[float]] = {name: [] for name in trees}
        names = list(trees)
        for i in range(args.rounds):
            for name in names if i % 2 else reversed(names):
                times[name].append(run_once(argv, envs[name], stamp)[0])

        bytecode = "compiled at every start" if args.compile else "from cached bytecode"
        print(f"{args.rounds} rounds; claude_run {bytecode}; load average {os.getloadavg()[0]:.2f}")
        medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
        for name, src in trees.items():
            _, err = run_once(
                command(fake, Path(tmp) / "ledger.jsonl", "-X", "importtime"), envs[name], stamp
            )
            modules = imported_before_spawn(err)
            ours = [m for m in modules if m.startswith("claude_run")]
            print(
                f"{name:9} start→exec median {medians[name]:6.1f} ms (p25 {_q(times[name], 1):.1f},"
                f" p75 {_q(times[name], 3):.1f})  {len(modules)} modules before the spawn  [{src}]"
            )
            print(f"          claude_run: {' '.join(ours)}")
            print(f"          others: {' '.join(m for m in modules if m not in ours)}")
        if "baseline" in medians:
            print(f"difference: {medians['this'] - medians['baseline']:+.1f} ms (this - baseline)")


def _q(values: list[float], k: int) -> float:
    return statistics.quantiles(values, n=4)[k - 1] * 1000


if __name__ == "__main__":
    main()
