"""What Claude Code's own telemetry costs a bare `claude -p` run, by export protocol.

Bare claude against the mock API (`--latency` seconds before each answer; 0.5 gives a ~1 s run),
its telemetry off, or exporting metrics and logs to a do-nothing OTLP endpoint over `http/json` or
`http/protobuf`, the variants interleaved. For each: the median time to the first stream-json line,
to the `result` line, from `result` to exit (Claude's final flush, which it waits for) and in all,
and the median of the per-round differences from the run without telemetry (docs/telemetry.md has
runs of it: the two protocols cost Claude the same within this machine's noise).

    .venv/bin/python benchmarks/telemetry_protocols.py [--rounds 40] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchsetup import compile_sources
from overhead import ROOT, telemetry_env

from support.claude_cli import claude_env, find_claude_bin
from support.mock_anthropic import MockAnthropic, Usage, text


def timed_run(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float, float]:
    """(first line, result line, result → exit, whole run), seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    assert proc.stdout is not None
    first = result = None
    for line in proc.stdout:
        now = time.perf_counter()
        first = first if first is not None else now
        if b'"type":"result"' in line:
            result = now
    proc.wait()
    end = time.perf_counter()
    if first is None or result is None:
        raise SystemExit(f"claude gave no result (exit {proc.returncode})")
    return first - t0, result - t0, end - result, end - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    compile_sources(ROOT / "src")
    claude = find_claude_bin()
    if claude is None:
        raise SystemExit("Claude Code CLI not found: run scripts/setup.sh first")
    usage = Usage(input=48, cache_creation_5m=1513, cache_read=4101, output=12)
    with (
        tempfile.TemporaryDirectory() as tmp,
        MockAnthropic([text("mock answer", usage=usage, delay=args.latency)], when_done="repeat") as api,
    ):
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        env = claude_env(home, api.url)
        tel = telemetry_env(env)
        argv = [
            str(claude),
            "-p",
            "say hi",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "claude-sonnet-4-5",
        ]
        variants = {
            "telemetry off": env,
            "http/json": {**tel, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "http/protobuf": {**tel, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        }
        for e in variants.values():  # warm the page cache and Claude's first-run files, untimed
            timed_run(argv, e, str(work))
        names = list(variants)
        runs: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in names}
        for i in range(args.rounds):
            k = i % len(names)  # each variant goes first in turn
            for name in names[k:] + names[:k]:
                runs[name].append(timed_run(argv, variants[name], str(work)))
    base = runs["telemetry off"]
    print(f"rounds {args.rounds}, mock latency {args.latency:g} s; medians in ms (paired Δ vs telemetry off)")
    print(f"{'':15s} {'first line':>20s} {'result':>20s} {'result → exit':>20s} {'whole run':>20s}")
    for name in names:
        cells = []
        for col in range(4):
            med = statistics.median(r[col] for r in runs[name]) * 1000
            delta = statistics.median(r[col] - b[col] for r, b in zip(runs[name], base, strict=True)) * 1000
            cells.append(f"{med:8.1f} ({delta:+6.1f})")
        print(f"{name:15s} " + " ".join(f"{c:>20s}" for c in cells))


if __name__ == "__main__":
    main()
