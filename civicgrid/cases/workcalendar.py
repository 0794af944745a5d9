"""Deadline arithmetic on the work calendar: working hours, working days, natural hours.

Every case stage deadline is computed here (``due_at``), and moved here when a
case is parked (``shift_for_pause``). The rules (also in ``docs/deadlines.md``):

- A **workday** is Monday to Friday, except the official holidays (法定节假日) in
  the calendar table, plus the make-up workdays (调休上班) in it.
- **Office hours** on a workday are the morning and afternoon periods of the
  active ``OfficeHours`` scheme for that day of the year (seeded: 08:30–12:00 and
  14:30–18:00 from 05-01 to 09-30, 08:30–12:00 and 14:00–17:30 from 10-01 to 04-30).
- **工作时** count office time only; a start outside office hours starts counting at
  the next office period; a deadline that ends exactly at the end of a period is
  due at that moment (4 working hours from 08:30 are due at 12:00, not 14:30).
- **工作日** are counted from the next workday (the day of the start never counts,
  as in Civil Code art. 201); the deadline is the end of the afternoon office
  period of the N-th workday (art. 203: the end of business hours on the last day).
- **自然小时** are elapsed time.
- A year without a ``WorkCalendarYear`` row has no official data: its workdays are
  Monday to Friday plus whatever rows exist, and a ``CalendarFallbackWarning`` is
  emitted (once per year and process) and logged. Nothing raises.

All times are timezone-aware; arithmetic is done in local time (``TIME_ZONE``,
Asia/Shanghai) and the results are aware datetimes in that zone.

Each process caches the calendar (one query per year on first use, office hours
once) and checks a fingerprint of the three tables (row counts and latest
``updated_at``) at most every ``CIVICGRID_CALENDAR_RECHECK_SECONDS`` (2 s), so an
edit in the admin or an import reaches every process without a query per day stepped.
A snapshot also remembers each date's facts once worked out (workday, office periods;
at most ``MAX_REMEMBERED_DAYS``), forgotten with it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time as monotime
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.cases.models.workcalendar import (
    OfficeHours,
    TimeUnit,
    WorkCalendarDay,
    WorkCalendarYear,
    parse_month_day,
)

__all__ = [
    "CalendarFallbackWarning",
    "TimeUnit",
    "add_natural_hours",
    "add_working_days",
    "add_working_hours",
    "due_at",
    "invalidate",
    "is_workday",
    "office_periods",
    "shift_for_pause",
    "working_seconds_between",
    "years_without_data",
]

logger = logging.getLogger("civicgrid.cases.workcalendar")

#: Office hours used for a day no active scheme covers (the system check reports the gap).
FALLBACK_HOURS = ((time(8, 30), time(12, 0)), (time(14, 0), time(17, 30)))
#: No deadline arithmetic steps further than this many days.
MAX_DAYS = 3660
#: How many days' facts a snapshot of the calendar remembers (then it starts afresh).
MAX_REMEMBERED_DAYS = 20_000
DEFAULT_RECHECK_SECONDS = 2.0
ONE_DAY = timedelta(days=1)
_UNITS = {unit.value: unit for unit in TimeUnit}


class CalendarFallbackWarning(UserWarning):
    """A date in a year without official calendar data: counted with weekends only."""


# -- the per-process cache ----------------------------------------------------------


@dataclass(frozen=True)
class _Scheme:
    name: str
    start: tuple[int, int]
    end: tuple[int, int]
    periods: tuple[tuple[time, time], ...]

    def covers(self, md: tuple[int, int]) -> bool:
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end


@dataclass
class _Snapshot:
    """The calendar as one process sees it, filled lazily year by year."""

    fingerprint: tuple[Any, ...]
    schemes: tuple[_Scheme, ...]
    # year -> (has official data, {date: is_workday})
    years: dict[int, tuple[bool, dict[date, bool]]] = field(default_factory=dict)
    hours: dict[tuple[int, int], tuple[tuple[time, time], ...]] = field(default_factory=dict)
    # date -> (is a workday, its office periods as naive local datetimes; none if not)
    days: dict[date, tuple[bool, tuple[tuple[datetime, datetime], ...]]] = field(
        default_factory=dict
    )

    def year(self, year: int) -> tuple[bool, dict[date, bool]]:
        data = self.years.get(year)
        if data is None:
            days = dict(
                WorkCalendarDay.objects.filter(date__year=year).values_list("date", "is_workday")
            )
            known = WorkCalendarYear.objects.filter(year=year).exists()
            data = self.years[year] = (known, days)
            if not known:
                _warn_fallback(year)
        return data

    def is_workday(self, day: date) -> bool:
        exceptions = self.year(day.year)[1]
        found = exceptions.get(day)
        return day.weekday() < 5 if found is None else found

    def day(self, day: date) -> tuple[bool, tuple[tuple[datetime, datetime], ...]]:
        """Whether ``day`` is a workday and its office periods (naive local datetimes),
        remembered: the deadline arithmetic steps over the same days again and again."""
        found = self.days.get(day)
        if found is None:
            if len(self.days) >= MAX_REMEMBERED_DAYS:
                self.days.clear()
            workday = self.is_workday(day)
            periods = (
                tuple(
                    (datetime.combine(day, start), datetime.combine(day, end))
                    for start, end in self.periods(day)
                )
                if workday
                else ()
            )
            found = self.days[day] = (workday, periods)
        return found

    def periods(self, day: date) -> tuple[tuple[time, time], ...]:
        md = (day.month, day.day)
        found = self.hours.get(md)
        if found is None:
            scheme = next((s for s in self.schemes if s.covers(md)), None)
            if scheme is None:
                logger.warning("no active office hours cover %02d-%02d; using the fallback", *md)
            found = self.hours[md] = scheme.periods if scheme else FALLBACK_HOURS
        return found


class _Cache:
    def __init__(self) -> None:
        self.snapshot: _Snapshot | None = None
        self.checked_at = 0.0
        self.lock = threading.Lock()
        self.warned: set[int] = set()
        #: ``CIVICGRID_CALENDAR_RECHECK_SECONDS``, read once (a settings lookup costs a
        #: microsecond); forgotten when the setting changes (tests).
        self.recheck: float | None = None


_cache = _Cache()


@receiver(setting_changed)
def _recheck_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CIVICGRID_CALENDAR_RECHECK_SECONDS":
        _cache.recheck = None


def _recheck_seconds() -> float:
    found = _cache.recheck
    if found is None:
        found = _cache.recheck = float(
            getattr(settings, "CIVICGRID_CALENDAR_RECHECK_SECONDS", DEFAULT_RECHECK_SECONDS)
        )
    return found


def _warn_fallback(year: int) -> None:
    if year in _cache.warned:
        return
    _cache.warned.add(year)
    message = _(
        "%(year)s 年没有官方工作日历数据：该年只按周末计算工作日，节假日和调休未计入。"
        "请导入 %(year)s 年的放假安排（civicgrid calendar import）。"
    ) % {"year": year}
    logger.warning("%s", message)
    warnings.warn(CalendarFallbackWarning(message), stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this module (the caller of the API)."""
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _fingerprint() -> tuple[Any, ...]:
    """Row counts and latest change of the three calendar tables, in one query."""
    quote = connection.ops.quote_name
    parts = []
    for model in (WorkCalendarDay, WorkCalendarYear, OfficeHours):
        table = quote(model._meta.db_table)
        parts.append(f"(SELECT COUNT(*) FROM {table})")  # noqa: S608 - our own table names
        parts.append(f"(SELECT MAX({quote('updated_at')}) FROM {table})")  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        row = cursor.fetchone()
    return tuple(row) if row else ()


