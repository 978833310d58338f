"""The OTLP bodies Claude Code 2.1.330 really sent (shared samples), read once for tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SAMPLES = Path(os.environ.get("CLAUDE_RUN_SAMPLES", "/work/shared/samples/claude-code-2.1.330"))


def bodies(name: str) -> list[bytes]:
    """Each body of a `otlp-*.http-json.log` file: a `--- <ctype> <encoding> <len>` line, then the body."""
    out: list[bytes] = []
    lines = (SAMPLES / name).read_bytes().split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"--- ") and i + 1 < len(lines):
            out.append(lines[i + 1])
    return out


def result_event(name: str = "stream-tool-otel.jsonl") -> dict[str, Any]:
    last: dict[str, Any] = {}
    for line in (SAMPLES / name).read_text().splitlines():
        if line.strip():
            event = json.loads(line)
            if event.get("type") == "result":
                last = event
    return last


def available() -> bool:
    return (SAMPLES / "otlp-logs.http-json.log").is_file()
