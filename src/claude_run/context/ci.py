"""CI provider detection (the record's `ci` field).

Pure functions of an environment mapping, so each provider is a table of variable names that tests
can check one by one. Every detected provider yields the same keys (see `FIELDS`), None when that CI
does not expose the value, so reports can group by any key without caring where it came from.
Identifiers stay strings (as the CI prints them); `attempt` and `pr` are integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

Env = Mapping[str, str]

FIELDS: tuple[str, ...] = (
    "provider",
    "repository",
    "workflow",
    "job",
    "run_id",
    "job_id",
    "attempt",
    "event",
    "ref",
    "branch",
    "commit",
    "pr",
    "url",
)

_PR_IN_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")
_PR_IN_URL = re.compile(r"/(?:pull|pulls|pull-requests|merge_requests)/(\d+)/?$")


def _get(env: Env, name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _strip_prefix(value: str | None, *prefixes: str) -> str | None:
    if value is None:
        return None
    for prefix in prefixes:
        if value.startswith(prefix):
            return value[len(prefix) :] or None
    return value


def _fill(provider: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out["provider"] = provider
    out.update(values)
    return out


def github(env: Env) -> dict[str, Any]:
    server = (_get(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repo = _get(env, "GITHUB_REPOSITORY")
    run_id = _get(env, "GITHUB_RUN_ID")
    attempt = _int(_get(env, "GITHUB_RUN_ATTEMPT"))
    ref = _get(env, "GITHUB_REF")
    pr_match = _PR_IN_REF.match(ref or "")
    url = None
    if repo and run_id:
        url = f"{server}/{repo}/actions/runs/{run_id}"
        if attempt and attempt > 1:  # the bare run URL shows the latest attempt, not necessarily this one
            url += f"/attempts/{attempt}"
    # On pull_request events GITHUB_REF is refs/pull/N/merge and GITHUB_HEAD_REF names the PR's branch.
    branch = _get(env, "GITHUB_HEAD_REF")
    if branch is None and (ref or "").startswith("refs/heads/"):
        branch = _get(env, "GITHUB_REF_NAME") or _strip_prefix(ref, "refs/heads/")
    return _fill(
        "github",
        repository=repo,
        workflow=_get(env, "GITHUB_WORKFLOW"),
        job=_get(env, "GITHUB_JOB"),
        run_id=run_id,
        attempt=attempt,
        event=_get(env, "GITHUB_EVENT_NAME"),
        ref=ref,
        branch=branch,
        commit=_get(env, "GITHUB_SHA"),
        pr=int(pr_match.group(1)) if pr_match else None,
        url=url,
    )


def gitlab(env: Env) -> dict[str, Any]:
    # GitLab exposes no retry counter (gitlab-org/gitlab#340141): attempt stays None.
    return _fill(
        "gitlab",
        repository=_get(env, "CI_PROJECT_PATH"),
        workflow=_get(env, "CI_PIPELINE_NAME"),
        job=_get(env, "CI_JOB_NAME"),
        run_id=_get(env, "CI_PIPELINE_ID"),
        job_id=_get(env, "CI_JOB_ID"),
        event=_get(env, "CI_PIPELINE_SOURCE"),
        ref=_get(env, "CI_COMMIT_REF_NAME"),
        branch=_get(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") or _get(env, "CI_COMMIT_BRANCH"),
        commit=_get(env, "CI_COMMIT_SHA"),
        pr=_int(_get(env, "CI_MERGE_REQUEST_IID")),
        url=_get(env, "CI_JOB_URL") or _get(env, "CI_PIPELINE_URL"),
    )


def circleci(env: Env) -> dict[str, Any]:
    # CIRCLE_PR_NUMBER is only set for PRs from forks; CIRCLE_PULL_REQUEST (a URL) for every PR build.
    pr = _int(_get(env, "CIRCLE_PR_NUMBER"))
    if pr is None:
        match = _PR_IN_URL.search(_get(env, "CIRCLE_PULL_REQUEST") or "")
        pr = int(match.group(1)) if match else None
    owner, name = _get(env, "CIRCLE_PROJECT_USERNAME"), _get(env, "CIRCLE_PROJECT_REPONAME")
    branch = _get(env, "CIRCLE_BRANCH")
    return _fill(
        "circleci",
        repository=f"{owner}/{name}" if owner and name else None,
        job=_get(env, "CIRCLE_JOB"),
        run_id=_get(env, "CIRCLE_WORKFLOW_ID"),
        job_id=_get(env, "CIRCLE_BUILD_NUM"),
        ref=branch or _get(env, "CIRCLE_TAG"),
        branch=branch,
        commit=_get(env, "CIRCLE_SHA1"),
        pr=pr,
        url=_get(env, "CIRCLE_BUILD_URL"),
    )


def buildkite(env: Env) -> dict[str, Any]:
    retries = _int(_get(env, "BUILDKITE_RETRY_COUNT"))
    build_url = _get(env, "BUILDKITE_BUILD_URL")
    job_id = _get(env, "BUILDKITE_JOB_ID")
    branch = _get(env, "BUILDKITE_BRANCH")
    return _fill(
        "buildkite",
        workflow=_get(env, "BUILDKITE_PIPELINE_SLUG"),
        job=_get(env, "BUILDKITE_LABEL") or _get(env, "BUILDKITE_STEP_KEY"),
        run_id=_get(env, "BUILDKITE_BUILD_NUMBER"),
        job_id=job_id,
        attempt=retries + 1 if retries is not None else None,
        event=_get(env, "BUILDKITE_SOURCE"),
        ref=_get(env, "BUILDKITE_TAG") or branch,
        branch=branch,
        commit=_get(env, "BUILDKITE_COMMIT"),
        pr=_int(_get(env, "BUILDKITE_PULL_REQUEST")),  # "false" outside PR builds
        url=f"{build_url}#{job_id}" if build_url and job_id else build_url,
    )


def jenkins(env: Env) -> dict[str, Any]:
    # Multibranch pipelines set BRANCH_NAME / CHANGE_*; the git plugin sets GIT_BRANCH as "origin/x".
    git_branch = _strip_prefix(_get(env, "GIT_BRANCH"), "origin/", "refs/heads/")
    branch = _get(env, "CHANGE_BRANCH") or _get(env, "BRANCH_NAME") or git_branch
    return _fill(
        "jenkins",
        workflow=_get(env, "JOB_NAME"),
        job=_get(env, "STAGE_NAME"),
        run_id=_get(env, "BUILD_NUMBER"),
        ref=_get(env, "TAG_NAME") or _get(env, "BRANCH_NAME") or _get(env, "GIT_BRANCH"),
        branch=branch,
        commit=_get(env, "GIT_COMMIT"),
        pr=_int(_get(env, "CHANGE_ID")),
        url=_get(env, "BUILD_URL"),
    )


def azure(env: Env) -> dict[str, Any]:
    collection = _get(env, "SYSTEM_COLLECTIONURI")
    project = _get(env, "SYSTEM_TEAMPROJECT")
    build_id = _get(env, "BUILD_BUILDID")
    url = None
    if collection and project and build_id:
        url = f"{collection.rstrip('/')}/{quote(project)}/_build/results?buildId={build_id}"
    ref = _get(env, "BUILD_SOURCEBRANCH")
    branch = _strip_prefix(_get(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH"), "refs/heads/")
    if branch is None and (ref or "").startswith("refs/heads/"):
        # Not BUILD_SOURCEBRANCHNAME: that is only the last path segment ("feature/x" -> "x").
        branch = _strip_prefix(ref, "refs/heads/")
    # GitHub-hosted repos have a PR number distinct from Azure's PR id; prefer the number people see.
    pr = _int(_get(env, "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")) or _int(
        _get(env, "SYSTEM_PULLREQUEST_PULLREQUESTID")
    )
    return _fill(
        "azure",
        repository=_get(env, "BUILD_REPOSITORY_NAME"),
        workflow=_get(env, "BUILD_DEFINITIONNAME"),
        job=_get(env, "SYSTEM_JOBDISPLAYNAME") or _get(env, "AGENT_JOBNAME"),
        run_id=build_id,
        job_id=_get(env, "SYSTEM_JOBID"),
        attempt=_int(_get(env, "SYSTEM_JOBATTEMPT")),
        event=_get(env, "BUILD_REASON"),
        ref=ref,
        branch=branch,
        commit=_get(env, "BUILD_SOURCEVERSION"),
        pr=pr,
        url=url,
    )


def generic(env: Env) -> dict[str, Any]:
    return _fill("generic")


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


# Order matters: every provider here also sets CI=true, and Jenkins's variables are generic names.
PROVIDERS: tuple[tuple[str, Callable[[Env], bool], Callable[[Env], dict[str, Any]]], ...] = (
    ("github", lambda e: e.get("GITHUB_ACTIONS") == "true", github),
    ("gitlab", lambda e: e.get("GITLAB_CI") == "true", gitlab),
    ("circleci", lambda e: e.get("CIRCLECI") == "true", circleci),
    ("buildkite", lambda e: e.get("BUILDKITE") == "true", buildkite),
    ("azure", lambda e: _is_true(e.get("TF_BUILD")), azure),
    (
        "jenkins",
        lambda e: bool(e.get("JENKINS_URL") or (e.get("JENKINS_HOME") and e.get("BUILD_ID"))),
        jenkins,
    ),
    ("generic", lambda e: _is_true(e.get("CI")), generic),
)


def detect(env: Mapping[str, str]) -> dict[str, Any] | None:
    """Which CI this runs in, with workflow, job, run id and a link when it can be built; None outside CI."""
    for _name, matches, build in PROVIDERS:
        if matches(env):
            return build(env)
    return None
