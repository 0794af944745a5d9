from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from civicgrid.open311.models import ServiceAttribute, ServiceAttributeValue, Submission


class ServiceAttributeValueInline(admin.TabularInline):
    model = ServiceAttributeValue
    extra = 1
    fields = ["key", "name", "order"]


@admin.register(ServiceAttribute)
class ServiceAttributeAdmin(admin.ModelAdmin):
    """The extra questions of Open311 services (GET services/{code})."""

    list_display = [
        "category",
        "code",
        "description",
        "datatype",
        "required",
        "variable",
        "order",
        "is_active",
    ]
    list_filter = ["datatype", "required", "is_active"]
    search_fields = ["code", "description", "category__code", "category__name"]
    autocomplete_fields = ["category"]
    list_select_related = ["category", "category__parent"]
    inlines = [ServiceAttributeValueInline]
    fields = [
        "category",
        "code",
        "description",
        "datatype",
        "datatype_description",
        "variable",
        "required",
        "order",
        "is_active",
    ]


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """What integrations POSTed; read only (cases are changed through the workflow)."""

    list_display = ["created_at", "integration", "service_code", "state", "case", "token"]
    list_filter = ["state", "integration"]
    search_fields = ["token", "case__number", "service_code", "device_id", "account_id"]
    list_select_related = ["integration", "case"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
