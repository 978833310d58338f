"""`--by` dimensions: names, validation, and the key of a unit row for each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from ..errors import UsageError
from .units import BRANCH, CI_JOB, DAY, MODE, MODEL, PROJECT, SESSION, STATUS, TAGS

TIME_DIMS = ("day", "week", "month")
PLAIN_DIMS = ("model", "project", "branch", "session", "status", "mode", "ci-job")
NONE = "(none)"


def parse_group_by(values: list[str] | None) -> tuple[str, ...]:
    """`--by` values (repeatable, comma lists); default `day`. Unknown names are a UsageError."""
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
            elif low in TIME_DIMS or low in PLAIN_DIMS:
                name = low
            elif low == "ci_job":
                name = "ci-job"
            else:
                raise UsageError(
                    f"bad --by {name!r}: use day, week, month, model, project, branch, session, status,"
                    " mode, ci-job or tag:KEY"
                )
            if name not in out:
                out.append(name)
    return tuple(out)


def key_function(dim: str) -> Callable[[list[Any]], str]:
    """Unit row → the group label for one dimension (labels are strings; time labels sort)."""
    if dim in TIME_DIMS:
        cache: dict[int, str] = {}

        def time_key(row: list[Any]) -> str:
            d = row[DAY]
            label = cache.get(d)
            if label is None:
                day = date.fromordinal(d)
                if dim == "week":
                    label = (day - timedelta(days=day.weekday())).isoformat()
                elif dim == "month":
                    label = day.isoformat()[:7]
                else:
                    label = day.isoformat()
                cache[d] = label
            return label

        return time_key
    if dim.startswith("tag:"):
        tag = dim[4:]

        def tag_key(row: list[Any]) -> str:
            for k, v in row[TAGS]:
                if k == tag:
                    return str(v)
            return NONE

        return tag_key
    index = {
        "model": MODEL,
        "project": PROJECT,
        "branch": BRANCH,
        "status": STATUS,
        "mode": MODE,
        "ci-job": CI_JOB,
        "session": SESSION,
    }[dim]

    def plain_key(row: list[Any]) -> str:
        v = row[index]
        return NONE if v is None else str(v)

    return plain_key
