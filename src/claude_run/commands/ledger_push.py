"""`claude-run ledger push --otlp URL`: send records to a team's OpenTelemetry Collector (OTLP/HTTP JSON).

What was sent is remembered per endpoint in `<ledger>.push.json` (ids only), so a cron job or a CI
step can push after every run and nothing is counted twice. A record that supersedes one already
pushed (a `telemetry serve` session that grew) is sent as the difference.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import TelemetryError, UsageError

BATCH = 500
TIMEOUT_S = 30.0


def state_path(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".push.json")


def load_state(path: Path) -> dict[str, list[str]]:
    import orjson

    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise TelemetryError(
            f"cannot read push state {path}: {exc}; remove it to push everything again"
        ) from exc
    return {k: list(v) for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}


def save_state(path: Path, state: dict[str, list[str]]) -> None:
    import orjson

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(state))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise TelemetryError(f"cannot write push state {path}: {exc.strerror or exc}") from exc


def signal_url(base: str, signal: str) -> str:
    base = base.rstrip("/")
    for suffix in ("/v1/metrics", "/v1/logs"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/v1/{signal}"


def post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    import orjson

    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:300].decode("utf-8", "replace")
        raise TelemetryError(f"{url} answered {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TelemetryError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def difference(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """What `new` adds to `old` (same session, grown): token and cost differences per model."""
    out = dict(new)
    models: dict[str, dict[str, Any]] = {}
    old_models = old.get("models") if isinstance(old.get("models"), dict) else {}
    for name, usage in (new.get("models") or {}).items():
        before = old_models.get(name, {}) if isinstance(old_models, dict) else {}
        diff = {
            k: (usage.get(k) or 0) - (before.get(k) or 0)
            for k in ("input", "output", "cache_read", "cache_creation")
        }
        nc, oc = usage.get("cost_usd"), before.get("cost_usd")
        diff["cost_usd"] = (nc - (oc or 0)) if isinstance(nc, (int, float)) else None
        models[name] = diff
    out["models"] = models
    out["_update"] = True
    return out


def select(
    records: list[dict[str, Any]], counted: set[str], pushed: set[str], since: str | None
) -> list[dict[str, Any]]:
    """The counted records (`counted`: their ids, from the read engine) not pushed yet; a record
    that supersedes one already pushed goes as the difference."""
    by_id: dict[str, dict[str, Any]] = {}
    for r in records:
        by_id.setdefault(r["id"], r)  # an id's first line is the one that counts
    out = []
    for rec in by_id.values():
        if rec["id"] not in counted:
            continue
        if rec["id"] in pushed:
            continue
        if since and str(rec.get("ended_at") or "") < since:
            continue
        # Walk back the supersedes chain to the newest record already pushed.
        ancestor = rec.get("supersedes")
        seen = set()
        while (
            isinstance(ancestor, str)
            and ancestor not in pushed
            and ancestor in by_id
            and ancestor not in seen
        ):
            seen.add(ancestor)
            ancestor = by_id[ancestor].get("supersedes")
        if isinstance(ancestor, str) and ancestor in pushed and ancestor in by_id:
            out.append(difference(rec, by_id[ancestor]))
        else:
            out.append(rec)
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def push(
        otlp: Annotated[
            str, typer.Option("--otlp", metavar="URL", help="the Collector's OTLP/HTTP base URL")
        ],
        ledger: Annotated[Path | None, typer.Option("--ledger", metavar="PATH", help="ledger file")] = None,
        header: Annotated[
            list[str] | None, typer.Option("--header", metavar="KEY=VALUE", help="HTTP header (repeatable)")
        ] = None,
        since: Annotated[
            str | None,
            typer.Option(
                "--since", metavar="DATE", help="only runs ended on/after DATE (ISO, today, 7d, this-month…)"
            ),
        ] = None,
        resend: Annotated[
            bool, typer.Option("--all", help="send every record, even ones pushed before")
        ] = False,
        no_logs: Annotated[
            bool, typer.Option("--no-logs", help="metrics only, no per-run log records")
        ] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="print the OTLP JSON bodies, send nothing")
        ] = False,
    ) -> None:
        """Send runs to an OpenTelemetry Collector as OTLP metrics and logs (http/json, GenAI conventions)."""
        import orjson

        from .. import __version__
        from ..gates import check_ledger
        from ..ledger.store import iter_records
        from ..paths import ledger_path
        from ..query.timeparse import parse_instant
        from ..record.schema import user_hash
        from ..telemetry.outbound.push import logs_body, metrics_body

        if not otlp.startswith(("http://", "https://")):
            raise UsageError(f"--otlp wants an http(s) URL, got {otlp!r}")
        headers: dict[str, str] = {}
        for item in header or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--header wants KEY=VALUE, got {item!r}")
            headers[key.strip()] = value.strip()
        if since is not None:
            # The one date grammar; records' `ended_at` compare as text in this form.
            since = parse_instant(since).strftime("%Y-%m-%dT%H:%M:%S")
        path = ledger_path(ledger)
        check_ledger(path, reading=True)
        from ..query.engine import opened

        with opened(path) as eng:
            for warning in eng.warnings:
                sys.stderr.write(f"claude-run ledger push: {warning}\n")
            counted = {str(r[0]) for r in eng.con.execute("SELECT id FROM runs").fetchall()}
        records = [dict(r) for r in iter_records(path)]
        spath = state_path(path)
        state = {} if dry_run else load_state(spath)
        pushed = set() if resend else set(state.get(otlp, []))
        todo = select(records, counted, pushed, since)
        user = user_hash()
        sent = 0
        for i in range(0, len(todo), BATCH):
            batch = todo[i : i + BATCH]
            whole = [r for r in batch if not r.get("_update")]
            mbody = orjson.dumps(
                metrics_body(
                    batch,
                    version=__version__,
                    user=user,
                )
            )
            if dry_run:
                sys.stdout.write(mbody.decode() + "\n")
            else:
                reply = post(signal_url(otlp, "metrics"), mbody, headers)
                _warn_partial(reply)
            if not no_logs and whole:
                lbody = orjson.dumps(logs_body(whole, version=__version__, user=user))
                if dry_run:
                    sys.stdout.write(lbody.decode() + "\n")
                else:
                    _warn_partial(post(signal_url(otlp, "logs"), lbody, headers))
            sent += len(batch)
            if not dry_run:
                done = state.setdefault(otlp, [])
                done.extend(r["id"] for r in batch)
                save_state(spath, state)  # after each batch: a failure later never resends this one
        verb = "would send" if dry_run else "sent"
        sys.stderr.write(f"claude-run ledger push: {verb} {sent} record(s) to {otlp}\n")


def _warn_partial(reply: dict[str, Any]) -> None:
    partial = reply.get("partialSuccess")
    if isinstance(partial, dict) and (partial.get("rejectedDataPoints") or partial.get("rejectedLogRecords")):
        sys.stderr.write(f"claude-run ledger push: the Collector rejected part of a batch: {partial}\n")
