"""Wall time of `claude-run --track` with the built-in OTLP receiver versus `--no-telemetry`.

Same mock run (a tool call, then text: two API requests) against the real Claude CLI, the two
variants interleaved so machine noise hits both alike; prints each median, the ratio, and the median
time the run spent after claude's exit waiting for the final telemetry flush (`telemetry.wait_ms`).

    PYTHONPATH=src python benchmarks/telemetry_overhead.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))

from support.claude_cli import claude_env, find_claude_bin  # noqa: E402
from support.mock_anthropic import MockAnthropic, Usage, text, tool_use  # noqa: E402


def script() -> list[object]:
    return [
        tool_use("Bash", {"command": "echo hi"}, usage=Usage(input=85, cache_read=4202, output=19)),
        text("done", usage=Usage(input=122, cache_read=4303, output=26)),
    ]


def one(claude: Path, home: Path, telemetry: bool) -> tuple[float, float | None]:
    with MockAnthropic(script()) as api:  # type: ignore[arg-type]
        env = claude_env(home, api.url, CLAUDE_RUN_CLAUDE_BIN=str(claude), PYTHONPATH=str(ROOT / "src"))
        argv = [
            sys.executable,
            "-m",
            "claude_run",
            "go",
            "--track",
            "--json",
            "--ledger",
            str(home / "l.jsonl"),
        ]
        if not telemetry:
            argv.append("--no-telemetry")
        argv += ["--", "--model", "claude-sonnet-4-5", "--allowedTools", "Bash"]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"claude-run failed ({proc.returncode}): {proc.stderr[-1500:]}")
        wall = time.perf_counter() - t0
    rec = json.loads(proc.stdout)
    wait = rec.get("telemetry", {}).get("wait_ms") if telemetry else None
    if telemetry and rec.get("telemetry_agrees") is not True:
        print(f"warning: telemetry_agrees={rec.get('telemetry_agrees')} notes={rec.get('notes')}")
    return wall, wait


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    claude = find_claude_bin()
    if claude is None:
        sys.exit("the real claude binary was not found")
    home = Path(tempfile.mkdtemp(prefix="tel-bench-"))
    one(claude, home, True)  # warm caches
    with_t: list[float] = []
    without: list[float] = []
    waits: list[float] = []
    for _ in range(rounds):
        wall, wait = one(claude, home, True)
        with_t.append(wall)
        if wait is not None:
            waits.append(wait)
        without.append(one(claude, home, False)[0])
    a, b = statistics.median(with_t), statistics.median(without)
    print(f"rounds: {rounds}")
    print(f"median wall with receiver:    {a * 1000:.0f} ms")
    print(f"median wall --no-telemetry:   {b * 1000:.0f} ms")
    print(f"overhead: {(a / b - 1) * 100:+.1f} %")
    if waits:
        print(
            f"median wait for the final flush after exit: {statistics.median(waits):.1f} ms"
            f" (max {max(waits):.1f})"
        )


if __name__ == "__main__":
    main()
