"""Which records count: the one rule that reports, the dashboard, budgets and metrics all apply.

1. A record that a later record names in `supersedes` is replaced by it (the telemetry service
   rewrites a session's record as the session grows; so may a re-import).
2. A session counts once. An `imported` record (`ledger import`, from Claude's transcripts) does not
   count when another record of the ledger, of any other mode, has the same `session_id`: a tracked
   run or the telemetry service recorded that session already, with its context (git, CI, tags),
   and the transcript adds nothing. Which of the two came first in the ledger does not matter.

The reports' rollup (`reports.rollup`) and the dashboard's live fold apply these rules to their own
incremental structures; they use the predicates below, and `effective` is the rule on a plain list
of records, which budgets and Prometheus use and tests compare the others with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

REPLACEABLE_MODE = "imported"

R = TypeVar("R", bound=Mapping[str, Any])


def replaceable(rec: Mapping[str, Any]) -> bool:
    """A record that another record of the same session makes redundant."""
    return rec.get("mode") == REPLACEABLE_MODE


def claimed_session(rec: Mapping[str, Any]) -> str | None:
    """The session this record accounts for, so that imports of it are not counted again."""
    sid = rec.get("session_id")
    if isinstance(sid, str) and sid and not replaceable(rec):
        return sid
    return None


def named_target(rec: Mapping[str, Any]) -> str | None:
    """The id a record names in `supersedes`: a non-empty string, else none (a number or an object
    there names nothing, and such a record counts as a plain one)."""
    target = rec.get("supersedes")
    return target if type(target) is str and target else None


def supersedes(rec: Mapping[str, Any], seen: set[str] | dict[str, Any]) -> str | None:
    """The id this record replaces: one named in its `supersedes` that an earlier record has (a
    cycle keeps its last member, and a record cannot replace itself)."""
    target = named_target(rec)
    if target is not None and target != rec.get("id") and target in seen:
        return target
    return None


class Fold:
    """The rule applied to a stream: `see` every record of the ledger in order, then ask `counts`
    of any of them (callers may keep only the few they report on)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.replaced: set[str] = set()
        self.claimed: set[str] = set()

    def see(self, rec: Mapping[str, Any]) -> None:
        target = supersedes(rec, self.seen)
        if target is not None:
            self.replaced.add(target)
        rid = rec.get("id")
        if isinstance(rid, str):
            self.seen.add(rid)
        sid = claimed_session(rec)
        if sid is not None:
            self.claimed.add(sid)

    def counts(self, rec: Mapping[str, Any]) -> bool:
        if rec.get("id") in self.replaced:
            return False
        return not (replaceable(rec) and rec.get("session_id") in self.claimed)


def effective(records: Iterable[R]) -> list[R]:
    """The records that count, in ledger order."""
    rows = list(records)
    fold = Fold()
    for r in rows:
        fold.see(r)
    return [r for r in rows if fold.counts(r)]
