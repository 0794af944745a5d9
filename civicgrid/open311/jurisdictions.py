"""``jurisdiction_id``: which district (root grid) a call is about.

A deployment may host several districts, each a root of the grid tree. A
jurisdiction id is a root grid's code or an id configured for it in
``CIVICGRID_OPEN311_JURISDICTIONS``. Without one a call is about the default: the
configured ``CIVICGRID_OPEN311_DEFAULT_JURISDICTION``, else the only root grid.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from civicgrid.grids.models import Grid
from civicgrid.open311.render import Open311Error


def _configured() -> dict[str, str]:
    return dict(settings.CIVICGRID_OPEN311_JURISDICTIONS)


def _root(code: str) -> Grid | None:
    return Grid.objects.filter(code=code, parent__isnull=True, is_active=True).first()


def resolve(jurisdiction_id: str | None) -> Grid | None:
    """The root grid of ``jurisdiction_id`` (404 for an unknown one), or the default
    root without one (``None`` when several are hosted and none is the default)."""
    if jurisdiction_id:
        grid = _root(_configured().get(jurisdiction_id, jurisdiction_id))
        if grid is None:
            raise Open311Error(404, _("未知的辖区 jurisdiction_id：%(j)s") % {"j": jurisdiction_id})
        return grid
    default = settings.CIVICGRID_OPEN311_DEFAULT_JURISDICTION
    if default:
        return _root(_configured().get(default, default))
    roots = list(Grid.objects.filter(parent__isnull=True, is_active=True)[:2])
    return roots[0] if len(roots) == 1 else None


def public_id(grid: Grid) -> str:
    """The id clients know ``grid`` by: its configured id, else its code."""
    for jurisdiction_id, code in _configured().items():
        if code == grid.code:
            return jurisdiction_id
    return grid.code
