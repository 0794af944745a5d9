"""Routing rules (派单目录): category × grid subtree → lead and assisting units."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.models.category import Category


class RoutingRule(models.Model):
    """Cases of ``category`` (or of any subcategory of it) in the subtree of ``grid``
    go to ``lead_unit``. The most specific rule wins: the deepest grid, then a
    subcategory over its major category, then the lowest ``priority``."""

    category = models.ForeignKey(
        Category, verbose_name=_("类别"), on_delete=models.CASCADE, related_name="routing_rules"
    )
    grid = models.ForeignKey(
        "grids.Grid",
        verbose_name=_("网格范围"),
        on_delete=models.CASCADE,
        related_name="routing_rules",
    )
    lead_unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("主办单位"),
        on_delete=models.CASCADE,
        related_name="routing_rules",
    )
    assisting_units = models.ManyToManyField(
        "grids.HandlingUnit", verbose_name=_("协办单位"), blank=True, related_name="+"
    )
    priority = models.PositiveIntegerField(_("优先级"), default=100)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("派单规则")
        verbose_name_plural = _("派单规则")
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"{self.category} @ {self.grid} → {self.lead_unit}"
