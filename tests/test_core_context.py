"""Git context read straight from .git must agree with what git itself says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from claude_run.context import git as gitrepo
from claude_run.context.collect import _git_info_by_subprocess, git_info, sanitize_remote
from claude_run.context.tags import parse_tags

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**os.environ, **ENV}
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "feature/x")
    (r / "f").write_text("1")
    git(r, "add", "f")
    git(r, "commit", "-q", "-m", "one")
    git(r, "remote", "add", "origin", "https://user:s3cret@example.com/org/proj.git")
    return r


def both(cwd: Path, env: dict[str, str] | None = None) -> tuple[dict[str, object], dict[str, object]]:
    env = env or {}
    return git_info(str(cwd), env), _git_info_by_subprocess(str(cwd), env)


def test_plain_repo_matches_git_and_strips_credentials(repo: Path) -> None:
    direct, via_git = both(repo / ".")
    assert direct == via_git
    assert direct["branch"] == "feature/x"
    assert direct["commit"] == git(repo, "rev-parse", "HEAD")
    assert direct["remote"] == "https://example.com/org/proj.git"
    assert "s3cret" not in str(direct)


def test_subdirectory_packed_refs_and_detached_head(repo: Path) -> None:
    sub = repo / "a" / "b"
    sub.mkdir(parents=True)
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "feature").exists()
    direct, via_git = both(sub)
    assert direct == via_git
    git(repo, "checkout", "-q", "--detach")
    direct, via_git = both(repo, {"GITHUB_HEAD_REF": "pr-branch"})
    assert direct == via_git
    assert direct["branch"] == "pr-branch"


def test_worktree_and_unborn_branch(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "other", str(wt))
    direct, via_git = both(wt)
    assert direct == via_git and direct["branch"] == "other"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    assert gitrepo.read(str(fresh), {}) == {
        "root": str(fresh),
        "branch": "main",
        "commit": None,
        "remote": None,
    }


def test_outside_a_repository(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    assert git_info(str(d), {}) == {"branch": None, "commit": None, "remote": None, "root": None}


def test_unusual_layouts_fall_back_to_git(repo: Path) -> None:
    assert gitrepo.read(str(repo), {"GIT_DIR": str(repo / ".git")}) is None
    with open(repo / ".git" / "config", "a") as fh:
        fh.write('[include]\n\tpath = "other"\n')
    assert gitrepo.read(str(repo), {}) is None
    assert git_info(str(repo), {})["branch"] == "feature/x"


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://x-access-token:ghs_abc@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://github.com/o/r?token=abc#frag", "https://github.com/o/r"),
        ("ssh://git@host:2222/o/r.git", "ssh://host:2222/o/r.git"),
        ("git@github.com:o/r.git", "github.com:o/r.git"),
        (None, None),
    ],
)
def test_sanitize_remote(url: str | None, clean: str | None) -> None:
    assert sanitize_remote(url) == clean


def test_tags() -> None:
    assert parse_tags(["a=1", "b.c/d:e-f=x=y", "a=2"]) == {"a": "2", "b.c/d:e-f": "x=y"}
    for bad in ["noequals", "=v", "sp ace=1", "k" * 65 + "=v"]:
        with pytest.raises(Exception, match="bad --tag"):
            parse_tags([bad])
