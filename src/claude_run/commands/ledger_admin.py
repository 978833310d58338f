"""`claude-run ledger path|verify|merge|prune|reset|rotate`: keeping the ledger whole and tidy."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import LedgerCorrupt, UsageError

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="PATH",
        help="Ledger file (default: $CLAUDE_RUN_LEDGER, else the per-user data directory).",
    ),
]


def parse_before(text: str, *, now: datetime | None = None) -> datetime:
    """`--before`: the one date grammar (claude_run.query.timeparse), wall-clock dates local."""
    from ..query.timeparse import parse_instant

    return parse_instant(text, now=now)


def _resolve(ledger: str | None, *, reading: bool = True) -> Path:
    """The ledger path through the one gate (claude_run.gates.check_ledger)."""
    from ..gates import check_ledger
    from ..paths import ledger_path

    path = ledger_path(ledger)
    check_ledger(path, reading=reading)
    return path


def _echo(text: str) -> None:
    sys.stdout.write(text + "\n")


def _warn(text: str) -> None:
    sys.stderr.write(f"claude-run: warning: {text}\n")


def path_cmd(
    ledger: LedgerOption = None,
    all_files: Annotated[
        bool, typer.Option("--all", help="Also list rotated segments, lock, generation and quarantine files.")
    ] = False,
) -> None:
    """Print where the ledger is."""
    from ..ledger import store
    from ..ledger.rotation import RotationPolicy
    from ..ledger.verify import quarantine_path
    from ..paths import ledger_path

    path = ledger_path(ledger)  # `path` only names it: a missing ledger is a fine answer
    _, problems = RotationPolicy.from_env_checked()
    for problem in problems:
        _warn(problem)
    if not all_files:
        _echo(str(path))
        return
    for seg in store.segments(path):
        _echo(str(seg))
    from ..ledger.maintenance import pruned_path
    from ..paths import spool_file

    extras = [store.lock_path(path), store.generation_path(path), quarantine_path(path)]
    extras += [pruned_path(path), spool_file(path)]
    for extra in extras:
        if extra.exists():
            _echo(str(extra))


def verify_cmd(
    ledger: LedgerOption = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Move bad lines to <ledger>.quarantine and rewrite atomically.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Read every line of every segment; report torn or invalid lines (exit 1 if any)."""
    from ..ledger.verify import describe, verify
    from ..ledger.verify import repair as do_repair

    path = _resolve(ledger)
    result = do_repair(path) if repair else verify(path)
    if as_json:
        import orjson

        payload = {
            "ledger": str(path),
            "files": [str(p) for p in result.files],
            "lines": result.lines,
            "records": result.records,
            "future_version": result.future_version,
            "bad_count": result.bad_count,
            "bad": [
                {"file": str(b.path), "line": b.lineno, "offset": b.offset, "reason": b.reason}
                for b in result.bad
            ],
            "suspect_count": result.suspect_count,
            "suspect": [
                {"file": str(b.path), "line": b.lineno, "offset": b.offset, "reason": b.reason}
                for b in result.suspect
            ],
            "quarantined": result.quarantined,
            "quarantine": str(result.quarantine) if result.quarantine else None,
        }
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for bad in result.bad:
            _echo(describe(bad))
        if result.bad_count > len(result.bad):
            _echo(f"... and {result.bad_count - len(result.bad)} more bad line(s)")
        for suspect in result.suspect:
            _echo(describe(suspect))
        if result.suspect_count > len(result.suspect):
            _echo(f"... and {result.suspect_count - len(result.suspect)} more suspect record(s)")
        _echo(
            f"{result.records} record(s), {result.bad_count} bad line(s)"
            + (f", {result.suspect_count} suspect record(s)" if result.suspect_count else "")
            + f" in {len(result.files)} file(s)"
            + (f"; {result.future_version} from a newer schema" if result.future_version else "")
        )
        if result.quarantined:
            _echo(f"moved {result.quarantined} bad line(s) to {result.quarantine}")
        for tmp in result.removed_temps:
            _echo(f"removed {tmp}, left by an interrupted rewrite")
    if repair:
        _deliver_spool(path)
    else:
        _warn_spooled(path)
    sys.stdout.flush()
    if result.bad_count and not repair:
        raise LedgerCorrupt(
            f"{result.bad_count} bad line(s) in {path}; `claude-run ledger verify --repair` quarantines them"
        )
    if result.suspect_count:
        raise LedgerCorrupt(
            f"{result.suspect_count} record(s) in {path} cannot be true (listed above); repair leaves them"
            " to you: remove the wrong copy with an editor, or `ledger export` and rebuild"
        )


def _deliver_spool(path: Path) -> int:
    """Append the records spooled for this ledger (see `ledger.spool`); returns how many landed."""
    from ..ledger.store import spool_waiting

    if not spool_waiting(path):
        return 0
    from ..ledger.spool import flush

    done = flush(path)
    if done.appended or done.already:
        _echo(
            f"appended {len(done.appended)} spooled record(s) to {path}"
            + (f" ({len(done.already)} were already there)" if done.already else "")
        )
    if done.unreadable:
        _warn(f"skipped {done.unreadable} unreadable line(s) of {done.spool}")
    return len(done.appended)


def _warn_spooled(path: Path) -> None:
    from ..ledger.store import spool_waiting

    if spool_waiting(path):
        from ..ledger.spool import waiting

        count = len(waiting(path))
        if count:
            _warn(
                f"{count} record(s) could not be appended earlier and wait in the spool;"
                " `claude-run ledger flush-spool` appends them"
            )


