"""Which unit should handle a case: the dispatch catalogue (派单目录).

Order of precedence: a routing rule for the case's subcategory or its major
category whose grid contains the case (the deepest grid wins, then the
subcategory, then the lowest priority); else the category's default unit if it
serves the case's place; else the territorial fallback (属地兜底): the unit that
serves the smallest part of the tree containing the case, normally the
subdistrict office.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from civicgrid.cases.models import Category, RoutingRule
from civicgrid.grids.models import Grid, HandlingUnit


@dataclass(frozen=True)
class Suggestion:
    lead: HandlingUnit
    assisting: list[HandlingUnit] = field(default_factory=list)
    #: Why: "rule", "category_default" or "territorial".
    source: str = "rule"
    rule_id: int | None = None


def _ancestor_paths(path: str) -> list[str]:
    parts = [p for p in path.strip("/").split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def suggest(*, category: Category, grid: Grid) -> Suggestion | None:
    return suggest_at(category=category, path=grid.path)


def suggest_at(*, category: Category, path: str) -> Suggestion | None:
    """``suggest`` for the grid whose materialised path is ``path`` (``Grid.path``)."""
    paths = _ancestor_paths(path)
    categories = [category.pk] + ([category.parent_id] if category.parent_id else [])
    rules = list(
        RoutingRule.objects.filter(
            is_active=True,
            category_id__in=categories,
            grid__path__in=paths,
            lead_unit__is_active=True,
        )
        .select_related("grid", "lead_unit")
        .prefetch_related("assisting_units")
    )
    if rules:
        rules.sort(
            key=lambda r: (-len(r.grid.path), 0 if r.category_id == category.pk else 1, r.priority)
        )
        best = rules[0]
        return Suggestion(
            lead=best.lead_unit,
            assisting=[u for u in best.assisting_units.all() if u.is_active],
            source="rule",
            rule_id=best.pk,
        )
    default = category.default_unit or (category.parent.default_unit if category.parent else None)
    if default is not None and default.is_active and default.serves.path in paths:
        return Suggestion(lead=default, source="category_default")
    territorial = (
        HandlingUnit.objects.active()
        .filter(serves__path__in=paths)
        .select_related("serves")
        .order_by("-serves__level", "code")
        .first()
    )
    if territorial is not None:
        return Suggestion(lead=territorial, source="territorial")
    return None
