"""CI provider detection (the record's `ci` field)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def detect(env: Mapping[str, str]) -> dict[str, Any] | None:
    """Which CI this runs in, with workflow, job, run id and a link when it can be built."""
    if env.get("GITHUB_ACTIONS") == "true":
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        repo = env.get("GITHUB_REPOSITORY")
        run_id = env.get("GITHUB_RUN_ID")
        return {
            "provider": "github",
            "workflow": env.get("GITHUB_WORKFLOW"),
            "job": env.get("GITHUB_JOB"),
            "run_id": run_id,
            "attempt": env.get("GITHUB_RUN_ATTEMPT"),
            "ref": env.get("GITHUB_REF"),
            "commit": env.get("GITHUB_SHA"),
            "url": f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None,
        }
    if env.get("CI", "").lower() in ("true", "1", "yes"):
        return {"provider": "generic"}
    return None