def _load(fingerprint: tuple[Any, ...]) -> _Snapshot:
    schemes = []
    for row in OfficeHours.objects.filter(is_active=True).order_by("valid_from", "id"):
        try:
            start, end = parse_month_day(row.valid_from), parse_month_day(row.valid_to)
        except ValueError:
            logger.warning("office hours %r have an invalid period; ignored", row.name)
            continue
        schemes.append(
            _Scheme(
                name=row.name,
                start=start,
                end=end,
                periods=(
                    (row.morning_start, row.morning_end),
                    (row.afternoon_start, row.afternoon_end),
                ),
            )
        )
    return _Snapshot(fingerprint=fingerprint, schemes=tuple(schemes))


def _calendar() -> _Snapshot:
    """This process's calendar, reloaded when the tables' fingerprint has moved."""
    now = monotime.monotonic()
    snap = _cache.snapshot
    recheck = _recheck_seconds()
    if snap is not None and now - _cache.checked_at < recheck:
        return snap
    with _cache.lock:
        snap = _cache.snapshot
        fingerprint = _fingerprint()
        if snap is None or snap.fingerprint != fingerprint:
            snap = _cache.snapshot = _load(fingerprint)
        _cache.checked_at = monotime.monotonic()
        return snap


def invalidate() -> None:
    """Forget this process's calendar and its fallback warnings (tests, after an import)."""
    with _cache.lock:
        _cache.snapshot = None
        _cache.checked_at = 0.0
        _cache.warned.clear()


