"""Cross-check against ccusage 18: same transcripts, same totals per model and per day.

Runs when ccusage 18 is installed: `npm install --no-save ccusage@18` at the repository root (or
CCUSAGE18_BIN=/path/to/ccusage). Days are cut in the TZ given to ccusage; we cut in the same zone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from claude_run.transcripts.daily import daily_totals
from claude_run.transcripts.importer import run_import
from support.import_history import HistorySpec, generate

REPO = Path(__file__).resolve().parents[1]
SAMPLES = Path("/work/shared/samples/claude-code-2.1.330/transcripts")


def _ccusage18() -> str | None:
    candidates = [os.environ.get("CCUSAGE18_BIN"), str(REPO / "node_modules" / ".bin" / "ccusage")]
    for cand in candidates:
        if not cand or not Path(cand).exists():
            continue
        try:
            out = subprocess.run([cand, "--version"], capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.stdout.strip().split()[-1:] and out.stdout.strip().split()[-1].startswith("18."):
            return cand
    return None


CCUSAGE = _ccusage18()
pytestmark = pytest.mark.skipif(
    CCUSAGE is None,
    reason="ccusage 18 not installed (npm install --no-save ccusage@18 at the repo root,"
    " or set CCUSAGE18_BIN)",
)


def ccusage_daily(config: Path, tz: str, home: Path) -> dict[str, dict[str, dict[str, int]]]:
    assert CCUSAGE is not None
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(config), TZ=tz, HOME=str(home))
    out = subprocess.run(
        [CCUSAGE, "daily", "--json", "--offline"], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    days: dict[str, dict[str, dict[str, int]]] = {}
    for day in report["daily"]:
        days[day["date"]] = {
            b["modelName"]: {
                "input": b["inputTokens"],
                "output": b["outputTokens"],
                "cache_creation": b["cacheCreationTokens"],
                "cache_read": b["cacheReadTokens"],
            }
            for b in day["modelBreakdowns"]
        }
    return days


def ours_daily(config: Path, tz: str) -> dict[str, dict[str, dict[str, int]]]:
    return {
        day: {
            model: {
                "input": s.input,
                "output": s.output,
                "cache_creation": s.cache_creation,
                "cache_read": s.cache_read,
            }
            for model, s in models.items()
        }
        for day, models in daily_totals([config], ZoneInfo(tz)).items()
    }


def per_model(days: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for models in days.values():
        for model, t in models.items():
            acc = out.setdefault(model, {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0})
            for k, v in t.items():
                acc[k] += v
    return out


def imported_per_model(ledger: Path) -> dict[str, dict[str, int]]:
    recs = [json.loads(x) for x in ledger.read_text().splitlines()]
    superseded = {r["supersedes"] for r in recs if r.get("supersedes")}
    out: dict[str, dict[str, int]] = {}
    for r in recs:
        if r["id"] in superseded:
            continue
        for model, m in r["models"].items():
            acc = out.setdefault(model, {"input": 0, "output": 0, "cache_creation": 0, "cache_read": 0})
            for k in acc:
                acc[k] += m[k]
    return out


def make_history(root: Path, *, partial: bool = False) -> None:
    # Sessions over a few days with hours that cross midnight in several zones.
    generate(root, HistorySpec(sessions=14, messages=60, seed=7, days=4, partial_copies=partial, header_kb=2))
    # A resumed session: Claude copies earlier messages (same ids) into the new transcript.
    first = sorted((root / "projects").rglob("*.jsonl"))[0]
    lines = first.read_text().splitlines()
    resumed = first.with_name("0a0a0a0a-1111-4222-8333-444444444444.jsonl")
    resumed.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    if SAMPLES.is_dir():
        shutil.copytree(SAMPLES, root / "projects", dirs_exist_ok=True)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
def test_daily_and_per_model_totals_equal_ccusage(tmp_path: Path, tz: str) -> None:
    config = tmp_path / "claude"
    make_history(config)
    theirs = ccusage_daily(config, tz, tmp_path)
    ours = ours_daily(config, tz)
    assert len(theirs) >= 4  # the history spans several days in every zone
    assert ours == theirs
    ledger = tmp_path / "ledger.jsonl"
    run_import(ledger, [config])
    assert imported_per_model(ledger) == per_model(theirs)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared Claude Code samples not on this machine")
def test_samples_equal_ccusage(tmp_path: Path) -> None:
    config = tmp_path / "claude"
    shutil.copytree(SAMPLES, config / "projects")
    theirs = ccusage_daily(config, "UTC", tmp_path)
    assert ours_daily(config, "UTC") == theirs
    ledger = tmp_path / "ledger.jsonl"
    run_import(ledger, [config])
    assert imported_per_model(ledger) == per_model(theirs)


def test_partial_copies_the_one_known_difference(tmp_path: Path) -> None:
    # ccusage keeps the FIRST copy of a message; a streamed first copy can carry a partial output
    # count. We keep the largest: same input and cache figures, more output tokens, never fewer.
    config = tmp_path / "claude"
    make_history(config, partial=True)
    theirs = per_model(ccusage_daily(config, "UTC", tmp_path))
    ours: dict[str, Any] = per_model(ours_daily(config, "UTC"))
    assert ours.keys() == theirs.keys()
    for model in ours:
        for kind in ("input", "cache_creation", "cache_read"):
            assert ours[model][kind] == theirs[model][kind]
        assert ours[model]["output"] >= theirs[model]["output"]
    assert sum(m["output"] for m in ours.values()) > sum(m["output"] for m in theirs.values())
