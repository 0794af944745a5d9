"""Who may see which cases, and in which roles a user acts on one.

A grid-scoped membership covers the cases located in its subtree (district-level
memberships also cover cases still waiting to be located); a unit handler covers
the cases their unit leads or assists. "Missing" and "forbidden" are one 404.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q
from django.http import Http404

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases.models import Case, CaseQuerySet, unit_q

#: A pseudo-role: staff of a unit that assists on the case (may see and add notes).
ASSISTING = "assisting_unit"


def _memberships(user: User) -> list[Membership]:
    if not user.is_authenticated or not user.is_active:
        return []
    cached: list[Membership] | None = getattr(user, "_civicgrid_memberships", None)
    if cached is None:
        cached = list(Membership.objects.active().filter(user=user).select_related("grid"))
        user._civicgrid_memberships = cached  # type: ignore[attr-defined]
    return cached


def memberships(user: User) -> list[Membership]:
    """``user``'s active memberships with their grids, read once per user object
    (i.e. once per request)."""
    return list(_memberships(user))


def is_staff(user: User) -> bool:
    """Whether ``user`` works on cases at all: an active membership, or a superuser."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or bool(_memberships(user))


def visible_cases(user: User) -> CaseQuerySet:
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    if user.is_superuser:
        return Case.objects.all()
    # One row per case whatever the memberships: the assisting units through EXISTS
    # rather than a join, so no DISTINCT (which would make PostgreSQL compare and sort
    # whole rows before a page's LIMIT).
    query = Q(pk__in=[])
    units = sorted({m.unit_id for m in _memberships(user) if m.unit_id})
    if units:
        query |= unit_q(units)
    for m in _memberships(user):
        if not m.unit_id and m.grid is not None:
            query |= Q(grid_path__startswith=m.grid.path)
            if m.grid.parent_id is None:
                query |= Q(grid_path="")
    return Case.objects.filter(query)


def get_case_for_user(user: User, pk: int, *, related: Sequence[str] = ()) -> Case:
    """The case ``pk`` if ``user`` may see it (else 404), with ``related`` selected."""
    qs = visible_cases(user)
    if related:
        qs = qs.select_related(*related)
    case = qs.filter(pk=pk).first()
    if case is None:
        raise Http404
    return case


def roles_on_case(user: User, case: Case) -> set[str]:
    """The roles in which ``user`` may act on ``case`` (empty: none)."""
    roles: set[str] = set()
    assisting: set[int] | None = None
    for m in _memberships(user):
        if m.unit_id:
            if case.lead_unit_id == m.unit_id:
                roles.add(Role.UNIT_HANDLER)
            else:
                if assisting is None:
                    assisting = set(case.assisting_units.values_list("id", flat=True))
                if m.unit_id in assisting:
                    roles.add(ASSISTING)
        elif m.grid is not None:
            if case.grid_path:
                if case.grid_path.startswith(m.grid.path):
                    roles.add(m.role)
            elif m.grid.parent_id is None:
                roles.add(m.role)
    return roles
