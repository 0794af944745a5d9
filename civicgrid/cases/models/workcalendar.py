"""The work calendar: official holidays, make-up workdays and office hours.

A day is a workday when it is Monday to Friday, unless a ``WorkCalendarDay``
says otherwise: a holiday (法定节假日, ``is_workday=False``) or a make-up
workday (调休上班, ``is_workday=True``). Plain weekends need no row. Which
years have official data is recorded in ``WorkCalendarYear``; the arithmetic
lives in ``civicgrid.cases.workcalendar``.
"""

from __future__ import annotations

import re
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


class TimeUnit(models.TextChoices):
    """How a time limit is counted."""

    WORK_HOURS = "work_hours", _("工作时")
    WORK_DAYS = "work_days", _("工作日")
    NATURAL_HOURS = "natural_hours", _("自然小时")


class CalendarSource(models.TextChoices):
    CHINESECALENDAR = "chinesecalendar", _("chinesecalendar 软件包")
    IMPORT = "import", _("文件导入")
    MANUAL = "manual", _("手工录入")


def parse_month_day(value: str) -> tuple[int, int]:
    """``"05-01"`` → ``(5, 1)``; ``ValueError`` for anything else (29 February is allowed)."""
    match = _MONTH_DAY.match(value.strip())
    if not match:
        raise ValueError(value)
    month, day = int(match.group(1)), int(match.group(2))
    date(2024, month, day)  # a leap year: raises ValueError for 02-30, 13-01 …
    return month, day


def validate_month_day(value: str) -> None:
    try:
        parse_month_day(value)
    except ValueError:
        raise ValidationError(_("请按“月-日”填写，如 05-01。"), code="invalid_month_day") from None


class WorkCalendarYear(models.Model):
    """A year whose official holiday arrangement is in the calendar table."""

    year = models.PositiveSmallIntegerField(
        _("年份"), unique=True, validators=[MinValueValidator(1949), MaxValueValidator(9998)]
    )
    source = models.CharField(
        _("数据来源"), max_length=20, choices=CalendarSource.choices, default=CalendarSource.MANUAL
    )
    note = models.CharField(_("备注"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        ordering = ["-year"]
        verbose_name = _("已有日历数据的年份")
        verbose_name_plural = _("已有日历数据的年份")

    def __str__(self) -> str:
        return str(self.year)


class WorkCalendarDay(models.Model):
    """An exception to "Monday to Friday": a holiday or a make-up workday."""

    date = models.DateField(_("日期"), unique=True)
    is_workday = models.BooleanField(
        _("类型"),
        choices=[(False, _("法定节假日（放假）")), (True, _("调休上班"))],
        default=False,
    )
    name = models.CharField(_("名称"), max_length=100, blank=True, help_text=_("如：国庆节"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        ordering = ["date"]
        verbose_name = _("节假日与调休")
        verbose_name_plural = _("节假日与调休")

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {self.get_is_workday_display()} {self.name}".rstrip()

    def clean(self) -> None:
        if self.is_workday and self.date and self.date.weekday() < 5:
            raise ValidationError(
                {"is_workday": _("调休上班日应为周六或周日：周一至周五本来就是工作日。")}
            )


class OfficeHours(models.Model):
    """Office hours of a period of the year, e.g. 夏季作息 05-01 to 09-30.

    A period may wrap over the new year (10-01 to 04-30). The active schemes
    should cover every day of the year exactly once.
    """

    name = models.CharField(_("名称"), max_length=50, help_text=_("如：夏季作息"))
    valid_from = models.CharField(
        _("起始（月-日）"), max_length=5, validators=[validate_month_day], help_text=_("如 05-01")
    )
    valid_to = models.CharField(
        _("截止（月-日）"),
        max_length=5,
        validators=[validate_month_day],
        help_text=_("含当日，如 09-30；可跨年，如 10-01 至 04-30"),
    )
    morning_start = models.TimeField(_("上午上班"))
    morning_end = models.TimeField(_("上午下班"))
    afternoon_start = models.TimeField(_("下午上班"))
    afternoon_end = models.TimeField(_("下午下班"))
    is_active = models.BooleanField(_("启用"), default=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        ordering = ["valid_from", "id"]
        verbose_name = _("作息时间")
        verbose_name_plural = _("作息时间")

    def __str__(self) -> str:
        return f"{self.name}（{self.valid_from} 至 {self.valid_to}）"

    def month_days(self) -> set[tuple[int, int]]:
        """Every (month, day) of a leap year this period covers."""
        start, end = parse_month_day(self.valid_from), parse_month_day(self.valid_to)
        days = set()
        for ordinal in range(date(2024, 1, 1).toordinal(), date(2024, 12, 31).toordinal() + 1):
            day = date.fromordinal(ordinal)
            md = (day.month, day.day)
            if (start <= md <= end) if start <= end else (md >= start or md <= end):
                days.add(md)
        return days

    def clean(self) -> None:
        times = [self.morning_start, self.morning_end, self.afternoon_start, self.afternoon_end]
        if None not in times and not (
            self.morning_start < self.morning_end <= self.afternoon_start < self.afternoon_end
        ):
            raise ValidationError(
                _("时间应依次为：上午上班 < 上午下班 ≤ 下午上班 < 下午下班。"), code="order"
            )
        if not self.is_active:
            return
        try:
            mine = self.month_days()
        except ValueError:
            return  # the field validators report it
        others = OfficeHours.objects.filter(is_active=True).exclude(pk=self.pk)
        for other in others:
            try:
                shared = mine & other.month_days()
            except ValueError:
                continue
            if shared:
                first = min(shared)
                raise ValidationError(
                    _("与已启用的“%(other)s”在 %(day)s 等日期重叠：同一时段只能启用一套作息时间。"),
                    code="overlap",
                    params={"other": other, "day": f"{first[0]:02d}-{first[1]:02d}"},
                )
