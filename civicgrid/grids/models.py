"""The grid tree: district → subdistrict → community/village → level-3 grid.

Geometry is kept without GeoDjango (which needs GDAL and SpatiaLite from the
system): the polygon is stored as WKB in storage lon/lat and handled with
shapely; the bounding box, area and centroid are stored columns, so lists and
maps never parse polygons. ``path`` is a materialised path of ids
(``/1/5/23/``) so a subtree is one indexed prefix query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import shapely
from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from civicgrid.accounts.models import User  # noqa: F401


class Level(models.IntegerChoices):
    DISTRICT = 0, _("区县")
    SUBDISTRICT = 1, _("街道/乡镇")
    COMMUNITY = 2, _("社区/村")
    GRID = 3, _("网格")


class Kind(models.TextChoices):
    DISTRICT = "district", _("区")
    STREET = "street", _("街道")
    TOWN = "town", _("镇")
    TOWNSHIP = "township", _("乡")
    COMMUNITY = "community", _("社区")
    VILLAGE = "village", _("村")
    GRID = "grid", _("网格")


DEFAULT_KIND = {
    Level.DISTRICT: Kind.DISTRICT,
    Level.SUBDISTRICT: Kind.STREET,
    Level.COMMUNITY: Kind.COMMUNITY,
    Level.GRID: Kind.GRID,
}


class GridQuerySet(models.QuerySet["Grid"]):
    def active(self) -> GridQuerySet:
        return self.filter(is_active=True)

    def in_subtree(self, root: Grid) -> GridQuerySet:
        """``root`` and everything below it."""
        return self.filter(path__startswith=root.path)

    def in_any_subtree(self, roots: list[Grid]) -> GridQuerySet:
        if not roots:
            return self.none()
        query = models.Q()
        for root in roots:
            query |= models.Q(path__startswith=root.path)
        return self.filter(query)

    def at_level(self, level: int) -> GridQuerySet:
        return self.filter(level=level)


class Grid(models.Model):
    code = models.CharField(_("编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    level = models.PositiveSmallIntegerField(_("层级"), choices=Level.choices)
    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("路径"), max_length=255, db_index=True, editable=False)
    geom_wkb = models.BinaryField(_("边界 (WKB)"), editable=False)
    area_m2 = models.FloatField(_("面积（平方米）"), editable=False)
    centroid_lon = models.FloatField(_("中心经度"), editable=False)
    centroid_lat = models.FloatField(_("中心纬度"), editable=False)
    min_lon = models.FloatField(editable=False)
    min_lat = models.FloatField(editable=False)
    max_lon = models.FloatField(editable=False)
    max_lat = models.FloatField(editable=False)
    households = models.PositiveIntegerField(_("户数"), null=True, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = GridQuerySet.as_manager()

    class Meta:
        verbose_name = _("网格")
        verbose_name_plural = _("网格")
        ordering = ["path"]
        indexes = [models.Index(fields=["level", "code"])]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"

    @property
    def geometry(self) -> shapely.Geometry:
        return shapely.from_wkb(bytes(self.geom_wkb))

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to and including this grid."""
        return [int(part) for part in self.path.strip("/").split("/") if part]

    def ancestors(self) -> list[Grid]:
        """The grids from the root down to this one, in order (one query)."""
        ids = self.ancestor_ids
        by_id = {g.pk: g for g in Grid.objects.filter(pk__in=ids)}
        return [by_id[i] for i in ids if i in by_id]

    def is_within(self, root: Grid) -> bool:
        return self.path.startswith(root.path)


class GridVersion(models.Model):
    """A single row whose counter moves on every change of the grid tree.

    Every process keeps its locator's index in memory and rebuilds it when the
    counter differs from the one it was built at.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.PositiveBigIntegerField(default=0)
    # A random token beside the counter: a rolled-back change cannot make a
    # different tree look like the one an index was built from.
    token = models.CharField(max_length=32, default="", editable=False)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("网格版本")
        verbose_name_plural = _("网格版本")

    def __str__(self) -> str:
        return str(self.version)


class UnitKind(models.TextChoices):
    SUBDISTRICT_OFFICE = "subdistrict_office", _("街道/乡镇办事处")
    BUREAU = "bureau", _("区直部门")
    ENTERPRISE = "enterprise", _("公共服务企业")
    OTHER = "other", _("其他")


class HandlingUnitQuerySet(models.QuerySet["HandlingUnit"]):
    def active(self) -> HandlingUnitQuerySet:
        return self.filter(is_active=True)


class HandlingUnit(models.Model):
    """A unit cases are dispatched to (处置单位 / 责任单位)."""

    code = models.CharField(_("编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100, unique=True)
    kind = models.CharField(_("类型"), max_length=32, choices=UnitKind.choices)
    serves = models.ForeignKey(
        Grid,
        verbose_name=_("服务范围"),
        on_delete=models.PROTECT,
        related_name="units",
        help_text=_("该单位负责的网格子树"),
    )
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=30, blank=True)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    objects = HandlingUnitQuerySet.as_manager()

    class Meta:
        verbose_name = _("处置单位")
        verbose_name_plural = _("处置单位")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name
