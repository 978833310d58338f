"""The cold scan's fast path: decode only the fields reports use, straight into typed structs.

`orjson.loads` builds every field of a record as Python objects (ids, hashes, commit, remote…),
which is most of a cold scan's cost. msgspec decodes into these structs in C and skips the other
fields without building them, then the rules of `units.record_dims` / `units.record_parts` run on
attributes instead of dict lookups.

The types are strict on purpose: a record whose fields do not have the usual types (a number where
a string belongs, a bool for a count, an integer past 64 bits, a non-string tag…) fails to decode
here and takes the general path, which has the lenient rules. So both paths give the same units for
every line; `tests/test_reports_fastrec.py` checks that on generated records.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson

from .cuboids import pack_lanes, pack_parts
from .units import FIX_BITS, UNKNOWN_MODEL, fixed, tag_tuple, with_residual

# orjson turns integers past 64 bits into floats, which the general path then ignores; keep those
# lines off the fast path rather than read them differently.
I64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
_NO_TAGS = msgspec.Raw(b"")


class Tokens(msgspec.Struct, gc=False):
    input: I64 = 0
    output: I64 = 0
    cache_read: I64 = 0
    cache_creation: I64 = 0


class Part(msgspec.Struct, gc=False):
    input: I64 = 0
    output: I64 = 0
    cache_read: I64 = 0
    cache_creation: I64 = 0
    cost_usd: float | I64 | None = None
    cost_source: str | None = None


class Git(msgspec.Struct, gc=False):
    branch: str | None = None


class Ci(msgspec.Struct, gc=False):
    job: str | None = None


class Rec(msgspec.Struct, gc=False):
    v: I64
    id: str
    started_at: str | None = None
    mode: str | None = None
    status: str | None = None
    # Kept raw: the same tags bytes recur across many records, so their sorted tuple is memoised.
    tags: msgspec.Raw = _NO_TAGS
    session_id: str | None = None
    model: str | None = None
    tokens: Tokens | None = None
    cost_usd: float | I64 | None = None
    cost_source: str | None = None
    models: dict[str, Part] | None = None
    project: str | None = None
    git: Git | None = None
    ci: Ci | None = None
    supersedes: str | None = None


decoder = msgspec.json.Decoder(Rec)
DecodeError = msgspec.DecodeError
_FIXF = float(1 << FIX_BITS)


def tags_of(
    key: bytes, memo: dict[bytes, tuple[tuple[str, str], ...]], dropped: frozenset[str]
) -> tuple[tuple[str, str], ...] | None:
    """The sorted tag pairs of a record's raw `tags` bytes, memoised by those bytes (the same few tag
    sets recur across many records); None for tags the general path must read (not an object, or
    values that are not strings), which are not memoised."""
    found: tuple[tuple[str, str], ...] = ()
    if key and key != b"null":
        tags = orjson.loads(key)
        if type(tags) is not dict:
            return None
        for v in tags.values():
            if type(v) is not str:
                return None
        found = tag_tuple(tags, dropped)
    memo[key] = found
    return found


def _priced(p: Part) -> int:
    """`units.is_priced` for a typed part (its cost is a number or None by construction)."""
    return 1 if p.cost_usd is not None and p.cost_source != "unpriced" else 0


def packed_parts(r: Rec) -> list[tuple[Any, int, int, int]]:
    """(model, record priced, part priced, packed values) per part: `cuboids.pack_parts(parts_of(r))`,
    with the usual record (priced, one model, its tokens) packed without the intermediate rows."""
    cost = r.cost_usd
    models = r.models
    t = r.tokens
    if cost is None or t is None or models is None or len(models) != 1 or r.cost_source == "unpriced":
        return pack_parts(parts_of(r))
    ((name, p),) = models.items()
    if isinstance(cost, float):
        try:
            c = int(cost * _FIXF)
        except OverflowError:  # a cost too large to scale: fixed() shifts it instead
            c = fixed(cost) or 0
    else:
        c = cost << FIX_BITS
    p_priced = _priced(p)
    lanes = pack_lanes(1, 1, t.input, t.output, t.cache_read, t.cache_creation, c)
    return [(name or UNKNOWN_MODEL, 1, p_priced, lanes)]


def parts_of(r: Rec) -> list[list[Any]]:
    """`units.record_parts` for a decoded struct (same rules, same order, same residual)."""
    cost = r.cost_usd
    if cost is not None and r.cost_source != "unpriced":
        rec_priced = 1
        rec_cost: int | None = fixed(cost)
    else:
        rec_priced = 0
        rec_cost = None
    t = r.tokens
    if t is not None:
        t_in, t_out, t_cr, t_cc = t.input, t.output, t.cache_read, t.cache_creation
    else:
        t_in = t_out = t_cr = t_cc = 0
    models = r.models
    if not models:
        main_model = r.model or UNKNOWN_MODEL
        return [[main_model, rec_priced, rec_priced, 1, 1, t_in, t_out, t_cr, t_cc, rec_cost or 0]]
    if len(models) == 1:
        ((name, p),) = models.items()
        p_priced = _priced(p)
        if rec_cost is None:
            rec_cost = (fixed(p.cost_usd) if p_priced else 0) or 0
        return [[name or UNKNOWN_MODEL, rec_priced, p_priced, 1, 1, t_in, t_out, t_cr, t_cc, rec_cost]]
    out: list[list[Any]] = []
    for name, p in models.items():
        p_priced = _priced(p)
        p_cost = (fixed(p.cost_usd) if p_priced else 0) or 0
        out.append(
            [
                name or UNKNOWN_MODEL,
                rec_priced,
                p_priced,
                0,
                1,
                p.input,
                p.output,
                p.cache_read,
                p.cache_creation,
                p_cost,
            ]
        )
    return with_residual(out, r.model or UNKNOWN_MODEL, t_in, t_out, t_cr, t_cc, rec_cost)
