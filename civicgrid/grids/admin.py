from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from civicgrid.grids.models import Grid, GridVersion, HandlingUnit


@admin.register(Grid)
class GridAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "kind", "parent", "area_km2", "is_active"]
    list_filter = ["level", "kind", "is_active"]
    search_fields = ["code", "name"]
    list_select_related = ["parent"]
    # The tree's shape and polygons change through `civicgrid import-grids`,
    # which validates the whole batch; here only names and counts are edited.
    readonly_fields = [
        "code",
        "level",
        "parent",
        "path",
        "area_m2",
        "centroid_lon",
        "centroid_lat",
        "created_at",
        "updated_at",
    ]
    fields = [
        "code",
        "name",
        "kind",
        "level",
        "parent",
        "households",
        "is_active",
        *readonly_fields[3:],
    ]

    @admin.display(description=_("面积（平方千米）"), ordering="area_m2")
    def area_km2(self, obj: Grid) -> str:
        return f"{obj.area_m2 / 1e6:.3f}"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(HandlingUnit)
class HandlingUnitAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "serves", "contact_name", "contact_phone", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name", "contact_name"]
    autocomplete_fields = ["serves"]


@admin.register(GridVersion)
class GridVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "changed_at"]
    readonly_fields = ["version", "token", "changed_at"]
