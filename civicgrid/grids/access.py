"""Who may see and change which grids and handling units.

A membership's grid scope covers the grid and its whole subtree; a unit
handler sees the subtree the unit serves. "Missing" and "forbidden" give the
same 404, so an outsider cannot probe which grids exist.
"""

from __future__ import annotations

from django.http import Http404

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids.models import Grid, GridQuerySet, HandlingUnit


def is_platform_admin(user: User) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.active().filter(user=user, role=Role.ADMIN).exists()


def scope_roots(user: User) -> list[Grid]:
    """The roots of the subtrees ``user`` may see (empty for nobody)."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return list(Grid.objects.filter(parent__isnull=True))
    memberships = (
        Membership.objects.active().filter(user=user).select_related("grid", "unit__serves")
    )
    roots: dict[int, Grid] = {}
    for m in memberships:
        grid = m.grid if m.grid_id else (m.unit.serves if m.unit_id and m.unit else None)
        if grid is not None:
            roots[grid.pk] = grid
    # Drop roots already inside another root.
    ordered = sorted(roots.values(), key=lambda g: len(g.path))
    kept: list[Grid] = []
    for grid in ordered:
        if not any(grid.path.startswith(k.path) for k in kept):
            kept.append(grid)
    return kept


def visible_grids(user: User) -> GridQuerySet:
    return Grid.objects.in_any_subtree(scope_roots(user))


def get_grid_for_user(user: User, pk: int, *, write: bool = False) -> Grid:
    """The grid ``pk`` if ``user`` may see it (and change it, with ``write``)."""
    if write and not is_platform_admin(user):
        raise Http404
    grid = visible_grids(user).filter(pk=pk).first()
    if grid is None:
        raise Http404
    return grid


def visible_units(user: User) -> list[HandlingUnit]:
    """Units serving somewhere in the user's scope, and the user's own units."""
    roots = scope_roots(user)
    own = set(
        Membership.objects.active()
        .filter(user=user, unit__isnull=False)
        .values_list("unit_id", flat=True)
    )
    units = []
    for unit in HandlingUnit.objects.select_related("serves").order_by("code"):
        serves = unit.serves
        if unit.pk in own or any(
            serves.path.startswith(r.path) or r.path.startswith(serves.path) for r in roots
        ):
            units.append(unit)
    return units
