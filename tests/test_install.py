"""`claude-run install`: our two entries in Claude's settings.json, everything else kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from claude_run.errors import UsageError
from claude_run.sessions import install

SRC = str(Path(__file__).resolve().parents[1] / "src")
SL = "/opt/bin/claude-run statusline"
SE = "/opt/bin/claude-run hook session-end"
THEIRS = {
    "model": "opus",
    "env": {"FOO": "1"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}],
        "SessionEnd": [{"hooks": [{"type": "command", "command": "notify-send bye"}]}],
    },
}


def both(settings: dict[str, Any], **kw: Any) -> tuple[dict[str, Any], list[str]]:
    return install.apply(settings, statusline=SL, session_end=SE, **kw)


def test_install_adds_both_and_keeps_every_other_key_in_place() -> None:
    out, said = both(THEIRS)
    assert list(out) == ["model", "env", "hooks", "statusLine"]
    assert out["statusLine"] == {"type": "command", "command": SL, "padding": 0}
    assert out["hooks"]["PreToolUse"] == THEIRS["hooks"]["PreToolUse"]
    assert out["hooks"]["SessionEnd"][0] == THEIRS["hooks"]["SessionEnd"][0]
    assert out["hooks"]["SessionEnd"][1] == {"hooks": [{"type": "command", "command": SE, "timeout": 30}]}
    assert len(said) == 2 and THEIRS["hooks"]["SessionEnd"] == [
        THEIRS["hooks"]["SessionEnd"][0]
    ]  # not mutated


def test_twice_is_once_and_a_new_path_replaces_ours_in_place() -> None:
    once, _ = both(THEIRS)
    twice, said = both(once)
    assert twice == once and said == []
    moved, said = install.apply(
        once, statusline=SL.replace("/opt", "/usr"), session_end=SE.replace("/opt", "/usr")
    )
    assert len(said) == 2 and len(moved["hooks"]["SessionEnd"]) == 2
    assert moved["hooks"]["SessionEnd"][1]["hooks"][0]["command"].startswith("/usr/")


def test_uninstall_removes_ours_only() -> None:
    once, _ = both(THEIRS)
    out, said = both(once, uninstall=True)
    assert out == THEIRS and len(said) == 2
    empty, _ = both({})
    assert both(empty, uninstall=True)[0] == {}
    assert both({}, uninstall=True) == ({}, [])


def test_someone_elses_status_line_needs_force() -> None:
    mine = {"statusLine": {"type": "command", "command": "~/bin/my-status"}}
    with pytest.raises(UsageError, match="--force"):
        both(mine)
    out, _ = both(mine, force=True)
    assert out["statusLine"]["command"] == SL
    assert both(mine, uninstall=True)[0] == mine  # not ours: never removed


def test_what_the_user_added_to_our_status_line_stays() -> None:
    once, _ = both({})
    once["statusLine"]["refreshInterval"] = 5
    again, said = both(once)
    assert again == once and said == []


@pytest.mark.parametrize(
    "command", [SL, "python -m claude_run statusline --ledger x", "claude-run statusline"]
)
def test_ours_is_recognised(command: str) -> None:
    assert install.is_ours("statusline", command)
    assert not install.is_ours("statusline", "my-statusline.sh") and not install.is_ours(
        "session-end", command
    )


@pytest.mark.parametrize("hooks", ["x", {"SessionEnd": {"a": 1}}])
def test_a_malformed_hooks_key_is_refused(hooks: object) -> None:
    with pytest.raises(UsageError):
        both({"hooks": hooks})


def test_settings_path_honours_project_and_claude_config_dir(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    assert install.settings_path(False, home, "/p") == tmp_path / ".claude" / "settings.json"
    conf = {**home, "CLAUDE_CONFIG_DIR": str(tmp_path / "conf")}
    assert install.settings_path(False, conf, "/p") == tmp_path / "conf" / "settings.json"
    assert install.settings_path(True, conf, "/p") == Path("/p/.claude/settings.json")


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claude_run", "install", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": SRC, "HOME": str(tmp_path), **env},
        timeout=60,
    )


def test_cli_dry_run_shows_a_diff_and_writes_nothing(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(THEIRS))
    proc = cli(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert '+  "statusLine": {' in proc.stdout and "hook session-end" in proc.stdout
    assert json.loads(settings.read_text()) == THEIRS and list(settings.parent.iterdir()) == [settings]


def test_cli_writes_a_backup_and_is_idempotent(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "settings.json").write_text(json.dumps(THEIRS))
    proc = cli(tmp_path, "--statusline", "--ledger", "l.jsonl", CLAUDE_CONFIG_DIR=str(conf))
    assert proc.returncode == 0, proc.stderr
    written = json.loads((conf / "settings.json").read_text())
    assert written["hooks"] == THEIRS["hooks"]  # --statusline alone
    assert written["statusLine"]["command"].endswith(f"statusline --ledger {tmp_path / 'l.jsonl'}")
    (backup,) = conf.glob("settings.json.*.bak")
    assert json.loads(backup.read_text()) == THEIRS
    again = cli(tmp_path, "--statusline", "--ledger", "l.jsonl", CLAUDE_CONFIG_DIR=str(conf))
    assert "nothing to do" in again.stdout and len(list(conf.glob("*.bak"))) == 1


def test_cli_project_settings(tmp_path: Path) -> None:
    assert cli(tmp_path, "--project", "--session-end").returncode == 0
    written = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert list(written) == ["hooks"]


def test_cli_refuses_broken_settings_with_one_line(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    proc = cli(tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not valid JSON" in proc.stderr
    assert settings.read_text() == "{not json"
