"""`claude-run ledger import [DIR...]`: Claude Code's own history into the ledger (see docs/import.md)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError


def _parse_since(value: str | None) -> datetime | None:
    """`--since`: the one date grammar (claude_run.query.timeparse); wall-clock dates are local."""
    if value is None:
        return None
    from ..query.timeparse import parse_instant

    return parse_instant(value)


def _describe(rec: dict[str, Any]) -> str:
    tokens = rec.get("tokens") or {}
    total = sum(v for k, v in tokens.items() if k in ("input", "output", "cache_read", "cache_creation"))
    cost = rec.get("cost_usd")
    cost_text = f"${cost:.4f}" if isinstance(cost, (int, float)) else "unpriced"
    kind = "update" if rec.get("supersedes") else "new"
    models = ",".join(sorted(rec.get("models") or {})) or "-"
    from ..text import terminal  # names from transcripts on disk: nothing raw on the terminal

    return terminal(
        f"{kind:6} {rec.get('session_id')}  {rec.get('started_at') or '-'}  {rec.get('project') or '-'}"
        f"  {models}  {total} tokens  {cost_text} ({rec.get('cost_source')})"
    )


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        dirs: Annotated[
            list[Path] | None,
            typer.Argument(
                help="Claude config dirs (holding projects/) or projects dirs. "
                "Default: CLAUDE_CONFIG_DIR (comma-separated), else ~/.config/claude and ~/.claude.",
                show_default=False,
            ),
        ] = None,
        ledger: Annotated[str | None, typer.Option("--ledger", help="Ledger file.")] = None,
        since: Annotated[
            str | None,
            typer.Option(
                "--since",
                help="Only transcripts written on/after DATE (YYYY-MM-DD, ISO, today, 30d, this-month…).",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print what would be imported; write nothing.")
        ] = False,
        jobs: Annotated[
            int | None,
            typer.Option("--jobs", "-j", min=1, max=256, help="Worker processes (default: one per core)."),
        ] = None,
        sessions: Annotated[
            int | None,
            typer.Option("--sessions", min=1, help="Import at most N sessions (by name; for quick runs)."),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        execution_files: Annotated[
            list[str] | None,
            typer.Option(
                "--execution-file",
                help="Import claude-code-action's claude-execution-output.json instead of transcripts "
                "(repeatable; a quoted glob such as 'runs/**/claude-execution-output.json' works).",
                show_default=False,
            ),
        ] = None,
        tag: Annotated[
            list[str] | None,
            typer.Option("--tag", help="KEY=VALUE stored on each record imported from --execution-file."),
        ] = None,
    ) -> None:
        """Import Claude Code session transcripts: one record per session (mode `imported`)."""
        from ..gates import check_ledger
        from ..paths import ledger_path

        if execution_files:
            if dirs or since or sessions:
                raise UsageError("--execution-file reads only the files given: no DIR, --since or --sessions")
            target = ledger_path(ledger)
            check_ledger(target, reading=False)
            _import_execution(target, execution_files, tag or [], dry_run, quiet, json_out)
            return
        if tag:
            raise UsageError("--tag applies to --execution-file imports")
        from ..transcripts.importer import run_import
        from ..transcripts.locate import config_dirs

        since_dt = _parse_since(since)
        roots = list(dirs) if dirs else config_dirs()
        for d in dirs or []:
            if not d.is_dir():
                raise UsageError(f"not a directory: {d}")
        path = ledger_path(ledger)
        check_ledger(path, reading=False)  # importing into a new ledger creates it
        result = run_import(
            path, roots, since=since_dt, dry_run=dry_run, workers=jobs, limit_sessions=sessions
        )
        if json_out:
            import orjson

            out = {
                "dry_run": dry_run,
                "records": result.records if dry_run else [r["id"] for r in result.records],
                "files_seen": result.files_seen,
                "files_read": result.files_read,
                "bytes_read": result.bytes_read,
                "tracked_sessions_skipped": result.sessions_tracked,
                "bad_lines": result.bad_lines,
                "read_errors": result.read_errors,
                "seconds": round(result.seconds, 3),
            }
            sys.stdout.write(orjson.dumps(out).decode() + "\n")
            return
        if dry_run:
            for rec in result.records:
                sys.stdout.write(_describe(rec) + "\n")
        if not quiet:
            new = sum(1 for r in result.records if not r.get("supersedes"))
            verb = "would import" if dry_run else "imported"
            line = (
                f"claude-run: {verb} {len(result.records)} session(s) ({new} new,"
                f" {len(result.records) - new} updated) from {result.files_read} of {result.files_seen}"
                f" transcript(s), {result.bytes_read / 1e6:.1f} MB in {result.seconds:.2f} s"
            )
            if result.sessions_tracked:
                line += f"; {len(result.sessions_tracked)} session(s) already tracked by claude-run, skipped"
            sys.stderr.write(line + "\n")
        for err in result.read_errors:
            sys.stderr.write(f"claude-run: cannot read {err}\n")
        if result.bad_lines:
            sys.stderr.write(f"claude-run: skipped {result.bad_lines} unreadable transcript line(s)\n")


def _import_execution(
    ledger: Path, patterns: list[str], tags: list[str], dry_run: bool, quiet: bool, json_out: bool
) -> None:
    import os

    from ..context.tags import parse_tags
    from ..transcripts.execution_import import expand_paths, import_execution_files

    parsed_tags = parse_tags(tags)
    paths = expand_paths(patterns)
    result = import_execution_files(ledger, paths, tags=parsed_tags, dry_run=dry_run)
    env = os.environ
    if env.get("GITHUB_OUTPUT") or env.get("GITHUB_STEP_SUMMARY") or env.get("CLAUDE_RUN_DOTENV"):
        from ..ci.outputs import write_for_run

        # One table per session; the step outputs end up describing the last one.
        for rec in result.records:
            for warning in write_for_run(rec, None, env, recorded=not dry_run):
                sys.stderr.write(f"claude-run: {warning}\n")
    if json_out:
        import orjson

        out = {
            "dry_run": dry_run,
            "records": result.records if dry_run else [r["id"] for r in result.records],
            "files": result.files,
            "sessions": result.sessions,
            "already_imported": result.already_imported,
            "tracked_sessions_skipped": result.already_tracked,
        }
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    if dry_run:
        for rec in result.records:
            sys.stdout.write(_describe(rec) + "\n")
    if not quiet:
        verb = "would import" if dry_run else "imported"
        line = f"claude-run: {verb} {len(result.records)} session(s) from {result.files} execution file(s)"
        if result.already_imported:
            line += f"; {len(result.already_imported)} already in the ledger"
        if result.already_tracked:
            line += f"; {len(result.already_tracked)} already tracked by claude-run"
        sys.stderr.write(line + "\n")
