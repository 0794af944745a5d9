"""The deadline arithmetic's remembered days give what stepping day by day gives.

``workcalendar`` remembers each date's facts (workday, office periods) in its
snapshot of the calendar; here the straightforward algorithm (each day asked of the
calendar, Django's ``localtime``/``make_aware``) is the reference, on many random
inputs across holidays, make-up workdays, the seasons' office hours and zones.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone as dj_timezone
from pytest_django import Settings

from civicgrid.cases import workcalendar
from civicgrid.cases.models import TimeUnit, WorkCalendarDay

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [SHANGHAI, UTC, timezone(timedelta(hours=-4)), ZoneInfo("Europe/Berlin")]


@pytest.fixture(autouse=True)
def _calendar(settings: Settings) -> Iterator[None]:
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600
    workcalendar.invalidate()
    yield
    workcalendar.invalidate()


# -- the reference: day by day, as the module did before it remembered days -----------
def _local(moment: datetime) -> datetime:
    zone = dj_timezone.get_default_timezone()
    return dj_timezone.localtime(moment, zone).replace(tzinfo=None)


def _aware(naive: datetime) -> datetime:
    return dj_timezone.make_aware(naive, dj_timezone.get_default_timezone())


def _office_time_from(start: datetime) -> Iterator[tuple[datetime, datetime]]:
    cal = workcalendar._calendar()
    day = start.date()
    for _step in range(workcalendar.MAX_DAYS):
        if cal.is_workday(day):
            for period_start, period_end in cal.periods(day):
                end = datetime.combine(day, period_end)
                if end > start:
                    yield max(datetime.combine(day, period_start), start), end
        day += timedelta(days=1)


def ref_add_office_time(start: datetime, amount: timedelta) -> datetime:
    local = _local(start)
    if not amount:
        return _aware(local)
    remaining = amount
    for begin, end in _office_time_from(local):
        if remaining <= end - begin:
            return _aware(begin + remaining)
        remaining -= end - begin
    raise AssertionError


def ref_add_working_days(start: datetime, days: int) -> datetime:
    local = _local(start)
    if days == 0:
        return _aware(local)
    cal = workcalendar._calendar()
    day, counted = local.date(), 0
    while True:
        day += timedelta(days=1)
        if cal.is_workday(day):
            counted += 1
            if counted == days:
                return _aware(datetime.combine(day, cal.periods(day)[-1][1]))


def ref_working_seconds_between(start: datetime, end: datetime) -> float:
    local_start, local_end = _local(start), _local(end)
    if local_end < local_start:
        return -ref_working_seconds_between(end, start)
    total = timedelta(0)
    for begin, stop in _office_time_from(local_start):
        if begin >= local_end:
            break
        total += min(stop, local_end) - begin
    return total.total_seconds()


def random_moment(rnd: random.Random) -> datetime:
    base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(
        seconds=rnd.randrange(0, 640 * 86400), microseconds=rnd.choice([0, 0, 500000, 1])
    )
    moment = base.astimezone(rnd.choice(ZONES))
    if rnd.random() < 0.3:  # exactly on an office hour boundary, now and then
        local = moment.astimezone(SHANGHAI)
        hour, minute = rnd.choice([(8, 30), (12, 0), (14, 0), (14, 30), (17, 30), (18, 0)])
        moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment


def same(found: datetime, expected: datetime) -> None:
    assert found == expected
    assert (found.tzinfo, found.fold, found.isoformat()) == (
        expected.tzinfo,
        expected.fold,
        expected.isoformat(),
    )


def test_working_hours_and_days_match_the_day_by_day_reference() -> None:
    rnd = random.Random(20260101)
    for _n in range(1500):
        start = random_moment(rnd)
        hours = rnd.choice([Decimal(0), Decimal("0.5"), Decimal(2), Decimal(4), Decimal(24)])
        if rnd.random() < 0.5:
            hours = Decimal(rnd.randrange(0, 20000)) / 100
        same(
            workcalendar.add_working_hours(start, hours),
            ref_add_office_time(start, timedelta(hours=float(hours))),
        )
        days = rnd.randrange(0, 40)
        same(workcalendar.add_working_days(start, days), ref_add_working_days(start, days))
        end = random_moment(rnd)
        assert workcalendar.working_seconds_between(start, end) == ref_working_seconds_between(
            start, end
        )


def test_due_at_takes_units_as_text_or_members() -> None:
    start = datetime(2026, 9, 30, 10, tzinfo=SHANGHAI)
    for unit in TimeUnit:
        assert workcalendar.due_at(start, 5, unit) == workcalendar.due_at(start, 5, unit.value)
    with pytest.raises(ValueError, match="furlongs"):
        workcalendar.due_at(start, 5, "furlongs")


def test_remembered_days_are_forgotten_with_the_calendar(settings: Settings) -> None:
    monday = datetime(2031, 3, 3, 10, tzinfo=SHANGHAI)  # a year without data: weekends only
    with pytest.warns(workcalendar.CalendarFallbackWarning):
        assert workcalendar.add_working_days(monday, 1).date() == date(2031, 3, 4)
    WorkCalendarDay.objects.create(date=date(2031, 3, 4), is_workday=False, name="test")
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 0  # the next call sees the change
    assert workcalendar.add_working_days(monday, 1).date() == date(2031, 3, 5)


def test_the_days_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workcalendar, "MAX_REMEMBERED_DAYS", 10)
    start = datetime(2026, 3, 2, 10, tzinfo=SHANGHAI)
    assert workcalendar.add_working_days(start, 30) == ref_add_working_days(start, 30)
    assert len(workcalendar._calendar().days) <= 10
