"""`claude-run metrics`: the ledger as Prometheus metrics (stdout, a node_exporter textfile, or /metrics).

Unlike the other groups this app has no `no_args_is_help`: `claude-run metrics` alone prints the
exposition, the common case for a cron job or a quick look.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from ..errors import LedgerError, UsageError

app = typer.Typer(
    help="The ledger as Prometheus metrics: counters of tokens, cost and runs.",
    pretty_exceptions_enable=False,
    add_completion=False,
)

LedgerOpt = Annotated[
    Path | None, typer.Option("--ledger", metavar="PATH", help="ledger file (else the default)")
]


def render(ledger: Path, tag_labels: list[str], top: int) -> str:
    from ..query.engine import opened
    from ..telemetry.outbound.prometheus import exposition

    with opened(ledger) as eng:
        for warning in eng.warnings:
            sys.stderr.write(f"claude-run metrics: {warning}\n")
        return exposition(eng, tag_labels=tag_labels, top_projects=top, top_models=top, top_tag_values=top)


def cached(make: Callable[[], str], ledger: Path) -> Callable[[], str]:
    """Re-read the ledger only when one of its files changed (size, mtime): scrapes come every few seconds."""
    from ..ledger.store import segments

    memo: dict[str, object] = {}

    def stamp() -> tuple[tuple[str, int, int], ...]:
        out = []
        for seg in segments(ledger):
            try:
                st = seg.stat()
            except OSError:
                continue
            out.append((str(seg), st.st_size, st.st_mtime_ns))
        return tuple(out)

    def get() -> str:
        key = stamp()
        if memo.get("key") != key:
            memo["text"] = make()
            memo["key"] = key
        return str(memo["text"])

    return get


def write_textfile(path: Path, text: str) -> None:
    """Write atomically (temp file in the same directory, then rename): a scrape never sees half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise LedgerError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user; the figures are not secret
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise LedgerError(f"cannot write {path}: {exc.strerror or exc}") from exc


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", addr
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"--serve wants HOST:PORT or PORT, got {addr!r}") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"--serve port out of range: {number}")
    return host, number


@app.command()
def metrics(
    ledger: LedgerOpt = None,
    textfile: Annotated[
        Path | None, typer.Option("--textfile", metavar="PATH", help="write atomically for node_exporter")
    ] = None,
    serve: Annotated[
        str | None, typer.Option("--serve", metavar="ADDR", help="serve /metrics on HOST:PORT (Ctrl-C stops)")
    ] = None,
    tag_label: Annotated[
        list[str] | None,
        typer.Option("--tag-label", metavar="KEY", help="expose tag KEY as label tag_KEY (repeatable)"),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="values kept per label (by cost); the rest become 'other'")
    ] = 10,
) -> None:
    """Print the ledger as Prometheus exposition text (or write it, or serve it)."""
    from ..gates import check_ledger
    from ..paths import ledger_path

    path = ledger_path(ledger)
    # A server may start before the first run; a one-shot read of a missing ledger is a mistake.
    check_ledger(path, reading=not serve)
    tags = list(tag_label or [])
    if serve:
        from ..telemetry.outbound.metrics_server import serve_metrics

        host, port = parse_addr(serve)
        serve_metrics(host, port, cached(lambda: render(path, tags, top), path))
        return
    text = render(path, tags, top)
    if textfile is not None:
        write_textfile(textfile, text)
    else:
        sys.stdout.write(text)
