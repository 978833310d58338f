"""`claude-run telemetry serve`: the OTLP receiver as a long-running local service.

For Claude Code sessions started outside claude-run (an IDE, a plain `claude`): point their OTLP
exporter here and each session becomes a ledger record (mode `telemetry`). See docs/telemetry.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Claude Code's OpenTelemetry, received locally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep `serve` a subcommand even while it is the only one."""


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port)")] = 4318,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    ledger: Annotated[
        Path | None, typer.Option("--ledger", metavar="PATH", help="ledger file (else the default)")
    ] = None,
    idle: Annotated[
        float,
        typer.Option(
            "--idle", min=0.1, metavar="SECONDS", help="write a session's record after this idle time"
        ),
    ] = 120.0,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="KEY=VALUE", help="stored on every record (repeatable)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-record log lines")] = False,
) -> None:
    """Receive OTLP/HTTP JSON from Claude Code sessions and record each session in the ledger."""
    import anyio

    from ..context.tags import parse_tags
    from ..errors import TelemetryError
    from ..gates import check_ledger
    from ..httpd import bind, endpoint_of
    from ..paths import ledger_path

    tags = parse_tags(tag or [])
    path = ledger_path(ledger)
    check_ledger(path, reading=False)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise TelemetryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    endpoint = endpoint_of(sock)
    sys.stderr.write(
        f"claude-run telemetry: receiving OTLP/HTTP JSON on {endpoint}, recording into {path}\n"
        "  point Claude Code at it:\n"
        "  export CLAUDE_CODE_ENABLE_TELEMETRY=1 OTEL_METRICS_EXPORTER=otlp OTEL_LOGS_EXPORTER=otlp \\\n"
        f"         OTEL_EXPORTER_OTLP_PROTOCOL=http/json OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}\n"
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        sys.stderr.write(
            "claude-run telemetry: warning: listening beyond loopback; there is no authentication\n"
        )
    sys.stderr.flush()
    from ..record.schema import new_id
    from ..telemetry.inbound.sessions import SessionBook

    book = SessionBook(idle_s=idle)
    try:
        anyio.run(_serve, sock, path, book, tags, quiet)
    except KeyboardInterrupt:  # where there are no signal receivers (Windows): Ctrl-C lands here
        records = book.take_records(book.due(0.0, all_dirty=True), new_id, tags)
        if records:
            _append(path, records)
    if not quiet:
        sys.stderr.write("claude-run telemetry: stopped\n")


async def _serve(sock: Any, path: Path, book: Any, tags: dict[str, str], quiet: bool) -> None:
    import os
    import signal

    import anyio

    from ..record.schema import new_id
    from ..telemetry.inbound.receiver import Receiver
    from ..text import fmt_usd, plural, terminal

    idle = book.idle_s

    def sink(kind: str, data: Any) -> None:
        book.feed(kind, data, anyio.current_time())

    async def flush(all_dirty: bool) -> None:
        sids = book.due(anyio.current_time(), all_dirty=all_dirty)
        if not sids:
            return
        records = book.take_records(sids, new_id, tags)
        await anyio.to_thread.run_sync(_append, path, records)
        if not quiet:
            for rec in records:
                replaced = f" (supersedes {rec['supersedes']})" if rec.get("supersedes") else ""
                requests = plural(rec["telemetry"]["requests"]["count"], "request")
                session = terminal(str(rec["session_id"]))
                sys.stderr.write(
                    f"claude-run telemetry: recorded session {session} as {rec['id']}"
                    f" · {requests} · {fmt_usd(rec['cost_usd'])}{replaced}\n"
                )

    async def ticker() -> None:
        while True:
            await anyio.sleep(min(1.0, idle / 2))
            try:
                await flush(False)
            except Exception as exc:  # a ledger problem must not stop the service; retried next tick
                sys.stderr.write(f"claude-run telemetry: cannot record yet: {exc}\n")

    receiver = Receiver(sink, quiet=quiet)
    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver.serve, sock)
        tg.start_soon(ticker)
        if os.name != "posix":  # pragma: no cover - no signal receivers; Ctrl-C raises KeyboardInterrupt
            await anyio.sleep_forever()
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        tg.cancel_scope.cancel()
    with anyio.CancelScope(shield=True):
        await flush(True)


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    from ..errors import LedgerError
    from ..ledger.store import append_lines, encode

    try:
        append_lines(path, [encode(r) for r in records])
    except LedgerError as exc:
        # The sessions were taken from the book: kept in the spool, they are not lost.
        from ..ledger.spool import spool

        where = spool(path, records, exc.message)
        sys.stderr.write(
            f"claude-run telemetry: {exc.message}; {len(records)} record(s) wait in {where}"
            " (delivered by the next append that succeeds, or `claude-run ledger flush-spool`)\n"
        )
