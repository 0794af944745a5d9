"""Who may see and change which user accounts.

A user sees themselves, and staff whose scope lies inside one of their own
subtrees; only platform admins change accounts.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from civicgrid.accounts.models import User
from civicgrid.grids.access import is_platform_admin, scope_roots
from civicgrid.grids.models import Grid


def visible_users(user: User) -> QuerySet[User]:
    if not user.is_authenticated:
        return User.objects.none()
    if is_platform_admin(user):
        return User.objects.all()
    roots = scope_roots(user)
    query = Q(pk=user.pk)
    for root in roots:
        query |= Q(memberships__grid__path__startswith=root.path)
        query |= Q(memberships__unit__serves__path__startswith=root.path)
    return User.objects.filter(query).distinct()


def get_user_for_user(viewer: User, pk: int, *, write: bool = False) -> User:
    if write and not is_platform_admin(viewer):
        raise Http404
    found = visible_users(viewer).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def grid_workers_of(grid: Grid) -> QuerySet[User]:
    """Active grid workers placed on ``grid``."""
    return User.objects.filter(
        memberships__grid=grid, memberships__role="grid_worker", memberships__is_active=True
    ).distinct()
