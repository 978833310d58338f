"""Rollup cuboids: per (dimension, local day, model, priced flags, value) sums of unit values.

One cuboid per report dimension (none, project, branch, status, mode, ci-job, and tag:KEY for each
tag key), each also split by model, so any single `--by` dimension (with time and model), or one
filter on such a dimension, is answered from one small cuboid. The six token counters of a unit
travel as one packed integer (64-bit lanes, added with a single `+`): the cold build pays one dict
update per cuboid per unit, not seven.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .units import BRANCH, CI_JOB, MODE, PROJECT, STATUS, TAGS, Row

LANE = 64
LANES = 6  # runs, parts, input, output, cache_read, cache_creation
_MASK = (1 << LANE) - 1
_HALF = 1 << (LANE - 1)
PLAIN = {"project": PROJECT, "branch": BRANCH, "status": STATUS, "mode": MODE, "ci-job": CI_JOB}
NONE_CUBE = ""

CubeKey = tuple[Any, ...]  # (cuboid name, day, model, value, record priced, part priced)


def pack(unit: Row) -> int:
    return (
        unit[10]
        + (unit[11] << 64)
        + (unit[12] << 128)
        + (unit[13] << 192)
        + (unit[14] << 256)
        + (unit[15] << 320)
    )


def unpack(value: int) -> list[int]:
    """Lanes back out; each lane is read as signed (a residual can make a sum dip below zero)."""
    out = []
    for _ in range(LANES):
        lane = value & _MASK
        if lane >= _HALF:
            lane -= 1 << LANE
        out.append(lane)
        value = (value - lane) >> LANE
    return out


def add_unit(cubes: dict[CubeKey, list[Any]], unit: Row, dropped: frozenset[str] | set[str], sign: int = 1) -> None:
    """Add (or with sign=-1 remove) one unit in every cuboid."""
    packed = pack(unit) * sign
    cost = unit[16] if sign == 1 else -unit[16]
    if type(cost) is not Decimal:
        cost = Decimal(cost)
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
        acc = cubes.get(key)
        if acc is None:
            cubes[key] = [packed, cost]
        else:
            acc[0] += packed
            acc[1] += cost


def merge(into: dict[CubeKey, list[Any]], other: dict[CubeKey, list[Any]]) -> None:
    for key, (packed, cost) in other.items():
        acc = into.get(key)
        if acc is None:
            into[key] = [packed, cost]
        else:
            acc[0] += packed
            acc[1] += cost


def to_rows(cubes: dict[CubeKey, list[Any]]) -> dict[str, list[list[Any]]]:
    """Per cuboid: JSON-ready rows [day, model, value, rec priced, part priced, 6 lanes…, cost text]."""
    out: dict[str, list[list[Any]]] = {}
    for (name, day, model, value, prec, ppart), (packed, cost) in cubes.items():
        lanes = unpack(packed)
        if not any(lanes) and not cost:
            continue
        out.setdefault(name, []).append([day, model, value, prec, ppart, *lanes, str(cost)])
    return out


def from_rows(name: str, rows: list[list[Any]], into: dict[CubeKey, list[Any]]) -> None:
    for day, model, value, prec, ppart, *rest in rows:
        unit = [0] * 10 + rest[:6] + [0]
        into[(name, day, model, value, prec, ppart)] = [pack(unit), Decimal(rest[6])]


def as_units(name: str, rows: list[list[Any]]) -> list[Row]:
    """Cuboid rows as unit rows (17 fields) with the cuboid's dimension in its place, for `query.Acc`."""
    out: list[Row] = []
    tag = name[4:] if name.startswith("tag:") else None
    index = PLAIN.get(name)
    for day, model, value, prec, ppart, r, p, i, o, cr, cc, cost in rows:
        unit: Row = [day, model, None, None, None, None, None, (), prec, ppart, r, p, i, o, cr, cc, cost]
        if index is not None:
            unit[index] = value
        elif tag is not None:
            unit[TAGS] = ((tag, value),) if value is not None else ()
        out.append(unit)
    return out
