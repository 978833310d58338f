"""Build transcript lines the way Claude Code writes them, for the import tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SID = "11111111-2222-4333-8444-555555555555"


def assistant(
    mid: str,
    rid: str | None,
    *,
    inp: int = 10,
    out: int = 5,
    cr: int = 100,
    cc: int = 20,
    model: str = "claude-sonnet-4-5",
    ts: str = "2026-11-20T10:00:00.000Z",
    sidechain: bool = False,
    sid: str = SID,
    entrypoint: str = "cli",
    extra: dict[str, Any] | None = None,
) -> str:
    obj: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "message": {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "hi"}],
            "usage": {
                "input_tokens": inp,
                "cache_creation_input_tokens": cc,
                "cache_read_input_tokens": cr,
                "output_tokens": out,
            },
        },
        "type": "assistant",
        "timestamp": ts,
        "userType": "external",
        "entrypoint": entrypoint,
        "cwd": "/home/dev/project",
        "sessionId": sid,
        "version": "2.1.330",
        "gitBranch": "main",
    }
    if rid is not None:
        obj["requestId"] = rid
    if extra:
        obj.update(extra)
    return json.dumps(obj, separators=(",", ":"))


def user(
    text: str = "hello", ts: str = "2026-11-20T09:59:59.000Z", sid: str = SID, entrypoint: str = "cli"
) -> str:
    return json.dumps(
        {
            "type": "user",
            "isSidechain": False,
            "message": {"role": "user", "content": text},
            "timestamp": ts,
            "entrypoint": entrypoint,
            "cwd": "/home/dev/project",
            "sessionId": sid,
            "version": "2.1.330",
            "gitBranch": "main",
        },
        separators=(",", ":"),
    )


def cost_state(models: dict[str, dict[str, Any]], sid: str = SID) -> str:
    total = sum(m.get("costUSD", 0) for m in models.values())
    return json.dumps({"type": "cost-state", "sessionId": sid, "totalCostUSD": total, "modelUsage": models})


def write(
    root: Path, lines: list[str], sid: str = SID, project: str = "-home-dev-project", mode: str = "w"
) -> Path:
    path = root / "projects" / project / f"{sid}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as fh:
        fh.write("".join(line + "\n" for line in lines))
    return path
