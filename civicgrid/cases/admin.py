from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from civicgrid.cases.checks import calendar_year_messages, office_hours_messages
from civicgrid.cases.models.case import Approval, Case, CaseEvent, Deadline
from civicgrid.cases.models.category import Category, TimeLimit
from civicgrid.cases.models.routing import RoutingRule
from civicgrid.cases.models.workcalendar import OfficeHours, WorkCalendarDay, WorkCalendarYear

# -- work calendar ------------------------------------------------------------------------

WEEKDAYS = [_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日")]


def _show_check_messages(request: HttpRequest, found: list[Any]) -> None:
    for message in found:
        messages.warning(request, f"{message.msg} {message.hint or ''}".strip())


@admin.register(WorkCalendarDay)
class WorkCalendarDayAdmin(admin.ModelAdmin):
    list_display = ["date", "weekday", "is_workday", "name", "updated_at"]
    list_filter = ["is_workday"]
    date_hierarchy = "date"
    search_fields = ["name"]
    ordering = ["-date"]
    fields = ["date", "is_workday", "name"]

    @admin.display(description=_("星期"))
    def weekday(self, obj: WorkCalendarDay) -> str:
        return str(WEEKDAYS[obj.date.weekday()])

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            _show_check_messages(request, calendar_year_messages())
        return super().changelist_view(request, extra_context)


def _count_days(*, is_workday: bool) -> Coalesce:
    days = (
        WorkCalendarDay.objects.filter(date__year=OuterRef("year"), is_workday=is_workday)
        .order_by()
        .values("date__year")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(days, output_field=IntegerField()), 0)


@admin.register(WorkCalendarYear)
class WorkCalendarYearAdmin(admin.ModelAdmin):
    list_display = ["year", "source", "holiday_count", "workday_count", "note", "updated_at"]
    list_filter = ["source"]
    fields = ["year", "source", "note"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkCalendarYear]:
        return (
            super()
            .get_queryset(request)
            .annotate(holidays=_count_days(is_workday=False), workdays=_count_days(is_workday=True))
        )

    @admin.display(description=_("放假天数"), ordering="holidays")
    def holiday_count(self, obj: Any) -> int:
        return int(obj.holidays)

    @admin.display(description=_("调休上班天数"), ordering="workdays")
    def workday_count(self, obj: Any) -> int:
        return int(obj.workdays)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            _show_check_messages(request, calendar_year_messages())
        return super().changelist_view(request, extra_context)


@admin.register(OfficeHours)
class OfficeHoursAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "valid_from",
        "valid_to",
        "morning_start",
        "morning_end",
        "afternoon_start",
        "afternoon_end",
        "is_active",
    ]
    list_filter = ["is_active"]
    fields = [
        "name",
        ("valid_from", "valid_to"),
        ("morning_start", "morning_end"),
        ("afternoon_start", "afternoon_end"),
        "is_active",
    ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            _show_check_messages(request, office_hours_messages())
        return super().changelist_view(request, extra_context)


# -- categories and routing ---------------------------------------------------------------


class TimeLimitInline(admin.TabularInline):
    model = TimeLimit
    extra = 0
    fields = ["stage", "urgency", "amount", "unit"]
    ordering = ["stage", "urgency"]


class MajorCategoryFilter(admin.SimpleListFilter):
    """By 大类: "大类" lists the 大类 themselves, a 大类's name lists its 小类."""

    title = _("大类")
    parameter_name = "major"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        majors = Category.objects.majors().order_by("kind", "sort_order", "code")
        return [("none", str(_("（大类本身）")))] + [
            (str(m.pk), f"{m.code} {m.name}") for m in majors
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "none":
            return queryset.filter(parent__isnull=True)
        if value and value.isdigit():
            return queryset.filter(parent_id=int(value))
        return queryset


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "parent",
        "pinyin",
        "default_unit",
        "limit_count",
        "sort_order",
        "is_active",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["kind", MajorCategoryFilter, "is_active"]
    search_fields = ["code", "name", "pinyin"]
    list_select_related = ["parent", "default_unit"]
    list_per_page = 200
    ordering = ["kind", "sort_order", "code"]
    autocomplete_fields = ["parent", "default_unit"]
    inlines = [TimeLimitInline]
    fields = [
        ("code", "name"),
        ("kind", "parent"),
        "pinyin",
        "filing_criteria",
        "closing_criteria",
        "default_unit",
        ("sort_order", "is_active"),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(limits=Count("time_limits"))

    @admin.display(description=_("时限数"), ordering="limits")
    def limit_count(self, obj: Any) -> int:
        return int(obj.limits)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["category", "grid", "lead_unit", "assisting", "priority", "is_active"]
    list_filter = ["is_active", "category__kind"]
    search_fields = [
        "category__code",
        "category__name",
        "grid__code",
        "grid__name",
        "lead_unit__code",
        "lead_unit__name",
    ]
    list_select_related = ["category__parent", "grid", "lead_unit"]
    autocomplete_fields = ["category", "grid", "lead_unit", "assisting_units"]
    ordering = ["priority", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RoutingRule]:
        return super().get_queryset(request).prefetch_related("assisting_units")

    @admin.display(description=_("协办单位"))
    def assisting(self, obj: RoutingRule) -> str:
        return "、".join(unit.name for unit in obj.assisting_units.all())


EVENT_FIELDS = (
    "at",
    "action",
    "actor",
    "actor_role",
    "actor_unit",
    "from_status",
    "to_status",
    "reason",
)


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS
    ordering = ["at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


DEADLINE_FIELDS = (
    "stage",
    "started_at",
    "due_at",
    "finished_at",
    "overdue_at",
    "paused_at",
    "amount",
    "unit",
)


class DeadlineInline(admin.TabularInline):
    model = Deadline
    extra = 0
    can_delete = False
    fields = DEADLINE_FIELDS
    readonly_fields = DEADLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Cases are read here; every change goes through the workflow (pages and API),
    so that it is checked, logged and timed."""

    list_display = [
        "number",
        "status",
        "category",
        "urgency",
        "channel",
        "grid",
        "lead_unit",
        "received_at",
        "is_overdue",
    ]
    list_filter = ["status", "channel", "urgency", "is_overdue"]
    search_fields = ["number", "external_id", "description", "address"]
    list_select_related = ["category__parent", "grid", "lead_unit"]
    date_hierarchy = "received_at"
    inlines = [DeadlineInline, CaseEventInline]
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Case._meta.fields] + ["assisting_units"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = [
        "case",
        "kind",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["case", "requested_by", "decided_by"]
    readonly_fields = [f.name for f in Approval._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
