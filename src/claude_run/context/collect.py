"""Where a run happened: project, git branch/commit/remote, tags. Never an env value or a credential."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..record.build import cwd_hash


def sanitize_remote(url: str | None) -> str | None:
    """A remote URL without user, password or token, and without query/fragment."""
    if not url:
        return None
    url = url.strip()
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    # scp-like syntax: [user@]host:path
    if ":" in url:
        hostpart, _, path = url.partition(":")
        host = hostpart.rsplit("@", 1)[-1]
        return f"{host}:{path}"
    return url


def _git(cwd: str, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def git_info(cwd: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Branch, commit, remote (credentials stripped) and root; read from `.git` when it is plain."""
    from . import git as gitrepo

    env = os.environ if env is None else env
    try:
        direct = gitrepo.read(cwd, env)
    except FileNotFoundError:
        return {"branch": None, "commit": None, "remote": None, "root": None}
    if direct is not None:
        info: dict[str, Any] = dict(direct)
        info["branch"] = info["branch"] or _ci_branch(env)
        info["remote"] = sanitize_remote(direct["remote"])
        return info
    return _git_info_by_subprocess(cwd, env)


def _ci_branch(env: Mapping[str, str]) -> str | None:
    """A detached HEAD, as in most CI checkouts: the CI knows the branch."""
    branch = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or env.get("CI_COMMIT_REF_NAME")
    branch = branch or env.get("BUILDKITE_BRANCH") or env.get("CIRCLE_BRANCH") or env.get("BRANCH_NAME")
    return branch or None


def _git_info_by_subprocess(cwd: str, env: Mapping[str, str]) -> dict[str, Any]:
    info: dict[str, Any] = {"branch": None, "commit": None, "remote": None, "root": None}
    top = _git(cwd, "rev-parse", "--show-toplevel", "HEAD")
    if top is None:
        root = _git(cwd, "rev-parse", "--show-toplevel")
        info["root"] = root
        if root is None:
            return info
    else:
        lines = top.splitlines()
        info["root"] = lines[0] if lines else None
        info["commit"] = lines[1] if len(lines) > 1 else None
    branch = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
    info["branch"] = _ci_branch(env) if branch == "HEAD" else branch
    info["remote"] = sanitize_remote(_git(cwd, "config", "--get", "remote.origin.url"))
    return info


def project_name(cwd: str, git_root: str | None, remote: str | None) -> str:
    """The repository's name when there is one (stable across clones and CI runners), else the dir."""
    if remote:
        tail = remote.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if tail.endswith(".git"):
            tail = tail[:-4]
        if tail:
            return tail
    return Path(git_root or cwd).name or str(cwd)


def collect(cwd: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Project, git and CI context for a record (runs `git`; call it off the critical path)."""
    from . import ci

    env = os.environ if env is None else env
    g = git_info(cwd, env)
    return {
        "project": project_name(cwd, g.get("root"), g.get("remote")),
        "cwd_sha256": cwd_hash(cwd),
        "git": {"branch": g["branch"], "commit": g["commit"], "remote": g["remote"]},
        "ci": ci.detect(env),
    }
