"""Branch, commit and origin URL read straight from `.git`, without running git.

Every tracked run wants these three facts while claude is running. Three `git` processes cost
~10 ms of CPU that competes with claude's own start-up (benchmarks/overhead.py); reading a handful
of small files costs well under a millisecond. Anything unusual (GIT_DIR set, reftable refs,
config includes, a ref we cannot find) returns None, and the caller asks git itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_SHA_LEN = (40, 64)  # sha1, sha256 repositories


class Unsupported(Exception):
    """A layout this reader does not handle: ask `git` instead."""


def find_git_dir(cwd: str) -> tuple[Path, Path]:
    """(work tree root, git dir) for `cwd`, following a `.git` file (worktrees, submodules)."""
    here = Path(cwd).resolve()
    for directory in (here, *here.parents):
        dotgit = directory / ".git"
        if dotgit.is_dir():
            return directory, dotgit
        if dotgit.is_file():
            text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
            if not text.startswith("gitdir:"):
                raise Unsupported(".git file without gitdir")
            target = Path(text[len("gitdir:") :].strip())
            if not target.is_absolute():
                target = (directory / target).resolve()
            return directory, target
    raise FileNotFoundError("not a git repository")


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"
    if common.is_file():
        path = Path(common.read_text().strip())
        return path if path.is_absolute() else (git_dir / path).resolve()
    return git_dir


def _is_sha(text: str) -> bool:
    return len(text) in _SHA_LEN and all(c in "0123456789abcdef" for c in text)


def _resolve_ref(ref: str, git_dir: Path, common: Path) -> str | None:
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text().strip()
            if value.startswith("ref: "):
                return _resolve_ref(value[5:].strip(), git_dir, common)
            if _is_sha(value):
                return value
            raise Unsupported(f"odd ref file {loose}")
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("#", "^")):
                continue
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _is_sha(sha):
                return sha
    return None  # an unborn branch (a new repository without commits)


def _origin_url(common: Path) -> str | None:
    config = common / "config"
    if not config.is_file():
        return None
    section = ""
    url: str | None = None
    for raw in config.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            lowered = section.lower()
            if lowered.startswith(("include", "includeif")):
                raise Unsupported("config includes")
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if section.lower() == "extensions" and key == "refstorage" and value.strip() != "files":
            raise Unsupported("reftable")
        if section == 'remote "origin"' and key == "url" and sep:
            value = value.strip()
            if value.startswith('"') or "\\" in value:
                raise Unsupported("quoted config value")
            url = value.split(" #", 1)[0].split(" ;", 1)[0].strip()
    return url


def read(cwd: str, env: Mapping[str, str]) -> dict[str, str | None] | None:
    """{root, branch, commit, remote(raw)} or None when git itself should be asked.

    `branch` is None when HEAD is detached. Raises FileNotFoundError outside a repository.
    """
    if any(env.get(k) for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES")):
        return None
    try:
        root, git_dir = find_git_dir(cwd)
        common = _common_dir(git_dir)
        head = (git_dir / "HEAD").read_text().strip()
        branch: str | None = None
        if head.startswith("ref: "):
            ref = head[5:].strip()
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
            commit = _resolve_ref(ref, git_dir, common)
        elif _is_sha(head):
            commit = head
        else:
            return None
        remote = _origin_url(common)
    except (Unsupported, OSError, UnicodeError):
        if not os.path.exists(cwd):
            raise FileNotFoundError(cwd) from None
        return None
    return {"root": str(root), "branch": branch, "commit": commit, "remote": remote}