# -- local time -----------------------------------------------------------------------


def _zone() -> tzinfo:
    return timezone.get_default_timezone()


# ``combine(d.date(), d.time()[, zone])`` is ``d.replace(tzinfo=None | zone)`` (fold
# included), five times faster: ``replace`` parses keyword arguments.
_combine = datetime.combine


def _local(moment: datetime) -> datetime:
    """Naive local wall time of an aware datetime (``timezone.localtime``, inlined)."""
    zone = _zone()
    if moment.tzinfo is not zone:
        if moment.utcoffset() is None:
            raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
        moment = moment.astimezone(zone)
    return _combine(moment.date(), moment.time())


def _aware(naive: datetime) -> datetime:
    """``timezone.make_aware(naive, zone)``, inlined (``naive`` is always naive here)."""
    return _combine(naive.date(), naive.time(), _zone())


def _day(value: date | datetime) -> date:
    if isinstance(value, datetime):
        return _local(value).date() if timezone.is_aware(value) else value.date()
    return value


# -- reads --------------------------------------------------------------------------


def is_workday(day: date | datetime) -> bool:
    """Whether ``day`` (a date, or an aware datetime's local date) is a workday."""
    return _calendar().is_workday(_day(day))


def office_periods(day: date | datetime) -> list[tuple[datetime, datetime]]:
    """The office periods of ``day`` as aware (start, end) pairs; none on a non-workday."""
    day = _day(day)
    cal = _calendar()
    if not cal.is_workday(day):
        return []
    return [
        (_aware(datetime.combine(day, start)), _aware(datetime.combine(day, end)))
        for start, end in cal.periods(day)
    ]


def years_without_data(years: Iterable[int]) -> list[int]:
    """Those of ``years`` that have no official calendar data (no ``WorkCalendarYear``)."""
    wanted = sorted(set(years))
    known = set(WorkCalendarYear.objects.filter(year__in=wanted).values_list("year", flat=True))
    return [year for year in wanted if year not in known]


