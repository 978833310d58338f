"""Context from Claude's transcripts: peak request and compactions, on import (incremental) and read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from claude_run.transcripts import session_fields
from claude_run.transcripts.importer import run_import
from support.import_lines import SID, assistant, user, write

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "claude-code-2.1.330"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/samples/claude-code-2.1.330")


def compact(uuid: str, duration_ms: int = 5300, anchor: str | None = None) -> str:
    meta: dict[str, Any] = {"trigger": "auto", "preTokens": 167_000, "durationMs": duration_ms}
    if anchor is not None:
        meta["preservedMessages"] = {"anchorUuid": anchor, "uuids": []}
    line = {
        "type": "system",
        "subtype": "compact_boundary",
        "uuid": uuid,
        "sessionId": SID,
        "compactMetadata": meta,
    }
    return json.dumps(line, separators=(",", ":"))


def records(ledger: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def test_peak_context_and_compactions_on_import_and_after_growth(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    path = write(
        tmp_path,
        [
            user(),
            assistant("m1", "r1", inp=10, cr=150_000, cc=9_000),
            compact("c1"),
            assistant("m2", "r2", inp=5, cr=20_000, cc=100),
            # A subagent's bigger request is its own window's, not the session's.
            assistant("s1", "rs", inp=5, cr=199_000, cc=0, sidechain=True),
            compact("marker", duration_ms=0, anchor="marker"),  # Claude's marker: not a compaction
        ],
    )
    run_import(ledger, [tmp_path])
    (first,) = records(ledger)
    assert first["context"] == {
        "peak_tokens": 159_010,
        "model": "claude-sonnet-4-5",
        "window": 200_000,
        "window_source": "table",
        "peak_pct": 79.5,
        "compactions": 1,
    }
    # The session grows: the superseding record counts the compactions of both reads.
    write(tmp_path, [compact("c2"), assistant("m3", "r3", inp=1, cr=170_000, cc=0)], mode="a")
    run_import(ledger, [tmp_path])
    second = records(ledger)[-1]
    assert second["supersedes"] == first["id"]
    assert second["context"]["compactions"] == 2
    assert second["context"]["peak_tokens"] == 170_001
    # The interactive mode's reader (session_fields) agrees.
    assert session_fields(path)["context"] == second["context"]


def test_the_real_transcripts() -> None:
    for path in sorted((SAMPLES / "transcripts").glob("*/*.jsonl")):
        fields = session_fields(path)
        context = fields["context"]
        per_request = []
        for line in path.read_text().splitlines():
            obj = json.loads(line)
            usage = obj.get("message", {}).get("usage") if isinstance(obj.get("message"), dict) else None
            if obj.get("type") == "assistant" and usage:
                per_request.append(
                    usage["input_tokens"]
                    + usage["cache_read_input_tokens"]
                    + usage["cache_creation_input_tokens"]
                )
        assert context["peak_tokens"] == max(per_request)
        assert context["compactions"] == 0
