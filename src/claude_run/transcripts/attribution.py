"""Attribution read from Claude's transcripts: the session file (the main agent) and
`<session>/subagents/agent-ID.jsonl` (one subagent each, its type in `agent-ID.meta.json`), and
the choice of source for a tracked run. The record field and its rules: `stream/attribution.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..stream.attribution import (
    MAIN,
    SUBAGENT,
    Request,
    StreamAgents,
    ToolCall,
    build,
    from_stream,
    from_telemetry,
    note_tool_result,
    note_tool_use,
    priced_calls,
)
from ..stream.events import TokenCounts


def from_transcripts(path: Path) -> tuple[list[Request], list[ToolCall]]:
    """Requests (unpriced: see `priced`) from a session's transcript and its subagents'
    (`<session>/subagents/`); tool calls from their `tool_use` blocks."""
    from .scan import SYNTHETIC, scan_file

    requests: list[Request] = []
    calls: dict[str, ToolCall] = {}
    files = [(path, MAIN)] + [
        (p, _subagent_type(p)) for p in sorted(path.with_suffix("").glob("subagents/*.jsonl"))
    ]
    seen: set[str] = set()
    for file, agent in files:
        scan = scan_file(str(file), 0, sidechain_file=agent != MAIN, need_meta=False)
        for key, m in scan.messages.items():
            if m[0] == SYNTHETIC or (key[0] != "@" and key in seen):
                continue
            seen.add(key)
            tokens = TokenCounts(m[1], m[2], m[3], m[4], m[4] - m[5] if m[5] else None, m[5] or None)
            who = agent if agent != MAIN or not m[6] else SUBAGENT
            requests.append(Request(who, m[0], tokens, None))
        _transcript_tools(file, agent, calls)
    return requests, list(calls.values())


def _subagent_type(path: Path) -> str:
    import orjson

    try:
        meta = orjson.loads(path.with_suffix(".meta.json").read_bytes())
    except (OSError, ValueError):
        return SUBAGENT
    kind = meta.get("agentType") if isinstance(meta, dict) else None
    return kind if isinstance(kind, str) and kind else SUBAGENT


def _transcript_tools(path: Path, agent: str, calls: dict[str, ToolCall]) -> None:
    import orjson

    spawned: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if b'"tool_use"' not in line and b'"tool_result"' not in line:
                    continue
                try:
                    obj = orjson.loads(line)
                except ValueError:
                    continue
                msg = obj.get("message") if isinstance(obj, dict) else None
                content = msg.get("content") if isinstance(msg, dict) else None
                if not isinstance(content, list):
                    continue
                for block in content:
                    if not isinstance(block, dict):
                        continue
                    if obj.get("type") == "assistant":
                        note_tool_use(block, agent, calls, spawned)
                    else:
                        note_tool_result(block, calls)
    except OSError:
        return


def for_run(
    record: Mapping[str, Any],
    folder: Any,
    stream: StreamAgents,
    collector: Any = None,
    transcript: Path | None = None,
) -> dict[str, Any] | None:
    """A tracked run's `attribution`: telemetry when it arrived, else the transcripts, else the
    stream. None when no request was seen at all."""
    tokens = record.get("tokens")
    tokens = tokens if isinstance(tokens, Mapping) else None
    if collector is not None and collector.api_requests:
        requests, calls = from_telemetry(collector, stream)
        return build("telemetry", requests, calls, "claude", tokens)
    if transcript is not None:
        try:
            requests, calls = from_transcripts(transcript)
        except OSError:
            requests = []
        if requests:
            got = build("transcript", *priced_calls(requests, calls, record), tokens)
            if got["complete"]:
                return got
    requests, calls = from_stream(folder, stream)
    if not requests and not calls:
        return None
    return build("stream", *priced_calls(requests, calls, record), tokens)


def for_transcript(path: Path, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """An interactive run's or a SessionEnd hook's `attribution`: the session's transcripts from
    their start (subagents included). None when they hold no request."""
    tokens = record.get("tokens")
    try:
        requests, calls = from_transcripts(path)
    except OSError:
        return None
    if not requests:
        return None
    return build(
        "transcript", *priced_calls(requests, calls, record), tokens if isinstance(tokens, Mapping) else None
    )
