"""`ledger report --html`: one self-contained file, written whole, with the filters asked for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from claude_run.errors import LedgerError, UsageError
from support.dashboard_ledger import known_records, write_ledger


def _app() -> typer.Typer:
    from claude_run.commands.ledger_html import register

    app = typer.Typer()

    @app.callback()
    def _group() -> None:  # a group, as `claude-run ledger` is
        pass

    register(app)
    return app


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return write_ledger(tmp_path / "ledger.jsonl", known_records(datetime.now(timezone.utc)))


def test_report_to_stdout_is_self_contained(ledger: Path) -> None:
    result = CliRunner().invoke(_app(), ["report", "--html", "-", "--ledger", str(ledger), "--period", "all"])
    assert result.exit_code == 0, result.output
    html = result.stdout
    assert html.startswith("<!doctype html>")
    # Nothing to fetch: no src attributes, no stylesheets or preloads; the only links are CI run links.
    assert not re.search(r"\ssrc\s*=", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # (the run's link in the latest runs, and its job's latest run in the CI table)
    assert set(re.findall(r'href="([^"]+)"', html)) == {"https://github.com/acme/app/actions/runs/1"}
    assert "<script" not in html  # the report needs no script at all
    assert 'id="total-runs" data-value="6"' in html


def test_report_filters_and_atomic_write(ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        _app(),
        ["report", "--html", str(out), "--ledger", str(ledger), "--project", "beta", "--tag", "team=data"],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'id="total-runs" data-value="1"' in html
    today = datetime.now().date()
    first = (today - timedelta(days=29)).isoformat()
    assert f"{first} to {today.isoformat()} (30d), project beta, tag team=data" in html
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report-")] == []


def test_report_refusals(ledger: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(_app(), ["report", "--html", str(tmp_path), "--ledger", str(ledger)])
    assert isinstance(bad.exception, UsageError) and "is a directory" in bad.exception.message
    bad = runner.invoke(_app(), ["report", "--html", "-", "--ledger", str(ledger), "--period", "someday"])
    assert isinstance(bad.exception, UsageError) and "bad date" in bad.exception.message
    bad = runner.invoke(_app(), ["report", "--html", "-", "--ledger", str(ledger), "--period", "a..b"])
    assert isinstance(bad.exception, UsageError)


def test_empty_ledger_report(tmp_path: Path) -> None:
    missing = CliRunner().invoke(_app(), ["report", "--html", "-", "--ledger", str(tmp_path / "none.jsonl")])
    assert isinstance(missing.exception, LedgerError) and "no ledger at" in missing.exception.message
    (tmp_path / "none.jsonl").write_bytes(b"")
    result = CliRunner().invoke(_app(), ["report", "--html", "-", "--ledger", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 0
    assert "no runs match these filters" in result.stdout
    assert 'id="total-runs" data-value="0"' in result.stdout


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "claude_run", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_real_cli_report_and_exit_codes(ledger: Path, tmp_path: Path) -> None:
    out = tmp_path / "spend.html"
    done = _cli("ledger", "report", "--html", str(out), "--ledger", str(ledger), "--period", "7d")
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("<!doctype html>") and "wrote" in done.stderr
    bad = _cli("ledger", "report", "--html", str(out), "--ledger", str(ledger), "--period", "soon")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "bad date" in bad.stderr
    link = tmp_path / "link.jsonl"
    link.symlink_to(ledger)
    refused = _cli("ledger", "report", "--html", str(out), "--ledger", str(link))
    assert (
        refused.returncode == 74 and "symbolic link" in refused.stderr and "Traceback" not in refused.stderr
    )
