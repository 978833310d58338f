"""`--by` dimensions: names and validation (their SQL labels are in `query.summary.dim_sql`)."""

from __future__ import annotations

from ..errors import UsageError

TIME_DIMS = ("day", "week", "month")
PLAIN_DIMS = ("model", "project", "branch", "session", "status", "mode", "ci-job")
NONE = "(none)"


def parse_group_by(values: list[str] | None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`--by` values (repeatable, comma lists); default `day`. Unknown names are a UsageError;
    `extra`: more names this report takes (`ledger summary`: agent, tool, mcp-server)."""
    out: list[str] = []
    for v in values or ["day"]:
        if not v.strip(" ,"):
            raise UsageError(
                f"bad --by {v!r}: use day, week, month, model, project, branch, session, status,"
                " mode, ci-job or tag:KEY"
            )
        for name in (p.strip() for p in v.split(",")):
            if not name:
                continue
            low = name.lower()
            if low.startswith("tag:"):
                key = name[4:]
                if not key:
                    raise UsageError("bad --by tag: expected tag:KEY")
                name = "tag:" + key
            elif low in TIME_DIMS or low in PLAIN_DIMS or low in extra:
                name = low
            elif low == "ci_job":
                name = "ci-job"
            elif low == "mcp_server" and "mcp-server" in extra:
                name = "mcp-server"
            else:
                raise UsageError(
                    f"bad --by {name!r}: use day, week, month, model, project, branch, session, status,"
                    " mode, ci-job or tag:KEY"
                )
            if name not in out:
                out.append(name)
    return tuple(out)
