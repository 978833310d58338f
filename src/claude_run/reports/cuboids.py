"""Rollup cuboids: per (dimension, local day, model, priced flags, value) sums of unit values.

One cuboid per report dimension (none, project, branch, status, mode, ci-job, and tag:KEY for each
tag key), each also split by model, so any single `--by` dimension (with time and model), or one
filter on such a dimension, is answered from one small cuboid. The six token counters of a unit
travel as one packed integer (64-bit lanes, added with a single `+`): the cold build pays one dict
update per cuboid per unit, not seven.
"""

from __future__ import annotations

from typing import Any

from .units import BRANCH, CI_JOB, MODE, PROJECT, STATUS, TAGS, Row

LANE = 64
LANES = 6  # runs, parts, input, output, cache_read, cache_creation; the cost (fixed point) above them
_MASK = (1 << LANE) - 1
_HALF = 1 << (LANE - 1)
PLAIN = {"project": PROJECT, "branch": BRANCH, "status": STATUS, "mode": MODE, "ci-job": CI_JOB}
NONE_CUBE = ""

CubeKey = tuple[Any, ...]  # (cuboid name, day, model, value, record priced, part priced)


def pack_lanes(runs: int, parts: int, i: int, o: int, cr: int, cc: int, cost: int) -> int:
    """The one lane layout: six 64-bit counters, the fixed-point cost above them (see `unpack`)."""
    return runs + (parts << 64) + (i << 128) + (o << 192) + (cr << 256) + (cc << 320) + (cost << 384)


def pack(unit: Row) -> int:
    return int(pack_lanes(*unit[10:17]))


def pack_values(v: list[Any]) -> int:
    """pack() for [runs, parts, input, output, cache_read, cache_creation, cost]."""
    return pack_lanes(*[int(x) for x in v])


def pack_parts(parts: list[list[Any]]) -> list[tuple[Any, int, int, int]]:
    """`units.record_parts` rows as (model, record priced, part priced, packed values)."""
    return [(m, rp, pp, pack_lanes(*values)) for m, rp, pp, *values in parts]


def unpack(value: int) -> list[int]:
    """The six counters (each read as signed: a residual can dip below zero) and the cost."""
    out = []
    for _ in range(LANES):
        lane = value & _MASK
        if lane >= _HALF:
            lane -= 1 << LANE
        out.append(lane)
        value = (value - lane) >> LANE
    out.append(value)
    return out


CUBE_NAMES = (NONE_CUBE, "project", "branch", "status", "mode", "ci-job")


def add_unit(cubes: dict[CubeKey, int], unit: Row, dropped: frozenset[str] | set[str], sign: int = 1) -> None:
    """Add (or with sign=-1 remove) one unit in every cuboid."""
    packed = pack(unit) * sign
    day, model, prec, ppart = unit[0], unit[1], unit[8], unit[9]
    keys = [
        (NONE_CUBE, day, model, None, prec, ppart),
        ("project", day, model, unit[PROJECT], prec, ppart),
        ("branch", day, model, unit[BRANCH], prec, ppart),
        ("status", day, model, unit[STATUS], prec, ppart),
        ("mode", day, model, unit[MODE], prec, ppart),
        ("ci-job", day, model, unit[CI_JOB], prec, ppart),
    ]
    for k, v in unit[TAGS]:
        if k not in dropped:
            keys.append(("tag:" + k, day, model, v, prec, ppart))
    for key in keys:
        cubes[key] = cubes.get(key, 0) + packed


def merge(into: dict[CubeKey, int], other: dict[CubeKey, int]) -> None:
    get = into.get
    for key, packed in other.items():
        into[key] = get(key, 0) + packed


def to_rows(cubes: dict[CubeKey, int]) -> dict[str, list[list[Any]]]:
    """Per cuboid: JSON-ready rows [day, model, value, rec priced, part priced, 6 counters, cost text]
    (the cost as text: it is a fixed-point integer wider than JSON parsers accept)."""
    out: dict[str, list[list[Any]]] = {}
    for (name, day, model, value, prec, ppart), packed in cubes.items():
        if not packed:
            continue
        lanes = unpack(packed)
        out.setdefault(name, []).append([day, model, value, prec, ppart, *lanes[:6], str(lanes[6])])
    return out


def from_rows(name: str, rows: list[list[Any]], into: dict[CubeKey, int], add: bool = False) -> None:
    for day, model, value, prec, ppart, *rest in rows:
        key = (name, day, model, value, prec, ppart)
        packed = pack_values([*rest[:6], int(rest[6])])
        into[key] = into.get(key, 0) + packed if add else packed


def as_units(name: str, rows: list[list[Any]]) -> list[Row]:
    """Cuboid rows as unit rows (17 fields) with the cuboid's dimension in its place, for `query.Acc`."""
    out: list[Row] = []
    tag = name[4:] if name.startswith("tag:") else None
    index = PLAIN.get(name)
    for day, model, value, prec, ppart, r, p, i, o, cr, cc, cost in rows:
        unit: Row = [day, model, None, None, None, None, None, (), prec, ppart, r, p, i, o, cr, cc, int(cost)]
        if index is not None:
            unit[index] = value
        elif tag is not None:
            unit[TAGS] = ((tag, value),) if value is not None else ()
        out.append(unit)
    return out
