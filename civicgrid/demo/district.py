"""The demo district: Qilihe District (七里河区), Lanzhou, with its real names and codes.

The district boundary, its 15 subdistricts and 141 communities/villages are real
(``data/``); no public polygons exist below the district, so the subdistricts,
communities and the 325 level-3 grids are a generated, nested Voronoi partition
laid out the way Qilihe is: the 9 街道 are the dense urban core along the
Yellow River in the north, the 5 镇 and 1 乡 share the hills of the south.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import shapely

from civicgrid.demo.partition import (
    PartitionError,
    arrangement,
    cluster_seeds,
    sample_inside,
    split,
    union,
)
from civicgrid.grids.validation import GridInput

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_SEED = 620103
DISTRICT_CODE = "620103"
DISTRICT_NAME = "七里河区"
#: Level-3 grids in the demo district (the seed district's real figure).
GRID_COUNT = 325

# Grid tree kinds (the values of civicgrid.grids.models.Kind; plain strings so
# this module loads without Django's app registry).
STREET, TOWN, TOWNSHIP = "street", "town", "township"
COMMUNITY, VILLAGE = "community", "village"

#: Where each subdistrict's seed lies (lon, lat): the streets from 秀川 by the
#: river in the west to 西园 by 雷坛河 in the east, the towns in the hills.
ANCHORS: dict[str, tuple[float, float]] = {
    "620103009": (103.6880, 36.0790),  # 秀川街道
    "620103008": (103.7160, 36.0800),  # 土门墩街道
    "620103005": (103.7400, 36.0775),  # 西站街道
    "620103004": (103.7600, 36.0770),  # 敦煌路街道
    "620103002": (103.7760, 36.0705),  # 西湖街道
    "620103003": (103.7900, 36.0620),  # 建兰路街道
    "620103001": (103.7980, 36.0480),  # 西园街道
    "620103006": (103.7780, 36.0520),  # 晏家坪街道
    "620103007": (103.7560, 36.0600),  # 龚家湾街道
    "620103102": (103.7150, 36.0400),  # 彭家坪镇
    "620103101": (103.8080, 36.0180),  # 八里镇
    "620103103": (103.7650, 35.9950),  # 西果园镇
    "620103201": (103.6600, 35.9500),  # 魏岭乡
    "620103104": (103.7500, 35.9100),  # 黄峪镇
    "620103100": (103.8650, 35.8950),  # 阿干镇
}
#: Where a town's own 社区 cluster (its seat, or the edge it shares with the city).
TOWN_SEATS: dict[str, tuple[float, float]] = {
    "620103100": (103.8600, 35.9100),  # 阿干镇: the old mining town on 阿干河
    "620103101": (103.8020, 36.0330),  # 八里镇: 八里窑, 华林路 by the city
    "620103102": (103.7300, 36.0520),  # 彭家坪镇: the plateau above 龚家湾
    "620103103": (103.7750, 36.0330),  # 西果园镇: 晏家坪, 南站
}
#: How far (metres) a town's 社区 lie from its seat.
SEAT_RADIUS_M = 1500.0
#: How many extra level-3 grids a community of each kind draws, relatively: a city
#: community has thousands of households, a village a few hundred.
GRID_WEIGHTS = {("street", COMMUNITY): 3.0, ("town", COMMUNITY): 2.0, ("town", VILLAGE): 0.5}
#: Households of a level-3 grid, by kind of community (national guidance: 300–500).
HOUSEHOLDS = {COMMUNITY: (300, 600), VILLAGE: (120, 400)}
METRES_PER_DEGREE = 111_320.0
#: Coordinates of the generated tree lie on this grid (degrees; about 0.1 mm).
SNAP_DEGREES = 1e-9


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    parent_code: str


def _code(division: Division) -> str:
    return division.code


def _read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def subdistricts() -> tuple[Division, ...]:
    """The 15 real subdistricts (街道, 镇, 乡), in code order."""
    rows = _read_csv("subdistricts.csv")
    return tuple(
        sorted((Division(r["code"], r["name"], r["district_code"]) for r in rows), key=_code)
    )


@cache
def communities() -> tuple[Division, ...]:
    """The 141 real communities and villages, in code order."""
    rows = _read_csv("communities.csv")
    return tuple(
        sorted((Division(r["code"], r["name"], r["subdistrict_code"]) for r in rows), key=_code)
    )


@cache
def district_boundary() -> shapely.Geometry:
    """The real outer boundary of 七里河区 in storage lon/lat."""
    with (DATA_DIR / "district_boundary_cgcs2000.geojson").open(encoding="utf-8") as handle:
        feature = json.load(handle)["features"][0]
    geom = shapely.geometry.shape(feature["geometry"])
    parts = shapely.get_parts(geom)
    return parts[0] if len(parts) == 1 else geom


def subdistrict_kind(code: str) -> str:
    """街道 for 001–099, 镇 for 100–199, 乡 for 200–399 (the last three digits)."""
    number = int(code[-3:])
    if number < 100:
        return STREET
    if number < 200:
        return TOWN
    return TOWNSHIP


def community_kind(code: str) -> str:
    """社区 (居委会) for 001–199, 村 (村委会) for 200–399."""
    return COMMUNITY if int(code[-3:]) < 200 else VILLAGE


def short_name(name: str) -> str:
    """下西园社区居委会 → 下西园社区, 马泉村民委员会 → 马泉村."""
    for suffix, replacement in (
        ("社区居民委员会", "社区"),
        ("社区居委会", "社区"),
        ("村民委员会", "村"),
        ("居民委员会", "社区"),
        ("居委会", "社区"),
    ):
        if name.endswith(suffix):
            return name[: -len(suffix)] + replacement
    return name


def grid_counts(seed: int = DEFAULT_SEED, total: int = GRID_COUNT) -> dict[str, int]:
    """How many level-3 grids each community gets: at least one, the city more.

    Each community has one; the rest are shared out by weight (an urban
    community draws three times a village's share, with some spread), rounded
    by largest remainder so the total is exact.
    """
    items = communities()
    if total < len(items):
        raise ValueError("fewer grids than communities")
    rng = _rng(seed, DISTRICT_CODE, 3)
    weights = np.array(
        [GRID_WEIGHTS[(_urban(c.parent_code), community_kind(c.code))] for c in items]
    ) * rng.uniform(0.6, 1.4, size=len(items))
    spare = total - len(items)
    shares = spare * weights / weights.sum()
    extra = np.floor(shares).astype(int)
    left = spare - int(extra.sum())
    extra[np.argsort(-(shares - extra), kind="stable")[:left]] += 1
    return {c.code: 1 + int(n) for c, n in zip(items, extra, strict=True)}


def _urban(subdistrict_code: str) -> str:
    return "street" if subdistrict_kind(subdistrict_code) == STREET else "town"


def _kx(geom: shapely.Geometry) -> float:
    return math.cos(math.radians(shapely.centroid(geom).y))


def _rng(seed: int, code: str, purpose: int) -> np.random.Generator:
    """An independent stream per seed, division and purpose: one division's draws
    do not shift another's."""
    return np.random.default_rng([seed, int(code), purpose])


def _subdistrict_seeds(district: shapely.Geometry, seed: int) -> np.ndarray:
    """The anchors, each moved up to about 300 m at random, kept inside."""
    rng = _rng(seed, DISTRICT_CODE, 1)
    points = []
    for item in subdistricts():
        lon, lat = ANCHORS[item.code]
        jitter = rng.uniform(-0.003, 0.003, size=2)
        point = (lon + jitter[0], lat + jitter[1])
        if not shapely.contains_xy(district, *point):
            point = (lon, lat)
        points.append(point)
    return np.array(points)


def _community_seeds(
    parent: shapely.Geometry, subdistrict: Division, members: list[Division], seed: int, kx: float
) -> np.ndarray:
    """Seeds of a subdistrict's communities, in the order of ``members``.

    A street's communities split it evenly. A town's 社区 crowd round its seat
    and its villages share the rest, so village cells come out large.
    """
    rng = _rng(seed, subdistrict.code, 2)
    urban = [m for m in members if community_kind(m.code) == COMMUNITY]
    villages = [m for m in members if community_kind(m.code) == VILLAGE]
    if subdistrict_kind(subdistrict.code) == STREET or not villages or not urban:
        return cluster_seeds(parent, len(members), rng, kx=kx)
    seat = _seat(parent, subdistrict.code)
    radius = SEAT_RADIUS_M / METRES_PER_DEGREE
    near = shapely.intersection(parent, shapely.Point(seat).buffer(radius, quad_segs=16))
    town_seeds = cluster_seeds(near, len(urban), rng, kx=kx)
    samples = sample_inside(parent, 60 * len(villages) + 300, rng)
    scaled = (samples - seat) * np.array([kx, 1.0])
    samples = samples[np.hypot(scaled[:, 0], scaled[:, 1]) > 2 * radius]
    village_seeds = cluster_seeds(parent, len(villages), rng, kx=kx, samples=samples)
    by_code = {m.code: s for m, s in zip(urban, town_seeds, strict=True)}
    by_code.update({m.code: s for m, s in zip(villages, village_seeds, strict=True)})
    return np.array([by_code[m.code] for m in members])


def _seat(parent: shapely.Geometry, code: str) -> tuple[float, float]:
    """The town's seat, or the point of the town nearest to it when it falls outside."""
    lon, lat = TOWN_SEATS.get(code, ANCHORS[code])
    inner = shapely.buffer(parent, -SEAT_RADIUS_M / METRES_PER_DEGREE / 2)
    if inner.is_empty:
        inner = parent
    if shapely.contains_xy(inner, lon, lat):
        return lon, lat
    line = shapely.shortest_line(inner, shapely.Point(lon, lat))
    x, y = shapely.get_coordinates(line)[0].tolist()
    return x, y


def generate_partition(seed: int = DEFAULT_SEED, *, sequence_digits: int = 3) -> list[GridInput]:
    """The whole demo tree in storage lon/lat: district, 15, 141 and 325 grids.

    Deterministic for a seed (any non-negative integer). Subdistricts are
    Voronoi cells of their anchors clipped to the district, communities cells
    clipped to their subdistrict, grids cells clipped to their community; then
    every polygon is rebuilt from one noded arrangement of the grids, so a
    child lies exactly inside its parent and neighbours share identical edges.
    """
    if seed < 0:
        raise ValueError("the seed must not be negative")
    boundary = district_boundary()
    kx = _kx(boundary)
    subs = list(subdistricts())
    members_of: dict[str, list[Division]] = {s.code: [] for s in subs}
    for community in communities():
        members_of[community.parent_code].append(community)
    counts = grid_counts(seed)

    # Cut top-down, keeping the leaves (level-3 grids) and what they belong to.
    leaves: list[shapely.Geometry] = []
    grid_items: list[GridInput] = []
    leaves_of: dict[str, list[int]] = {DISTRICT_CODE: []}
    sub_geoms = split(boundary, _subdistrict_seeds(boundary, seed), kx=kx)
    for sub, sub_geom in zip(subs, sub_geoms, strict=True):
        members = members_of[sub.code]
        seeds = _community_seeds(sub_geom, sub, members, seed, kx)
        leaves_of[sub.code] = []
        for community, community_geom in zip(members, split(sub_geom, seeds, kx=kx), strict=True):
            leaves_of[community.code] = []
            pieces = _grids_of(community, community_geom, counts[community.code], seed, kx)
            for n, (geom, households) in enumerate(pieces, start=1):
                code = f"{community.code}{n:0{sequence_digits}d}"
                leaves_of[code] = []
                for owner_code in (DISTRICT_CODE, sub.code, community.code, code):
                    leaves_of[owner_code].append(len(leaves))
                leaves.append(geom)
                grid_items.append(
                    GridInput(
                        code=code,
                        name=f"{short_name(community.name)}第{n}网格",
                        level=3,
                        geometry=None,
                        parent_code=community.code,
                        kind="grid",
                        households=households,
                    )
                )

    # Rebuild every polygon from the faces of one arrangement.
    faces, owner = arrangement(leaves, grid_size=SNAP_DEGREES)
    faces_of_leaf: list[list[int]] = [[] for _leaf in leaves]
    for face, leaf in enumerate(owner.tolist()):
        faces_of_leaf[leaf].append(face)

    def rebuilt(code: str) -> shapely.Geometry:
        own = [f for leaf in leaves_of[code] for f in faces_of_leaf[leaf]]
        if not own:
            raise PartitionError(f"{code} has no face left")
        return union(faces[own])

    for item in grid_items:
        item.geometry = rebuilt(item.code)

    def households_of(code: str) -> int:
        return sum(grid_items[leaf].households or 0 for leaf in leaves_of[code])

    items = [
        GridInput(
            code=DISTRICT_CODE,
            name=DISTRICT_NAME,
            level=0,
            geometry=rebuilt(DISTRICT_CODE),
            kind="district",
            households=households_of(DISTRICT_CODE),
        )
    ]
    items += [
        GridInput(
            code=sub.code,
            name=sub.name,
            level=1,
            geometry=rebuilt(sub.code),
            parent_code=DISTRICT_CODE,
            kind=subdistrict_kind(sub.code),
            households=households_of(sub.code),
        )
        for sub in subs
    ]
    items += [
        GridInput(
            code=community.code,
            name=community.name,
            level=2,
            geometry=rebuilt(community.code),
            parent_code=community.parent_code,
            kind=community_kind(community.code),
            households=households_of(community.code),
        )
        for community in communities()
    ]
    items += grid_items
    for index, item in enumerate(items):
        item.index = index
    return items


def _grids_of(
    community: Division, geom: shapely.Geometry, count: int, seed: int, kx: float
) -> list[tuple[shapely.Geometry, int]]:
    rng = _rng(seed, community.code, 4)
    low, high = HOUSEHOLDS[community_kind(community.code)]
    if count == 1:
        geoms = [geom]
    else:
        geoms = split(geom, cluster_seeds(geom, count, rng, kx=kx), kx=kx)
        # Number the grids from north-west to south-east, as a map is read.
        centres = shapely.get_coordinates(shapely.point_on_surface(geoms))
        order = np.argsort(centres[:, 0] * kx - centres[:, 1], kind="stable")
        geoms = [geoms[i] for i in order]
    return [(g, int(rng.integers(low, high + 1))) for g in geoms]
