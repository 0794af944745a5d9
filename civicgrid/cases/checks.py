"""System checks of the cases app: is the work calendar ready for deadlines?

They run with ``civicgrid check`` and before ``runserver``/``serve`` commands,
and are skipped while the tables do not exist yet (before ``migrate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Warning, register
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.cases.models.workcalendar import OfficeHours, WorkCalendarYear


def _tables_ready() -> bool:
    try:
        tables = set(connection.introspection.table_names())
    except DatabaseError:
        return False
    return {WorkCalendarYear._meta.db_table, OfficeHours._meta.db_table} <= tables


def _concerns_us(app_configs: Sequence[AppConfig] | None) -> bool:
    return app_configs is None or any(app.label == "cases" for app in app_configs)


def calendar_year_messages() -> list[CheckMessage]:
    """A warning for the current and the next year when they have no calendar data."""
    from civicgrid.cases.workcalendar import years_without_data

    this_year = timezone.localdate().year
    messages: list[CheckMessage] = []
    for year in years_without_data([this_year, this_year + 1]):
        messages.append(
            Warning(
                _("%(year)s 年没有工作日历数据：该年的期限只按周末计算，节假日和调休未计入。")
                % {"year": year},
                hint=_(
                    "国务院每年 11 月前后公布下一年的放假安排。用 "
                    "`civicgrid calendar import 文件.csv` 导入，或在管理后台录入节假日与调休后"
                    "添加“已有日历数据的年份”。"
                ),
                obj=f"WorkCalendarYear({year})",
                id="cases.W001" if year == this_year else "cases.W002",
            )
        )
    return messages


def _md(md: tuple[int, int]) -> str:
    return f"{md[0]:02d}-{md[1]:02d}"


def office_hours_messages() -> list[CheckMessage]:
    """A warning when the active office hours leave days uncovered or overlap."""
    seen: dict[tuple[int, int], str] = {}
    overlaps: set[tuple[int, int]] = set()
    for scheme in OfficeHours.objects.filter(is_active=True):
        try:
            days = scheme.month_days()
        except ValueError:
            continue
        for md in days:
            if md in seen:
                overlaps.add(md)
            seen[md] = scheme.name
    messages: list[CheckMessage] = []
    every_day = OfficeHours(valid_from="01-01", valid_to="12-31").month_days()
    missing = sorted(every_day - set(seen))
    if missing:
        messages.append(
            Warning(
                _(
                    "有 %(n)s 天没有启用的作息时间（如 %(day)s）：这些天按 08:30–12:00、14:00–17:30 计算。"
                )
                % {"n": len(missing), "day": _md(missing[0])},
                hint=_("在管理后台“作息时间”中补齐全年的时段。"),
                id="cases.W003",
            )
        )
    if overlaps:
        first = min(overlaps)
        messages.append(
            Warning(
                _("有 %(n)s 天同时启用了两套作息时间（如 %(day)s）：只用起始日期在前的一套。")
                % {"n": len(overlaps), "day": _md(first)},
                hint=_("在管理后台“作息时间”中停用或调整重叠的时段。"),
                id="cases.W004",
            )
        )
    return messages


def check_work_calendar(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not _concerns_us(app_configs) or not _tables_ready():
        return []
    try:
        return calendar_year_messages() + office_hours_messages()
    except DatabaseError:
        return []  # e.g. migrations half applied: ``migrate`` will say more


def register_checks() -> None:
    register(check_work_calendar)