def flush_spool_cmd(
    ledger: LedgerOption = None,
    all_ledgers: Annotated[
        bool, typer.Option("--all", help="Deliver the records spooled for every ledger, not just this one.")
    ] = False,
) -> None:
    """Append the records that could not be written when they were made (disk full, read-only)."""
    from ..ledger.spool import read, spool_files

    targets = [_resolve(ledger)]
    if all_ledgers:
        for spooled in spool_files():
            entries, _ = read(spooled)
            targets += [Path(e.ledger) for e in entries[:1]]
    seen: set[Path] = set()
    for target in targets:
        if target not in seen:
            seen.add(target)
            _deliver_spool(target)
    from ..ledger.spool import waiting

    left = sum(len(waiting(t)) for t in seen)
    _echo(f"{left} spooled record(s) still waiting" if left else "nothing is waiting in the spool")


def merge_cmd(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE", help="Ledger files to fold in (e.g. CI artifacts).")
    ],
    ledger: LedgerOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be added.")] = False,
) -> None:
    """Fold other ledgers into this one, deduplicated by record id (merging twice adds nothing)."""
    from ..ledger.maintenance import merge

    path = _resolve(ledger, reading=False)
    result = merge(path, files, dry_run=dry_run)
    # One line per input file, not per bad line: a binary file is thousands of "lines".
    by_file: dict[str, list[int]] = {}
    for source, lineno in result.invalid:
        by_file.setdefault(str(source), []).append(lineno)
    for name, lines in by_file.items():
        shown = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
        _warn(f"{name}: {len(lines)} line(s) that are not valid records (line {shown}); not merged")
    verb = "would add" if dry_run else "added"
    _echo(
        f"{verb} {result.added} record(s) from {result.files} file(s);"
        f" {result.already_present} already present, {result.duplicates_in_sources} repeated in the inputs,"
        f" {len(result.invalid)} invalid line(s) skipped"
    )
    if result.conflicts:
        _warn(f"{result.conflicts} id(s) exist with different contents; kept the ledger's copy")


def prune_cmd(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            metavar="DATE",
            help="Remove runs started before DATE (YYYY-MM-DD, ISO, today, this-month, 90d, 12h, 8w, 3m).",
        ),
    ],
    ledger: LedgerOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be removed.")] = False,
) -> None:
    """Remove old records (and the records they supersede), rewriting each file atomically."""
    from ..ledger.maintenance import prune

    cutoff = parse_before(before)
    path = _resolve(ledger)
    result = prune(path, cutoff, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    extra = f" (including {result.dropped_superseded} superseded)" if result.dropped_superseded else ""
    _echo(f"{verb} {result.dropped} record(s) before {cutoff.isoformat()}{extra}; {result.kept} kept")
    if result.kept_unreadable:
        _warn(f"kept {result.kept_unreadable} unreadable line(s); run `claude-run ledger verify`")


def reset_cmd(
    ledger: LedgerOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete every record.")] = False,
) -> None:
    """Delete every record of the ledger (all segments)."""
    from ..ledger.maintenance import count_records, reset

    path = _resolve(ledger)
    if not yes:
        raise UsageError(
            f"reset deletes all {count_records(path)} record(s) in {path}; pass --yes to confirm"
        )
    result = reset(path)
    _echo(f"removed {result.records} record(s) from {path}")


def rotate_cmd(
    ledger: LedgerOption = None,
    max_bytes: Annotated[
        str | None,
        typer.Option(
            "--max-bytes",
            metavar="SIZE",
            help="Rotate past SIZE (e.g. 50M; default $CLAUDE_RUN_LEDGER_MAX_BYTES, else 50M; 0: never).",
        ),
    ] = None,
    keep_days: Annotated[
        str | None,
        typer.Option(
            "--keep-days",
            metavar="DAYS",
            help="Delete rotated segments closed more than DAYS ago (default $CLAUDE_RUN_LEDGER_KEEP_DAYS).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rotate now, whatever the size.")] = False,
) -> None:
    """Roll the live ledger to a dated segment now (appends do this on their own past the size)."""
    from ..ledger.rotation import (
        RotationPolicy,
        apply_retention_locked,
        parse_keep_days,
        parse_size,
        rotate_locked,
    )
    from ..ledger.store import locked

    path = _resolve(ledger)
    policy, problems = RotationPolicy.from_env_checked()
    if problems:  # an explicit rotation must not run on a setting it cannot read
        raise UsageError(problems[0].split("; ")[0])
    limit = parse_size(max_bytes) if max_bytes is not None else policy.max_bytes
    days = parse_keep_days(keep_days) if keep_days is not None else policy.keep_days
    with locked(path):
        size = path.stat().st_size if path.exists() else 0
        due = force or (limit > 0 and size > limit)
        target = rotate_locked(path) if due else None
        expired = apply_retention_locked(path, days) if days is not None else []
    if target is not None:
        _echo(f"rotated {path} to {target}")
    else:
        _echo(f"{path} is {size} bytes; not rotated" + ("" if limit > 0 else " (rotation disabled)"))
    for seg in expired:
        _echo(f"removed expired segment {seg}")


def register(app: typer.Typer) -> None:
    app.command("path")(path_cmd)
    app.command("verify")(verify_cmd)
    app.command("merge")(merge_cmd)
    app.command("prune")(prune_cmd)
    app.command("reset")(reset_cmd)
    app.command("rotate")(rotate_cmd)
    app.command("flush-spool")(flush_spool_cmd)
