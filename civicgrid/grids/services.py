"""Writes to the grid tree, its units and the staff placed on it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import shapely
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids import crs, locator
from civicgrid.grids.models import DEFAULT_KIND, Grid, GridVersion, HandlingUnit, Level
from civicgrid.grids.validation import GridInput, Problem, validate


class GridError(Exception):
    """A refused change to the grid tree; ``problems`` says what and where."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"- {p}" for p in self.problems)


def bump_version() -> None:
    """Move the grid version stamp; call inside the transaction of the change.

    Every process's locator sees the new stamp and rebuilds its index; this
    process's own index is dropped as soon as the change commits.
    """
    token = secrets.token_hex(8)
    updated = GridVersion.objects.filter(pk=1).update(version=F("version") + 1, token=token)
    if not updated:
        try:
            with transaction.atomic():
                GridVersion.objects.create(pk=1, version=1, token=token)
        except IntegrityError:
            GridVersion.objects.filter(pk=1).update(version=F("version") + 1, token=token)
    transaction.on_commit(locator.invalidate)


def _fill_geometry(grid: Grid, geom: shapely.Geometry) -> None:
    geom = shapely.normalize(geom)
    grid.geom_wkb = shapely.to_wkb(geom)
    grid.area_m2 = round(crs.area_m2(geom), 2)
    # The centroid of an odd shape may fall outside it; a point on the surface
    # never does, which is what a map label or a "fly to" wants.
    inside = shapely.point_on_surface(geom)
    centre = shapely.centroid(geom)
    point = centre if shapely.contains(geom, centre) else inside
    grid.centroid_lon = round(point.x, 7)
    grid.centroid_lat = round(point.y, 7)
    grid.min_lon, grid.min_lat, grid.max_lon, grid.max_lat = shapely.bounds(geom).tolist()


def save_grids(*, items: Sequence[GridInput], replace_existing: bool = False) -> list[Grid]:
    """Create (or, with ``replace_existing``, update) grids: all of them or none.

    Every problem of the batch is reported in one ``GridError``. The batch is
    validated inside the transaction that writes it, so two imports at once
    cannot each pass against a tree the other is changing.
    """
    saved: list[Grid] = []
    with transaction.atomic():
        report = validate(items, replace_existing=replace_existing)
        if not report.ok:
            raise GridError(
                _("%(n)d 处问题，未写入任何网格") % {"n": len(report.problems)}, report.problems
            )
        existing = {g.code: g for g in Grid.objects.filter(code__in=[i.code for i in items])}
        by_code: dict[str, Grid] = {}
        # Stored parents outside the batch, fetched once each. Items go by level,
        # so a parent is fetched after every move of its own ancestors.
        stored_parents: dict[str, Grid] = {}
        for item in sorted(items, key=lambda i: i.level):
            parent = None
            if item.parent_code:
                parent = by_code.get(item.parent_code) or stored_parents.get(item.parent_code)
                if parent is None:
                    parent = Grid.objects.get(code=item.parent_code)
                    stored_parents[parent.code] = parent
            grid = existing.get(item.code) or Grid(code=item.code)
            old_path = grid.path if grid.pk else None
            # A stored grid keeps its kind unless given one, or its level changes.
            same_level = grid.pk is not None and grid.level == item.level
            grid.kind = item.kind or (grid.kind if same_level else DEFAULT_KIND[Level(item.level)])
            grid.name = item.name.strip()
            grid.level = item.level
            grid.parent = parent
            if item.households is not None:
                grid.households = item.households
            assert item.geometry is not None  # validated
            _fill_geometry(grid, item.geometry)
            grid.path = "pending"
            grid.save()
            grid.path = (parent.path if parent else "/") + f"{grid.pk}/"
            Grid.objects.filter(pk=grid.pk).update(path=grid.path)
            if old_path and old_path != grid.path:
                _move_descendants(old_path, grid.path)
            by_code[grid.code] = grid
            saved.append(grid)
        bump_version()
    return saved


def _move_descendants(old_prefix: str, new_prefix: str) -> None:
    for child in Grid.objects.filter(path__startswith=old_prefix).exclude(path=old_prefix):
        Grid.objects.filter(pk=child.pk).update(path=new_prefix + child.path[len(old_prefix) :])


def set_grid_active(*, grid: Grid, active: bool) -> Grid:
    """Retire a grid (and its subtree) from locating, or bring it back."""
    with transaction.atomic():
        Grid.objects.in_subtree(grid).update(is_active=active)
        bump_version()
    grid.refresh_from_db()
    return grid


def create_handling_unit(
    *,
    code: str,
    name: str,
    kind: str,
    serves: Grid,
    contact_name: str = "",
    contact_phone: str = "",
    address: str = "",
) -> HandlingUnit:
    if HandlingUnit.objects.filter(code=code).exists():
        raise GridError(_("处置单位编码 %(code)s 已存在") % {"code": code})
    if HandlingUnit.objects.filter(name=name).exists():
        raise GridError(_("处置单位“%(name)s”已存在") % {"name": name})
    return HandlingUnit.objects.create(
        code=code,
        name=name,
        kind=kind,
        serves=serves,
        contact_name=contact_name,
        contact_phone=contact_phone,
        address=address,
    )


def assign_grid_worker(*, grid: Grid, user: User, title: str = "") -> Membership:
    """Place a grid worker on a level-3 grid; a worker may cover several."""
    if grid.level != Level.GRID:
        raise GridError(
            _("网格员只能分配到三级网格，%(grid)s 是%(level)s")
            % {"grid": grid, "level": Level(grid.level).label}
        )
    membership, _created = Membership.objects.update_or_create(
        user=user, role=Role.GRID_WORKER, grid=grid, defaults={"is_active": True, "title": title}
    )
    return membership


def assign_community_staff(
    *, grid: Grid, user: User, title: str = "", role: str = Role.COMMUNITY_STAFF
) -> Membership:
    """Place staff (e.g. a community secretary) over a subdistrict or community."""
    if grid.level not in (Level.SUBDISTRICT, Level.COMMUNITY):
        raise GridError(
            _("街道/社区工作人员只能分配到街道或社区，%(grid)s 是%(level)s")
            % {"grid": grid, "level": Level(grid.level).label}
        )
    membership, _created = Membership.objects.update_or_create(
        user=user, role=role, grid=grid, defaults={"is_active": True, "title": title}
    )
    return membership
