"""Which records (and which of their model parts) a report counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from ..errors import UsageError
from .timeparse import Bound, parse_bound


@dataclass(frozen=True)
class Filters:
    """Selection shared by every report command and by the dashboard.

    - `since`/`until`: `Bound`s (a local day or an instant); `until` is exclusive.
    - `projects`, `statuses`: any of (empty = all).
    - `model`: a case-insensitive substring of the model name (`opus` matches every Opus). With a model
      filter, tokens and cost are those of the matching model parts, and runs count records using it.
    - `tags`: `(key, value)` pairs; every key given must match, one of its values is enough.
    """

    since: Bound | None = None
    until: Bound | None = None
    projects: tuple[str, ...] = ()
    model: str | None = None
    statuses: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def tag_keys(self) -> set[str]:
        return {k for k, _ in self.tags}

    def tag_map(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for k, v in self.tags:
            out.setdefault(k, set()).add(v)
        return {k: frozenset(v) for k, v in out.items()}


def build_filters(
    tz: tzinfo,
    *,
    since: str | None = None,
    until: str | None = None,
    projects: list[str] | None = None,
    model: str | None = None,
    statuses: list[str] | None = None,
    tags: list[str] | None = None,
) -> Filters:
    """Filters from command-line strings (comma lists allowed); bad values are UsageErrors."""
    from ..context.tags import parse_tags

    def split(values: list[str] | None) -> tuple[str, ...]:
        out: list[str] = []
        for v in values or ():
            out += [p.strip() for p in v.split(",") if p.strip()]
        return tuple(out)

    from ..gates import choice
    from ..record.schema import STATUSES

    for status in split(statuses):
        choice(status, STATUSES, "--status")
    tag_pairs: list[tuple[str, str]] = []
    for item in tags or ():
        tag_pairs += list(parse_tags([item]).items())
    f = Filters(
        since=parse_bound(since, tz, end=False) if since else None,
        until=parse_bound(until, tz, end=True) if until else None,
        projects=split(projects),
        model=model.strip().lower() if model and model.strip() else None,
        statuses=split(statuses),
        tags=tuple(tag_pairs),
    )
    if f.since and f.until and f.since.ts(tz) >= f.until.ts(tz):
        raise UsageError("--since must be before --until")
    return f


__all__ = ["Bound", "Filters", "build_filters"]
