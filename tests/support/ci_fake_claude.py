#!/usr/bin/env python3
"""A fake `claude` for the CI tests: replays a recorded stream-json run (Claude Code 2.1.330).

- `--version` prints the version line, as the real CLI does.
- `$CI_FAKE_CLAUDE_MARKER`: a file to which each run appends `{argv, task}` (proves whether claude ran).
- `$CI_FAKE_CLAUDE_STREAM`: the stream-json file to replay (default: the tool run sample,
  `ci_data/stream-tool.jsonl`, copied from shared/samples/claude-code-2.1.330).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_STREAM = Path(__file__).resolve().parent / "ci_data" / "stream-tool.jsonl"


def main(argv: list[str]) -> int:
    if "--version" in argv:
        sys.stdout.write("2.1.330 (Claude Code)\n")
        return 0
    # claude-run feeds the task on stdin for -p runs (and closes it).
    task = sys.stdin.read() if "-p" in argv and not sys.stdin.isatty() else None
    marker = os.environ.get("CI_FAKE_CLAUDE_MARKER")
    if marker:
        with open(marker, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"argv": argv, "task": task}) + "\n")
    stream = Path(os.environ.get("CI_FAKE_CLAUDE_STREAM") or DEFAULT_STREAM)
    sys.stdout.write(stream.read_text(encoding="utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
