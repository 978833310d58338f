"""Shared fixtures: the mock Messages API, a throwaway HOME and the real Claude Code binary."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# The harness lives in tests/support/; make ``import support...`` work under any pytest import mode.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from support.claude_cli import BIN_CANDIDATES, find_claude_bin  # noqa: E402
from support.mock_anthropic import MockAnthropic, MockApiFactory, Reply  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real Claude Code CLI against the mock Messages API")


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The real ``claude`` binary; skips the test when it is not installed."""
    path = find_claude_bin()
    if path is None:
        override = os.environ.get("CLAUDE_RUN_TEST_CLAUDE_BIN")
        if override:
            pytest.skip(f"CLAUDE_RUN_TEST_CLAUDE_BIN={override} is not an executable file")
        places = ", ".join(str(p) for p in BIN_CANDIDATES)
        pytest.skip(
            "real Claude Code CLI not found: set CLAUDE_RUN_TEST_CLAUDE_BIN or run "
            f"`npm install --no-save --ignore-scripts @anthropic-ai/claude-code@2.1.330` (looked in {places})"
        )
    return path


@pytest.fixture
def mock_api() -> Iterator[MockApiFactory]:
    """Factory: ``mock_api(script, **options)`` starts a :class:`MockAnthropic`, stopped after the test."""
    started: list[MockAnthropic] = []

    def start(script: Sequence[Reply] = (), **options: Any) -> MockAnthropic:
        api = MockAnthropic(script, **options).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.close()


@pytest.fixture
def claude_home(tmp_path: Path) -> Path:
    """A throwaway ``HOME`` for the CLI, with a ``project/`` directory inside to use as its cwd."""
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    return home