def _office_time_from(cal: _Snapshot, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Naive local office intervals from ``start`` on, the first one clipped to it."""
    day = start.date()
    for _step in range(MAX_DAYS):
        for begin, end in cal.day(day)[1]:
            if end > start:
                yield max(begin, start), end
        day += ONE_DAY
    raise ValueError(f"no office time within {MAX_DAYS} days after {start:%Y-%m-%d}")


def _add_office_time(start: datetime, amount: timedelta) -> datetime:
    if amount < timedelta(0):
        raise ValueError(f"a time limit cannot be negative: {amount}")
    local = _local(start)
    if not amount:
        return _aware(local)
    remaining = amount
    for begin, end in _office_time_from(_calendar(), local):
        if remaining <= end - begin:
            return _aware(begin + remaining)
        remaining -= end - begin
    raise AssertionError("unreachable: _office_time_from raises first")  # pragma: no cover


# -- deadline arithmetic ----------------------------------------------------------------


def add_working_hours(start: datetime, hours: float | Decimal) -> datetime:
    """``start`` plus ``hours`` of office time on workdays.

    A start outside office hours starts counting at the next office period. 4 hours
    from 17:00 on a summer workday: 17:00–18:00, then 08:30–11:30 the next workday.
    Zero hours give ``start`` back.
    """
    amount = _HOURS.get(hours)
    if amount is None:
        if len(_HOURS) >= 1000:
            _HOURS.clear()
        amount = _HOURS[hours] = timedelta(hours=float(hours))
    return _add_office_time(start, amount)


#: ``timedelta(hours=float(hours))`` of the few time limits there are (a timedelta
#: costs half a microsecond to make).
_HOURS: dict[float | Decimal, timedelta] = {}


def add_working_days(start: datetime, days: int) -> datetime:
    """The end of the afternoon office period of the ``days``-th workday after ``start``.

    Counting starts on the next workday: the day of ``start`` never counts, whatever
    the hour (Civil Code art. 201), and the deadline is the end of office hours of the
    last day (art. 203). Dispatched on Wednesday 2026-09-30 with 5 working days: the
    National Day holiday (10-01 to 10-07) is skipped, the make-up Saturday 10-10
    counts, so the days are 10-08, 10-09, 10-10, 10-12 and 10-13, due 2026-10-13
    17:30. Zero days give ``start`` back.
    """
    if days != int(days) or days < 0:
        raise ValueError(f"working days must be a whole number ≥ 0, got {days!r}")
    local = _local(start)
    if days == 0:
        return _aware(local)
    cal = _calendar()
    day, counted = local.date(), 0
    for _step in range(MAX_DAYS):
        day += ONE_DAY
        workday, periods = cal.day(day)
        if workday:
            counted += 1
            if counted == days:
                return _aware(periods[-1][1])
    raise ValueError(f"{days} working days reach beyond {MAX_DAYS} days")


def add_natural_hours(start: datetime, hours: float | Decimal) -> datetime:
    """``start`` plus ``hours`` of elapsed time (absolute, whatever the wall clock does)."""
    if timezone.is_naive(start):
        raise ValueError(f"a timezone-aware datetime is required, got {start!r}")
    if hours < 0:
        raise ValueError(f"a time limit cannot be negative: {hours}")
    return timezone.localtime(start.astimezone(UTC) + timedelta(hours=float(hours)), _zone())


def due_at(start: datetime, amount: float | Decimal, unit: TimeUnit | str) -> datetime:
    """The deadline of a time limit of ``amount`` ``unit`` starting at ``start``.

    ``amount`` may be a ``Decimal`` (a ``DecimalField``); working days must be whole.
    Also extends a deadline: ``due_at(old_due, extra, unit)``.
    """
    unit = _UNITS.get(unit) or TimeUnit(unit)
    if unit == TimeUnit.WORK_HOURS:
        return add_working_hours(start, amount)
    if unit == TimeUnit.WORK_DAYS:
        if amount != int(amount):
            raise ValueError(f"working days must be a whole number, got {amount!r}")
        return add_working_days(start, int(amount))
    return add_natural_hours(start, amount)


def working_seconds_between(start: datetime, end: datetime) -> float:
    """Office time between two moments, in seconds (negative when ``end`` is earlier).

    The inverse of ``add_working_hours``:
    ``working_seconds_between(s, add_working_hours(s, h)) == h * 3600``.
    """
    local_start, local_end = _local(start), _local(end)
    if local_end < local_start:
        return -working_seconds_between(end, start)
    total = timedelta(0)
    for begin, stop in _office_time_from(_calendar(), local_start):
        if begin >= local_end:
            break
        total += min(stop, local_end) - begin
    return total.total_seconds()


def shift_for_pause(
    due: datetime, paused_from: datetime, resumed_at: datetime, unit: TimeUnit | str
) -> datetime:
    """The deadline ``due`` moved by the time a case was parked (parked time does not count).

    For working-time units (工作时, 工作日) it moves by the office time that elapsed
    while parked, counted forward in office time from ``due``; for natural hours by
    the elapsed time.
    """
    unit = TimeUnit(unit)
    if resumed_at <= paused_from:
        return timezone.localtime(due, _zone())
    if unit == TimeUnit.NATURAL_HOURS:
        return add_natural_hours(due, (resumed_at - paused_from).total_seconds() / 3600)
    parked = working_seconds_between(paused_from, resumed_at)
    return _add_office_time(due, timedelta(seconds=parked))
