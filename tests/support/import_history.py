"""Generate a Claude Code history shaped like real transcripts (Claude Code 2.1.330 samples).

Compact JSON lines, uuid4 file names under `projects/<project>/`, each assistant message written
twice (one line per content block: thinking, then text/tool use) with the same message id, request
id and usage, user tool results, and the non-usage lines real files are mostly made of (attachments,
queue operations, last-prompt, api-request). Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

MODELS = (
    ("claude-sonnet-4-5-20250929", 80),
    ("claude-haiku-4-5-20251001", 12),
    ("claude-opus-4-1-20250805", 8),
)
PROJECTS = ("-home-dev-webapp", "-home-dev-api", "-home-dev-infra", "-home-dev-notes")
_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


@dataclass
class HistorySpec:
    sessions: int = 10
    messages: int = 20  # API messages per session
    seed: int = 1
    partial_copies: bool = False  # first copy of a message carries a smaller output count
    sidechain_every: int = 7  # every n-th message is a subagent's (0: none)
    start: datetime = datetime(2026, 9, 1, tzinfo=timezone.utc)
    days: int = 60
    attachment_kb: int = 3  # size of the attachment written every 20 messages
    header_kb: int = 16  # the attachments at a session's start (skills, agents, environment)


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _text(rng: random.Random, n: int) -> str:
    reps = n // len(_FILLER) + 1
    offset = rng.randrange(len(_FILLER))
    return (_FILLER * (reps + 1))[offset : offset + n]


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dump(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write_session(root: Path, spec: HistorySpec, index: int, rng: random.Random) -> Path:
    project = PROJECTS[index % len(PROJECTS)]
    sid = _uid(rng)
    path = root / "projects" / project / f"{sid}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    when = spec.start + timedelta(seconds=rng.randrange(spec.days * 86400))
    cwd = "/home/dev/" + project.rsplit("-", 1)[-1]
    entry = "cli" if index % 3 else "sdk-cli"
    common = {"userType": "external", "entrypoint": entry, "cwd": cwd, "sessionId": sid, "version": "2.1.330"}
    common["gitBranch"] = "main" if index % 2 else "feature/x"
    lines: list[str] = []
    lines.append(
        _dump({"type": "queue-operation", "operation": "enqueue", "timestamp": _ts(when), "sessionId": sid})
    )
    parent = None
    user_uuid = _uid(rng)
    lines.append(
        _dump(
            {
                "parentUuid": None,
                "isSidechain": False,
                "type": "user",
                "message": {"role": "user", "content": "please work on the task"},
                "uuid": user_uuid,
                "timestamp": _ts(when),
                **common,
            }
        )
    )
    parent = user_uuid
    lines.append(
        _dump(
            {
                "parentUuid": parent,
                "isSidechain": False,
                "attachment": {"type": "skill_listing", "content": _text(rng, spec.header_kb * 1024)},
                "type": "attachment",
                "uuid": _uid(rng),
                "timestamp": _ts(when),
                **common,
            }
        )
    )
    model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
    for n in range(spec.messages):
        when += timedelta(seconds=rng.randrange(5, 90), milliseconds=rng.randrange(1000))
        side = bool(spec.sidechain_every) and n % spec.sidechain_every == spec.sidechain_every - 1
        msg_model = "claude-haiku-4-5-20251001" if side else model
        mid = f"msg_{rng.getrandbits(96):024x}"
        rid = f"req_{rng.getrandbits(96):024x}"
        one_hour = rng.randrange(0, 3000) if n % 5 == 0 else 0
        usage = {
            "input_tokens": rng.randrange(1, 600),
            "cache_creation_input_tokens": rng.randrange(0, 20000) + one_hour,
            "cache_read_input_tokens": rng.randrange(0, 150000),
            "output_tokens": rng.randrange(1, 3000),
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {"ephemeral_1h_input_tokens": one_hour, "ephemeral_5m_input_tokens": 0},
        }
        usage["cache_creation"]["ephemeral_5m_input_tokens"] = usage["cache_creation_input_tokens"] - one_hour
        blocks = [
            {"type": "thinking", "thinking": _text(rng, rng.randrange(40, 200)), "signature": "sig"},
            {"type": "text", "text": _text(rng, rng.randrange(50, 300))}
            if n % 3 == 0
            else {
                "type": "tool_use",
                "id": f"toolu_{rng.getrandbits(64):016x}",
                "name": "Bash",
                "input": {"command": "ls -la", "description": _text(rng, 40)},
            },
        ]
        for copy, block in enumerate(blocks):
            u = dict(usage)
            if spec.partial_copies and copy == 0:
                u["output_tokens"] = max(1, usage["output_tokens"] // 7)
            a_uuid = _uid(rng)
            lines.append(
                _dump(
                    {
                        "parentUuid": parent,
                        "isSidechain": side,
                        "message": {
                            "id": mid,
                            "type": "message",
                            "role": "assistant",
                            "model": msg_model,
                            "content": [block],
                            "stop_reason": None if copy == 0 else "tool_use",
                            "stop_sequence": None,
                            "usage": u,
                        },
                        "requestId": rid,
                        "type": "assistant",
                        "uuid": a_uuid,
                        "timestamp": _ts(when + timedelta(milliseconds=copy * 40)),
                        **common,
                    }
                )
            )
            parent = a_uuid
        user_uuid = _uid(rng)
        lines.append(
            _dump(
                {
                    "parentUuid": parent,
                    "isSidechain": side,
                    "type": "user",
                    "message": {
                        "role": "user",
                        "content": [
                            {
                                "tool_use_id": "toolu_x",
                                "type": "tool_result",
                                "content": _text(rng, rng.randrange(40, 300)),
                                "is_error": False,
                            }
                        ],
                    },
                    "uuid": user_uuid,
                    "timestamp": _ts(when + timedelta(seconds=2)),
                    "toolUseResult": {"stdout": "ok", "stderr": "", "interrupted": False},
                    **common,
                }
            )
        )
        parent = user_uuid
        lines.append(
            _dump({"type": "last-prompt", "lastPrompt": "please work", "leafUuid": parent, "sessionId": sid})
        )
        if n % 20 == 19:
            lines.append(
                _dump(
                    {
                        "parentUuid": parent,
                        "isSidechain": False,
                        "attachment": {
                            "type": "prompt_snapshot",
                            "text": _text(rng, spec.attachment_kb * 1024),
                        },
                        "type": "attachment",
                        "uuid": _uid(rng),
                        "timestamp": _ts(when),
                        **common,
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def generate(root: Path, spec: HistorySpec) -> list[Path]:
    rng = random.Random(spec.seed)
    return [write_session(root, spec, i, rng) for i in range(spec.sessions)]
