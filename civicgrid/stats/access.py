"""Who may read which statistics: the statistics roles and their grid subtrees.

Leaders, shift supervisors and administrators of the centre hold a membership on the
district and read the whole district; subdistrict and community staff read their
subtree only (figures and drill-down). Anyone else (no statistics role, or a unit
handler, a grid worker …) gets the same 404 as for a page that does not exist.
"""

from __future__ import annotations

from django.http import Http404

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import memberships
from civicgrid.grids.models import Grid

#: Roles that read the statistics pages, each over its membership's grid subtree.
STATS_ROLES = frozenset({Role.LEADER, Role.SUPERVISOR, Role.COMMUNITY_STAFF, Role.ADMIN})


def stats_roots(user: User) -> list[Grid]:
    """The roots of the subtrees whose statistics ``user`` may read, outermost first
    (a root inside another is dropped); empty for anyone without a statistics role.
    A superuser reads every root of the tree."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return list(Grid.objects.filter(parent__isnull=True, is_active=True).order_by("code"))
    grids = {
        m.grid.pk: m.grid
        for m in memberships(user)
        if m.role in STATS_ROLES and m.grid is not None and m.grid.is_active
    }
    kept: list[Grid] = []
    for grid in sorted(grids.values(), key=lambda g: (len(g.path), g.code)):
        if not any(grid.path.startswith(k.path) for k in kept):
            kept.append(grid)
    return kept


def has_stats_role(user: User) -> bool:
    return bool(stats_roots(user))


def stats_scope(user: User, grid_id: int | None = None) -> tuple[Grid, list[Grid]]:
    """The grid whose figures ``user`` reads (``grid_id``, or their first root) and
    their roots. 404 when they have no statistics role or the grid lies outside every
    root (missing and forbidden alike)."""
    roots = stats_roots(user)
    if not roots:
        raise Http404
    if grid_id is None:
        return roots[0], roots
    grid = Grid.objects.filter(pk=grid_id, is_active=True).first()
    if grid is None or not any(grid.path.startswith(r.path) for r in roots):
        raise Http404
    return grid, roots


def trail(grid: Grid, roots: list[Grid]) -> list[Grid]:
    """The grids from the user's root down to ``grid`` (the drill-down's way back up:
    nothing above the root the user may read)."""
    root = next(r for r in roots if grid.path.startswith(r.path))
    ids = grid.ancestor_ids
    ids = ids[ids.index(root.pk) :]
    if ids == [grid.pk]:
        return [grid]
    by_id = {g.pk: g for g in Grid.objects.filter(pk__in=ids)}
    return [by_id[i] for i in ids if i in by_id]
