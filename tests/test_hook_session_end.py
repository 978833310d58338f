"""`claude-run hook session-end`: the importer's record of the session, once, and never a word to the TUI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from claude_run.ledger.store import append
from claude_run.query.records import iter_selected
from claude_run.sessions import hook
from claude_run.transcripts.importer import run_import

SAMPLES = Path("/work/shared/samples/claude-code-2.1.330/transcripts/-home-dev-project")
SRC = str(Path(__file__).resolve().parents[1] / "src")
TOOL_SESSION = "3a9b37e0-e4a4-4c8c-a149-41ac5477a4c0"  # two API requests
TEXT_SESSION = "3ea5fe67-58b4-4f54-b6af-8457015d21e4"

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="the recorded transcripts are not here")


def read(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    return [orjson.loads(x) for x in ledger.read_bytes().splitlines() if x.strip()]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    projects = tmp_path / "home" / ".claude" / "projects" / "-home-dev-project"
    projects.mkdir(parents=True)
    for f in SAMPLES.glob("*.jsonl"):
        shutil.copy(f, projects / f.name)
    (tmp_path / "project").mkdir()
    return tmp_path / "home"


def transcript(home: Path, sid: str) -> Path:
    return home / ".claude" / "projects" / "-home-dev-project" / f"{sid}.jsonl"


def payload(home: Path, sid: str, cwd: Path) -> dict[str, Any]:
    return {"session_id": sid, "transcript_path": str(transcript(home, sid)), "cwd": str(cwd),
            "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}  # fmt: skip


def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home)}


def test_the_record_is_the_importers_made_a_tracked_one(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    said = hook.record_session(payload(home, TOOL_SESSION, tmp_path / "project"), ledger, env(home))
    assert said.startswith(f"recorded {TOOL_SESSION}")
    (rec,) = read(ledger)
    imported = run_import(tmp_path / "other.jsonl", [home / ".claude"], workers=1).records
    (same,) = [r for r in imported if r["session_id"] == TOOL_SESSION]
    for key in (
        "tokens",
        "models",
        "cost_usd",
        "cost_source",
        "model",
        "started_at",
        "ended_at",
        "num_turns",
    ):
        assert rec[key] == same[key], key
    assert rec["mode"] == "non-interactive"  # the sample was a `claude -p` session (entrypoint sdk-cli)
    assert rec["source"] == "hook" and "supersedes" not in rec
    assert rec["project"] == "project"  # from the hook's cwd, not the transcript's /home/dev/project
    assert (
        rec["transcript"]["offset"] == 0
        and rec["transcript"]["end"] == transcript(home, TOOL_SESSION).stat().st_size
    )


def test_a_second_call_and_a_later_import_count_nothing_twice(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    data = payload(home, TOOL_SESSION, tmp_path / "project")
    hook.record_session(data, ledger, env(home))
    assert hook.record_session(data, ledger, env(home)).endswith("nothing new in the transcript")
    result = run_import(ledger, [home / ".claude"], workers=1)
    assert TOOL_SESSION in result.sessions_tracked  # import sees the hook's record and stands aside
    assert [r["session_id"] for r in iter_selected(ledger)].count(TOOL_SESSION) == 1


def test_an_import_before_the_hook_gives_way_to_it(home: Path, tmp_path: Path) -> None:
    """query/fold.py rule 3: an imported record does not count once another record claims its session."""
    ledger = tmp_path / "ledger.jsonl"
    run_import(ledger, [home / ".claude"], workers=1)
    hook.record_session(payload(home, TOOL_SESSION, tmp_path / "project"), ledger, env(home))
    counted = [r for r in iter_selected(ledger) if r["session_id"] == TOOL_SESSION]
    assert [r["source"] for r in counted] == ["hook"]


def test_a_resumed_session_adds_only_what_the_resume_added(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    path = transcript(home, TOOL_SESSION)
    full = path.read_bytes()
    lines = full.splitlines(keepends=True)
    # Cut after the first request's last line: the second request comes "after a resume".
    first_id = next(json.loads(x)["message"]["id"] for x in lines if b'"type":"assistant"' in x)
    cut = max(i for i, x in enumerate(lines) if first_id.encode() in x) + 1
    path.write_bytes(b"".join(lines[:cut]))
    data = payload(home, TOOL_SESSION, tmp_path / "project")
    hook.record_session(data, ledger, env(home))
    path.write_bytes(full)
    hook.record_session(data, ledger, env(home))
    first, second = read(ledger)
    assert second["transcript"]["offset"] == first["transcript"]["end"] == len(b"".join(lines[:cut]))
    whole = run_import(tmp_path / "other.jsonl", [home / ".claude"], workers=1).records
    (same,) = [r for r in whole if r["session_id"] == TOOL_SESSION]
    for kind in ("input", "output", "cache_read", "cache_creation"):
        assert first["tokens"][kind] + second["tokens"][kind] == same["tokens"][kind], kind
    assert first["tokens"]["output"] > 0 and second["tokens"]["output"] > 0


@pytest.mark.parametrize(
    ("prior", "why"),
    [
        ({"mode": "interactive", "source": "run", "transcript": {"end": 10**9}}, "nothing new"),
        ({"mode": "non-interactive", "source": "run"}, "already recorded"),
        ({"mode": "telemetry", "source": "telemetry"}, "already recorded"),
    ],
)
def test_a_session_claude_run_recorded_is_left_to_it(
    prior: dict[str, Any], why: str, home: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    append(ledger, {"v": 1, "id": "01RUN", "session_id": TOOL_SESSION, "cost_usd": 1.0, **prior})
    said = hook.record_session(payload(home, TOOL_SESSION, tmp_path / "project"), ledger, env(home))
    assert why in said and len(read(ledger)) == 1


def test_the_transcript_is_found_by_session_id_when_the_path_is_wrong(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    data = {**payload(home, TEXT_SESSION, tmp_path / "nowhere"), "transcript_path": "/nonexistent.jsonl"}
    assert hook.record_session(data, ledger, env(home)).startswith("recorded")
    (rec,) = read(ledger)
    assert rec["project"] == "project"  # no such cwd: the transcript's own directory name


def run_hook(
    stdin: bytes, home: Path, ledger: Path, *extra: str, **more: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "claude_run",
            "hook",
            "session-end",
            "--foreground",
            "--ledger",
            str(ledger),
            *extra,
        ],
        input=stdin,
        capture_output=True,
        env={"PYTHONPATH": SRC, "HOME": str(home), "PATH": "/usr/bin:/bin", **more},
        timeout=60,
    )


@pytest.mark.parametrize(
    "stdin", [b"", b"garbage\xff", b"[1]", b'{"session_id": 5}', b'{"session_id": "nope"}']
)
def test_bad_input_goes_to_the_log_never_to_the_tui(stdin: bytes, home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "data" / "ledger.jsonl"
    proc = run_hook(stdin, home, ledger)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert not ledger.exists()
    assert "session-end:" in (tmp_path / "data" / "ledger.jsonl.hook.log").read_text()


def test_an_unwritable_ledger_is_logged_and_exits_0(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.jsonl"
    target.write_text("")
    ledger = tmp_path / "ledger.jsonl"
    ledger.symlink_to(target)
    proc = run_hook(json.dumps(payload(home, TOOL_SESSION, tmp_path)).encode(), home, ledger)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert "symbolic link" in (tmp_path / "ledger.jsonl.hook.log").read_text()
    assert target.read_text() == ""


def test_a_tracked_session_is_left_to_claude_run(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    proc = run_hook(
        json.dumps(payload(home, TOOL_SESSION, tmp_path)).encode(), home, ledger, CLAUDE_RUN_TRACKED="1"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    assert not ledger.exists()


def test_detached_by_default_the_record_still_lands(home: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "claude_run", "hook", "session-end", "--ledger", str(ledger)],
        input=json.dumps(payload(home, TOOL_SESSION, tmp_path)).encode(),
        capture_output=True,  # returns at once: the worker holds none of these pipes open
        env={"PYTHONPATH": SRC, "HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    import time

    deadline = time.monotonic() + 30
    while not read(ledger) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r["session_id"] for r in read(ledger)] == [TOOL_SESSION]


def test_usage_errors_say_so_on_stderr_and_exit_0(tmp_path: Path) -> None:
    for args in (["hook"], ["hook", "session-start"], ["hook", "session-end", "--bogus"]):
        proc = subprocess.run(
            [sys.executable, "-m", "claude_run", *args],
            input=b"{}",
            capture_output=True,
            env={"PYTHONPATH": SRC},
        )
        assert proc.returncode == 0 and b"usage: claude-run hook session-end" in proc.stderr


def test_a_refused_append_waits_in_the_spool_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claude_run.errors import LedgerError
    from claude_run.ledger import spool, store

    monkeypatch.setenv("CLAUDE_RUN_SPOOL_DIR", str(tmp_path / "spool"))
    ledger = tmp_path / "ledger.jsonl"
    real = store.append_locked

    def full_disk(*_: object, **__: object) -> None:
        raise LedgerError("cannot write ledger: No space left on device")

    monkeypatch.setattr(store, "append_locked", full_disk)
    data = payload(home, TOOL_SESSION, tmp_path / "project")
    assert hook.record_session(data, ledger, env(home)).startswith(f"spooled {TOOL_SESSION}")
    assert hook.record_session(data, ledger, env(home)).endswith("nothing new in the transcript")
    assert [e.record["session_id"] for e in spool.waiting(ledger)] == [TOOL_SESSION]
    monkeypatch.setattr(store, "append_locked", real)
    hook.record_session(data, ledger, env(home))  # space is back: the spooled record lands first
    assert [r["session_id"] for r in read(ledger)] == [TOOL_SESSION] and not spool.waiting(ledger)
