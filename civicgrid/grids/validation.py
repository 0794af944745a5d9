"""Checks a batch of grids must pass before any of it is written.

Every problem is collected, not just the first, each naming the feature (its
index in the input and its code) and saying what is wrong and where, so that a
file can be fixed in one go.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import shapely
from django.conf import settings
from django.utils.translation import gettext as _

from civicgrid.grids import crs
from civicgrid.grids.models import Grid, Kind, Level

CODE_RE = re.compile(r"^[0-9A-Za-z_-]{2,32}$")

#: The kinds a grid of each level may have.
KINDS_OF_LEVEL: dict[Level, tuple[str, ...]] = {
    Level.DISTRICT: (Kind.DISTRICT,),
    Level.SUBDISTRICT: (Kind.STREET, Kind.TOWN, Kind.TOWNSHIP),
    Level.COMMUNITY: (Kind.COMMUNITY, Kind.VILLAGE),
    Level.GRID: (Kind.GRID,),
}


@dataclass
class GridInput:
    """One grid to create or update, its geometry already in storage lon/lat."""

    code: str
    name: str
    level: int
    geometry: shapely.Geometry | None
    parent_code: str | None = None
    kind: str | None = None
    households: int | None = None
    #: Position in the input (feature index), for messages.
    index: int | None = None


@dataclass
class Problem:
    index: int | None
    code: str
    message: str

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(_("第 %(n)d 个要素") % {"n": self.index})
        if self.code:
            where.append(_("编码 %(code)s") % {"code": self.code})
        prefix = "，".join(where)
        return f"{prefix}：{self.message}" if prefix else self.message


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)

    def add(self, item: GridInput | None, message: str) -> None:
        self.problems.append(
            Problem(item.index if item else None, item.code if item else "", message)
        )

    @property
    def ok(self) -> bool:
        return not self.problems


def _tolerances() -> dict[str, float]:
    return dict(settings.CIVICGRID_GRID_TOLERANCES)


_REASON_RE = re.compile(
    r"^(?P<kind>[A-Za-z][A-Za-z -]*?)\s*(?:\[\s*(?P<x>[-+0-9.eE]+)\s+(?P<y>[-+0-9.eE]+)[^\]]*\])?\s*$"
)


def _reason(geom: shapely.Geometry) -> str:
    """A readable reason why ``geom`` is invalid, with the place it happens."""
    raw = shapely.is_valid_reason(geom)
    # GEOS says e.g. "Self-intersection[103.85 36.05]" or "Too few points[1 2]".
    match = _REASON_RE.match(raw)
    kind = match.group("kind").strip() if match else raw
    where = ""
    if match and match.group("x") and match.group("y"):
        where = _("（位置 %(lon)s, %(lat)s）") % {"lon": match.group("x"), "lat": match.group("y")}
    names = {
        "Self-intersection": _("边界自相交"),
        "Ring Self-intersection": _("边界环自相交"),
        "Too few points": _("边界点数太少"),
        "Too few points in geometry component": _("边界点数太少"),
        "Invalid Coordinate": _("坐标无效"),
        "Hole lies outside shell": _("内环位于外环之外"),
        "Nested shells": _("外环嵌套"),
        "Interior is disconnected": _("内部不连通"),
        "Nested holes": _("内环嵌套"),
        "Duplicate Rings": _("重复的环"),
        "Ring is not closed": _("环未闭合"),
    }
    return names.get(kind, kind) + where


def check_geometry(item: GridInput, report: ValidationReport) -> bool:
    """Type, emptiness, range and validity of one polygon. True when usable."""
    geom = item.geometry
    if geom is None:
        report.add(item, _("缺少边界"))
        return False
    if shapely.get_type_id(geom) not in (3, 6):  # Polygon, MultiPolygon
        report.add(
            item, _("边界必须是面（Polygon 或 MultiPolygon），实为 %(t)s") % {"t": geom.geom_type}
        )
        return False
    if geom.is_empty:
        report.add(item, _("边界为空"))
        return False
    tol = _tolerances()
    coords = shapely.get_coordinates(geom)
    bad = (
        (coords[:, 0] < tol["lon_min"])
        | (coords[:, 0] > tol["lon_max"])
        | (coords[:, 1] < tol["lat_min"])
        | (coords[:, 1] > tol["lat_max"])
    )
    if bad.any():
        lon, lat = coords[bad.argmax()]
        report.add(
            item,
            _(
                "坐标 (%(lon).6f, %(lat).6f) 超出允许范围：经度 %(lon0)s～%(lon1)s，纬度 %(lat0)s～%(lat1)s；"
                "请确认坐标系和经纬度顺序"
            )
            % {
                "lon": lon,
                "lat": lat,
                "lon0": tol["lon_min"],
                "lon1": tol["lon_max"],
                "lat0": tol["lat_min"],
                "lat1": tol["lat_max"],
            },
        )
        return False
    if not shapely.is_valid(geom):
        report.add(item, _("边界无效：%(reason)s") % {"reason": _reason(geom)})
        return False
    return True


def validate(items: Sequence[GridInput], *, replace_existing: bool = False) -> ValidationReport:
    """Validate a batch against itself and against the grids already stored.

    With ``replace_existing`` an item whose code is stored updates that grid;
    otherwise a stored code is a duplicate.
    """
    report = ValidationReport()
    tol = _tolerances()
    by_code: dict[str, GridInput] = {}
    codes = [item.code for item in items]
    stored = {g.code: g for g in Grid.objects.filter(code__in=codes)}

    usable: list[GridInput] = []
    for item in items:
        ok = True
        if not item.code or not CODE_RE.match(item.code):
            report.add(
                item,
                _("编码“%(code)s”无效：须为 2～32 位字母、数字、下划线或连字符")
                % {"code": item.code},
            )
            ok = False
        elif item.code in by_code:
            other = by_code[item.code]
            report.add(item, _("编码重复：与第 %(n)s 个要素相同") % {"n": other.index})
            ok = False
        elif item.code in stored and not replace_existing:
            report.add(
                item,
                _("编码重复：系统中已有网格“%(name)s”使用此编码")
                % {"name": stored[item.code].name},
            )
            ok = False
        else:
            by_code[item.code] = item
        if not item.name or not item.name.strip():
            report.add(item, _("缺少名称"))
            ok = False
        if item.level not in Level.values:
            report.add(item, _("层级 %(level)s 无效：须为 0～3") % {"level": item.level})
            ok = False
        elif item.kind and item.kind not in KINDS_OF_LEVEL[Level(item.level)]:
            report.add(
                item,
                _("类型“%(kind)s”无效：%(level)s 的类型可为 %(allowed)s")
                % {
                    "kind": item.kind,
                    "level": Level(item.level).label,
                    "allowed": "、".join(
                        f"{k}（{Kind(k).label}）" for k in KINDS_OF_LEVEL[Level(item.level)]
                    ),
                },
            )
            ok = False
        if not check_geometry(item, report):
            ok = False
        if ok:
            usable.append(item)

    usable_by_code = {item.code: item for item in usable}
    stored_ids = {code: grid.pk for code, grid in stored.items()}
    parents = _resolve_parents(usable, usable_by_code, set(codes), stored_ids, report)
    _check_within_parents(usable, parents, report, tol["outside_parent_m2"])
    _check_sibling_overlaps(usable, parents, report, tol["sibling_overlap_m2"])
    if replace_existing:
        _check_stored_children(usable, set(codes), stored, report, tol["outside_parent_m2"])
    return report


@dataclass
class _ParentRef:
    code: str
    level: int
    geometry: shapely.Geometry
    grid_id: int | None  # stored parent, when it is


def _resolve_parents(
    items: Iterable[GridInput],
    by_code: dict[str, GridInput],
    batch_codes: set[str],
    stored_ids: dict[str, int],
    report: ValidationReport,
) -> dict[str, _ParentRef | None]:
    """Each usable item's parent, from the batch (``by_code``: its usable items) or stored.

    A parent that is in the batch but unusable has its own problems reported; its
    children are not checked against it, nor reported as orphans.
    """
    wanted = {i.parent_code for i in items if i.parent_code and i.parent_code not in by_code}
    stored = {g.code: g for g in Grid.objects.filter(code__in=wanted)}
    parents: dict[str, _ParentRef | None] = {}
    for item in items:
        if item.level == Level.DISTRICT:
            if item.parent_code:
                report.add(item, _("区县是网格树的根，不能有上级"))
            parents[item.code] = None
            continue
        if not item.parent_code:
            report.add(
                item,
                _("缺少上级编码：%(level)s 必须属于一个上级") % {"level": Level(item.level).label},
            )
            parents[item.code] = None
            continue
        ref: _ParentRef | None = None
        if item.parent_code in by_code:
            p = by_code[item.parent_code]
            # A stored grid the batch replaces keeps its id: its stored children
            # that the batch leaves alone are still this item's siblings.
            ref = _ParentRef(p.code, p.level, p.geometry, stored_ids.get(p.code))
        elif item.parent_code in batch_codes and item.parent_code not in stored:
            parents[item.code] = None
            continue
        elif item.parent_code in stored:
            g = stored[item.parent_code]
            ref = _ParentRef(g.code, g.level, g.geometry, g.pk)
        if ref is None:
            report.add(item, _("上级编码 %(code)s 不存在") % {"code": item.parent_code})
        elif ref.level != item.level - 1:
            report.add(
                item,
                _("层级不符：%(level)s 的上级应为%(want)s，而 %(code)s 是%(got)s")
                % {
                    "level": Level(item.level).label,
                    "want": Level(item.level - 1).label,
                    "code": ref.code,
                    "got": Level(ref.level).label,
                },
            )
            ref = None
        parents[item.code] = ref
    return parents


def _check_within_parents(
    items: Iterable[GridInput],
    parents: dict[str, _ParentRef | None],
    report: ValidationReport,
    tolerance_m2: float,
) -> None:
    for item in items:
        ref = parents.get(item.code)
        if ref is None or item.geometry is None:
            continue
        outside = shapely.difference(item.geometry, ref.geometry)
        if outside.is_empty or outside.area == 0:
            continue
        area = crs.area_m2(outside)
        if area > tolerance_m2:
            point = shapely.point_on_surface(outside)
            report.add(
                item,
                _(
                    "超出上级 %(parent)s 的范围 %(area).1f 平方米（如 %(lon).6f, %(lat).6f 附近），允许 %(tol)s 平方米"
                )
                % {
                    "parent": ref.code,
                    "area": area,
                    "lon": point.x,
                    "lat": point.y,
                    "tol": tolerance_m2,
                },
            )


def _check_sibling_overlaps(
    items: list[GridInput],
    parents: dict[str, _ParentRef | None],
    report: ValidationReport,
    tolerance_m2: float,
) -> None:
    """Siblings (same parent) must not overlap, new ones nor new against stored."""
    groups: dict[str, list[tuple[str, shapely.Geometry, GridInput | None]]] = defaultdict(list)
    new_codes = {i.code for i in items}
    for item in items:
        ref = parents.get(item.code)
        key = ref.code if ref else (f"<root>{item.level}" if item.level == Level.DISTRICT else "")
        if not key:
            continue
        groups[key].append((item.code, item.geometry, item))
    # Stored siblings under stored parents that this batch does not replace.
    stored_parent_ids = {
        ref.grid_id for ref in parents.values() if ref is not None and ref.grid_id is not None
    }
    if stored_parent_ids:
        for grid in Grid.objects.filter(parent_id__in=stored_parent_ids).select_related("parent"):
            if grid.code in new_codes or grid.parent is None:
                continue
            groups[grid.parent.code].append((grid.code, grid.geometry, None))

    for members in groups.values():
        if len(members) < 2:
            continue
        geoms = [m[1] for m in members]
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            if a >= b:
                continue
            code_a, geom_a, item_a = members[a]
            code_b, geom_b, item_b = members[b]
            if item_a is None and item_b is None:
                continue
            overlap = shapely.intersection(geom_a, geom_b)
            if overlap.area == 0:
                continue
            area = crs.area_m2(overlap)
            if area <= tolerance_m2:
                continue
            point = shapely.point_on_surface(overlap)
            target = item_a if item_a is not None else item_b
            other = code_b if target is item_a else code_a
            report.add(
                target,
                _(
                    "与同级网格 %(other)s 重叠 %(area).1f 平方米（如 %(lon).6f, %(lat).6f 附近），允许 %(tol)s 平方米"
                )
                % {
                    "other": other,
                    "area": area,
                    "lon": point.x,
                    "lat": point.y,
                    "tol": tolerance_m2,
                },
            )


def _check_stored_children(
    items: Iterable[GridInput],
    batch_codes: set[str],
    stored: dict[str, Grid],
    report: ValidationReport,
    tolerance_m2: float,
) -> None:
    """A replaced grid must still hold the stored children the batch leaves alone.

    Its level cannot change under them, and its new polygon must contain them.
    """
    replaced = {item.code: item for item in items if item.code in stored}
    if not replaced:
        return
    parent_ids = {stored[code].pk: code for code in replaced}
    children = (
        Grid.objects.filter(parent_id__in=parent_ids).exclude(code__in=batch_codes).order_by("code")
    )
    relevelled: set[str] = set()
    for child in children:
        item = replaced[parent_ids[child.parent_id]]  # type: ignore[index]
        assert item.geometry is not None  # usable
        if item.level != stored[item.code].level:
            if item.code not in relevelled:
                relevelled.add(item.code)
                report.add(
                    item,
                    _("有下级网格（如 %(child)s）时不能改变层级") % {"child": child.code},
                )
            continue
        outside = shapely.difference(child.geometry, item.geometry)
        if outside.is_empty or outside.area == 0:
            continue
        area = crs.area_m2(outside)
        if area > tolerance_m2:
            point = shapely.point_on_surface(outside)
            report.add(
                item,
                _(
                    "新边界未包含已有下级网格 %(child)s：超出 %(area).1f 平方米"
                    "（如 %(lon).6f, %(lat).6f 附近），允许 %(tol)s 平方米"
                )
                % {
                    "child": child.code,
                    "area": area,
                    "lon": point.x,
                    "lat": point.y,
                    "tol": tolerance_m2,
                },
            )
