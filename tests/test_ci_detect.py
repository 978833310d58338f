"""CI detection: one row per provider, with the variable names each CI really sets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_run.context import ci
from claude_run.context.collect import collect

SHA = "0123456789abcdef0123456789abcdef01234567"

CASES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "github-push",
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/widgets",
            "GITHUB_WORKFLOW": "claude",
            "GITHUB_JOB": "review",
            "GITHUB_RUN_ID": "9876543210",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/feature/x",
            "GITHUB_REF_NAME": "feature/x",
            "GITHUB_SHA": SHA,
        },
        {
            "provider": "github",
            "repository": "acme/widgets",
            "workflow": "claude",
            "job": "review",
            "run_id": "9876543210",
            "job_id": None,
            "attempt": 1,
            "event": "push",
            "ref": "refs/heads/feature/x",
            "branch": "feature/x",
            "commit": SHA,
            "pr": None,
            "url": "https://github.com/acme/widgets/actions/runs/9876543210",
        },
    ),
    (
        "github-pull-request-rerun",
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://ghe.example.com/",
            "GITHUB_REPOSITORY": "acme/widgets",
            "GITHUB_WORKFLOW": "claude",
            "GITHUB_JOB": "review",
            "GITHUB_RUN_ID": "77",
            "GITHUB_RUN_ATTEMPT": "3",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_REF": "refs/pull/512/merge",
            "GITHUB_REF_NAME": "512/merge",
            "GITHUB_HEAD_REF": "fix-tests",
            "GITHUB_BASE_REF": "main",
            "GITHUB_SHA": SHA,
        },
        {
            "provider": "github",
            "repository": "acme/widgets",
            "workflow": "claude",
            "job": "review",
            "run_id": "77",
            "job_id": None,
            "attempt": 3,
            "event": "pull_request",
            "ref": "refs/pull/512/merge",
            "branch": "fix-tests",
            "commit": SHA,
            "pr": 512,
            "url": "https://ghe.example.com/acme/widgets/actions/runs/77/attempts/3",
        },
    ),
    (
        "gitlab-merge-request",
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PROJECT_PATH": "group/sub/project",
            "CI_PIPELINE_NAME": "nightly",
            "CI_JOB_NAME": "claude: [lint]",
            "CI_PIPELINE_ID": "1234",
            "CI_JOB_ID": "5678",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_COMMIT_REF_NAME": "topic",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "topic",
            "CI_MERGE_REQUEST_IID": "42",
            "CI_COMMIT_SHA": SHA,
            "CI_JOB_URL": "https://gitlab.com/group/sub/project/-/jobs/5678",
            "CI_PIPELINE_URL": "https://gitlab.com/group/sub/project/-/pipelines/1234",
        },
        {
            "provider": "gitlab",
            "repository": "group/sub/project",
            "workflow": "nightly",
            "job": "claude: [lint]",
            "run_id": "1234",
            "job_id": "5678",
            "attempt": None,
            "event": "merge_request_event",
            "ref": "topic",
            "branch": "topic",
            "commit": SHA,
            "pr": 42,
            "url": "https://gitlab.com/group/sub/project/-/jobs/5678",
        },
    ),
    (
        "gitlab-branch",
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_ID": "1",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_BRANCH": "main",
            "CI_PIPELINE_SOURCE": "push",
            "CI_PIPELINE_URL": "https://gitlab.example.com/p/-/pipelines/1",
        },
        {
            "provider": "gitlab",
            "run_id": "1",
            "ref": "main",
            "branch": "main",
            "event": "push",
            "url": "https://gitlab.example.com/p/-/pipelines/1",
        },
    ),
    (
        "circleci-pr",
        {
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_PROJECT_USERNAME": "acme",
            "CIRCLE_PROJECT_REPONAME": "widgets",
            "CIRCLE_JOB": "claude",
            "CIRCLE_WORKFLOW_ID": "6e0f3a2c-1b1f-4c1e-9a6c-0d3f1c2b4a5e",
            "CIRCLE_BUILD_NUM": "311",
            "CIRCLE_BRANCH": "fix-tests",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/widgets/pull/88",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/widgets/311",
        },
        {
            "provider": "circleci",
            "repository": "acme/widgets",
            "job": "claude",
            "run_id": "6e0f3a2c-1b1f-4c1e-9a6c-0d3f1c2b4a5e",
            "job_id": "311",
            "ref": "fix-tests",
            "branch": "fix-tests",
            "commit": SHA,
            "pr": 88,
            "url": "https://circleci.com/gh/acme/widgets/311",
        },
    ),
    (
        "circleci-fork-pr-tag",
        {"CIRCLECI": "true", "CIRCLE_TAG": "v1.2.0", "CIRCLE_PR_NUMBER": "7"},
        {"provider": "circleci", "ref": "v1.2.0", "pr": 7},
    ),
    (
        "buildkite-retry",
        {
            "CI": "true",
            "BUILDKITE": "true",
            "BUILDKITE_PIPELINE_SLUG": "widgets",
            "BUILDKITE_LABEL": ":robot_face: claude",
            "BUILDKITE_BUILD_NUMBER": "1503",
            "BUILDKITE_JOB_ID": "d593f546-8c9a-45f8-8701-a2b92fbea9a7",
            "BUILDKITE_RETRY_COUNT": "2",
            "BUILDKITE_SOURCE": "webhook",
            "BUILDKITE_BRANCH": "fix-tests",
            "BUILDKITE_COMMIT": SHA,
            "BUILDKITE_PULL_REQUEST": "19",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/widgets/builds/1503",
        },
        {
            "provider": "buildkite",
            "workflow": "widgets",
            "job": ":robot_face: claude",
            "run_id": "1503",
            "job_id": "d593f546-8c9a-45f8-8701-a2b92fbea9a7",
            "attempt": 3,
            "event": "webhook",
            "ref": "fix-tests",
            "branch": "fix-tests",
            "commit": SHA,
            "pr": 19,
            "url": "https://buildkite.com/acme/widgets/builds/1503#d593f546-8c9a-45f8-8701-a2b92fbea9a7",
        },
    ),
    (
        "buildkite-not-a-pr",
        {"BUILDKITE": "true", "BUILDKITE_PULL_REQUEST": "false", "BUILDKITE_RETRY_COUNT": "0"},
        {"provider": "buildkite", "pr": None, "attempt": 1},
    ),
    (
        "jenkins-multibranch-pr",
        {
            "JENKINS_URL": "https://ci.example.com/",
            "JOB_NAME": "widgets/PR-23",
            "STAGE_NAME": "Claude",
            "BUILD_NUMBER": "4",
            "BUILD_ID": "4",
            "BRANCH_NAME": "PR-23",
            "CHANGE_ID": "23",
            "CHANGE_BRANCH": "fix-tests",
            "GIT_COMMIT": SHA,
            "BUILD_URL": "https://ci.example.com/job/widgets/job/PR-23/4/",
        },
        {
            "provider": "jenkins",
            "workflow": "widgets/PR-23",
            "job": "Claude",
            "run_id": "4",
            "ref": "PR-23",
            "branch": "fix-tests",
            "commit": SHA,
            "pr": 23,
            "url": "https://ci.example.com/job/widgets/job/PR-23/4/",
        },
    ),
    (
        "jenkins-freestyle-git-plugin",
        {
            "JENKINS_HOME": "/var/jenkins_home",
            "BUILD_ID": "9",
            "BUILD_NUMBER": "9",
            "GIT_BRANCH": "origin/main",
        },
        {"provider": "jenkins", "run_id": "9", "ref": "origin/main", "branch": "main"},
    ),
    (
        "azure-github-pr",
        {
            "TF_BUILD": "True",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "Widget Team",
            "BUILD_DEFINITIONNAME": "widgets-ci",
            "SYSTEM_JOBDISPLAYNAME": "Claude review",
            "AGENT_JOBNAME": "Job",
            "BUILD_BUILDID": "2048",
            "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "SYSTEM_JOBATTEMPT": "2",
            "BUILD_REASON": "PullRequest",
            "BUILD_SOURCEBRANCH": "refs/pull/31/merge",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "feature/x",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "987654",
            "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "31",
            "BUILD_SOURCEVERSION": SHA,
            "BUILD_REPOSITORY_NAME": "acme/widgets",
        },
        {
            "provider": "azure",
            "repository": "acme/widgets",
            "workflow": "widgets-ci",
            "job": "Claude review",
            "run_id": "2048",
            "job_id": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "attempt": 2,
            "event": "PullRequest",
            "ref": "refs/pull/31/merge",
            "branch": "feature/x",
            "commit": SHA,
            "pr": 31,
            "url": "https://dev.azure.com/acme/Widget%20Team/_build/results?buildId=2048",
        },
    ),
    (
        "azure-branch",
        {"TF_BUILD": "True", "BUILD_SOURCEBRANCH": "refs/heads/feature/x", "BUILD_SOURCEBRANCHNAME": "x"},
        {"provider": "azure", "ref": "refs/heads/feature/x", "branch": "feature/x", "url": None},
    ),
    ("generic", {"CI": "true", "BUILD_NUMBER": "3"}, {"provider": "generic"}),
    ("generic-1", {"CI": "1"}, {"provider": "generic"}),
]


@pytest.mark.parametrize(("env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_detect_reads_each_providers_variables(env: dict[str, str], expected: dict[str, Any]) -> None:
    got = ci.detect(env)
    assert got is not None
    assert tuple(got) == ci.FIELDS  # the same keys for every provider
    for key in ci.FIELDS:
        assert got[key] == expected.get(key), key


@pytest.mark.parametrize(
    "env",
    [{}, {"CI": "false"}, {"CI": ""}, {"GITHUB_ACTIONS": "false"}, {"BUILD_ID": "3"}, {"TF_BUILD": "False"}],
)
def test_not_ci(env: dict[str, str]) -> None:
    assert ci.detect(env) is None


@given(st.dictionaries(st.sampled_from(sorted({k for c in CASES for k in c[1]})), st.text(max_size=40)))
def test_detect_never_raises_and_keeps_its_shape(env: dict[str, str]) -> None:
    got = ci.detect(env)
    if got is not None:
        assert tuple(got) == ci.FIELDS
        assert got["pr"] is None or isinstance(got["pr"], int)
        assert got["attempt"] is None or isinstance(got["attempt"], int)


def test_context_records_ci(tmp_path: Any) -> None:
    env = dict(CASES[0][1])
    ctx = collect(str(tmp_path), env)
    assert ctx["ci"]["provider"] == "github"
    assert ctx["ci"]["run_id"] == "9876543210"
