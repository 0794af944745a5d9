"""The work calendar and the deadline arithmetic every case stage uses.

The calendar is the one the migrations seed (chinesecalendar, 2004–2026) with the
default office hours: summer (05-01..09-30) 08:30–12:00 and 14:30–18:00, winter
(10-01..04-30) 08:30–12:00 and 14:00–17:30.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django import DjangoAssertNumQueries, Settings

from civicgrid.cases import workcalendar
from civicgrid.cases.checks import check_work_calendar
from civicgrid.cases.models import (
    CalendarSource,
    OfficeHours,
    TimeUnit,
    WorkCalendarDay,
    WorkCalendarYear,
)
from civicgrid.cases.workcalendar import (
    CalendarFallbackWarning,
    add_natural_hours,
    add_working_days,
    add_working_hours,
    due_at,
    is_workday,
    office_periods,
    shift_for_pause,
    working_seconds_between,
    years_without_data,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """``"2026-09-30 10:00"`` as an aware datetime in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def _fresh_calendar(settings: Settings) -> Iterator[None]:
    """Every test reads the calendar of its own database state, and warns afresh."""
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 0
    # Admin pages with ``{% static %}`` and no collected manifest: the plain storage.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    workcalendar.invalidate()
    yield
    workcalendar.invalidate()


def write_csv(tmp_path: Path, text: str, name: str = "2027.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the real 2026 calendar ------------------------------------------------------------


def test_chinesecalendar_and_the_seeded_table_agree_on_national_day_2026() -> None:
    holiday = [date(2026, 10, d) for d in range(1, 8)]
    workdays = [date(2026, 9, 30), *(date(2026, 10, d) for d in (8, 9, 10, 12, 13))]
    assert all(chinese_calendar.is_holiday(day) for day in holiday)
    assert all(chinese_calendar.is_workday(day) for day in workdays)
    assert date(2026, 10, 10).weekday() == 5  # the make-up Saturday
    assert chinese_calendar.is_holiday(date(2026, 10, 11))  # a plain Sunday
    assert [is_workday(day) for day in holiday] == [False] * 7
    assert [is_workday(day) for day in workdays] == [True] * 6
    assert not is_workday(date(2026, 10, 11))
    stored = WorkCalendarDay.objects.get(date=date(2026, 10, 10))
    assert (stored.is_workday, stored.name) == (True, "国庆节")


def test_the_migration_seeds_every_official_exception_of_2004_to_2026() -> None:
    official = {day: False for day in chinese_calendar.holidays if 2004 <= day.year <= 2026} | {
        day: True for day in chinese_calendar.workdays if 2004 <= day.year <= 2026
    }
    stored = dict(WorkCalendarDay.objects.values_list("date", "is_workday"))
    assert stored == official
    assert years_without_data(range(2004, 2028)) == [2027]
    assert set(WorkCalendarYear.objects.values_list("source", flat=True)) == {
        CalendarSource.CHINESECALENDAR
    }


def test_a_five_working_day_case_dispatched_before_national_day_is_due_on_13_october() -> None:
    # Workdays counted: 10-08 (Thu), 10-09 (Fri), 10-10 (make-up Sat), 10-12, 10-13.
    due = add_working_days(at("2026-09-30 10:00"), 5)
    assert due == at("2026-10-13 17:30")  # the winter scheme applies from 10-01
    assert due.utcoffset() == timedelta(hours=8)
    assert due_at(at("2026-09-30 10:00"), 5, TimeUnit.WORK_DAYS) == due


def test_working_days_count_from_the_next_workday_whatever_the_hour() -> None:
    assert add_working_days(at("2026-11-25 08:00"), 1) == at("2026-11-26 17:30")
    assert add_working_days(at("2026-11-25 23:59"), 1) == at("2026-11-26 17:30")
    # Friday and Saturday starts both count Monday as the first working day.
    assert add_working_days(at("2026-11-20 15:00"), 1) == at("2026-11-23 17:30")
    assert add_working_days(at("2026-11-21 15:00"), 1) == at("2026-11-23 17:30")


def test_a_working_day_deadline_ends_with_the_office_hours_of_its_season() -> None:
    assert add_working_days(at("2026-06-09 09:00"), 1) == at("2026-06-10 18:00")
    assert add_working_days(at("2026-11-24 09:00"), 1) == at("2026-11-25 17:30")


# -- working hours --------------------------------------------------------------------------


def test_four_working_hours_from_17_00_on_a_summer_workday_end_at_11_30_next_morning() -> None:
    # 17:00–18:00 is one hour, then 08:30 + 3 h on the next workday.
    assert add_working_hours(at("2026-06-10 17:00"), 4) == at("2026-06-11 11:30")
    # From a Friday the next workday is Monday.
    assert add_working_hours(at("2026-06-12 17:00"), 4) == at("2026-06-15 11:30")


def test_a_start_on_a_holiday_counts_from_the_first_morning_after_it() -> None:
    assert add_working_hours(at("2026-10-03 10:00"), 2) == at("2026-10-08 10:30")


def test_a_start_on_a_weekend_counts_from_monday_morning() -> None:
    assert add_working_hours(at("2026-11-21 10:00"), 2) == at("2026-11-23 10:30")


def test_a_make_up_saturday_is_a_working_day_with_office_hours() -> None:
    assert add_working_hours(at("2026-10-10 09:00"), 2) == at("2026-10-10 11:00")
    assert add_working_days(at("2026-10-09 09:00"), 1) == at("2026-10-10 17:30")
    assert [p[0].time() for p in office_periods(date(2026, 10, 10))] == [time(8, 30), time(14)]


def test_a_start_before_08_30_counts_from_08_30() -> None:
    assert add_working_hours(at("2026-11-24 06:45"), 1) == at("2026-11-24 09:30")


def test_a_start_at_lunch_counts_from_the_afternoon_period_of_its_season() -> None:
    assert add_working_hours(at("2026-06-10 12:30"), 1) == at("2026-06-10 15:30")  # summer
    assert add_working_hours(at("2026-11-24 12:30"), 1) == at("2026-11-24 15:00")  # winter


def test_a_deadline_ending_with_a_period_is_due_at_its_end_not_at_the_next_start() -> None:
    assert add_working_hours(at("2026-11-24 08:30"), 3.5) == at("2026-11-24 12:00")
    assert add_working_hours(at("2026-11-24 08:30"), 7) == at("2026-11-24 17:30")


def test_summer_and_winter_office_hours_meet_on_1_october() -> None:
    assert office_periods(date(2026, 9, 30)) == [
        (at("2026-09-30 08:30"), at("2026-09-30 12:00")),
        (at("2026-09-30 14:30"), at("2026-09-30 18:00")),
    ]
    assert office_periods(date(2026, 10, 8))[1] == (at("2026-10-08 14:00"), at("2026-10-08 17:30"))
    assert office_periods(date(2026, 10, 1)) == []  # a holiday
    # 17:00–18:00 on the last summer day, then the first winter morning after the holiday.
    assert add_working_hours(at("2026-09-30 17:00"), 2) == at("2026-10-08 09:30")


def test_due_at_dispatches_each_unit_and_takes_decimal_amounts() -> None:
    start = at("2026-11-24 16:00")
    assert due_at(start, Decimal("4.00"), "work_hours") == at("2026-11-25 11:00")
    assert due_at(start, Decimal("2"), TimeUnit.WORK_DAYS) == at("2026-11-26 17:30")
    assert due_at(start, 24, TimeUnit.NATURAL_HOURS) == at("2026-11-25 16:00")
    assert due_at(start, 0, TimeUnit.WORK_HOURS) == start
    with pytest.raises(ValueError, match="whole number"):
        due_at(start, Decimal("1.5"), TimeUnit.WORK_DAYS)
    assert [str(label) for label in TimeUnit.labels] == ["工作时", "工作日", "自然小时"]


def test_natural_hours_run_through_nights_weekends_and_holidays() -> None:
    assert add_natural_hours(at("2026-10-01 20:00"), 6) == at("2026-10-02 02:00")
    utc = datetime(2026, 10, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
    result = add_natural_hours(utc, 2)
    assert result == at("2026-10-01 22:00")
    assert result.tzinfo == SHANGHAI or str(result.tzinfo) == "Asia/Shanghai"


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_hours(datetime(2026, 11, 24, 9), 1)


# -- working time elapsed, and parking ------------------------------------------------------


def test_working_seconds_between_counts_office_time_only() -> None:
    # Friday 17:00 to Monday 09:00 in winter: 17:00–17:30 and 08:30–09:00.
    assert working_seconds_between(at("2026-11-20 17:00"), at("2026-11-23 09:00")) == 3600
    assert working_seconds_between(at("2026-11-23 09:00"), at("2026-11-20 17:00")) == -3600
    assert working_seconds_between(at("2026-10-01 00:00"), at("2026-10-08 00:00")) == 0


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 11, 30)),
    hours=st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda h: round(h, 3)),
)
def test_working_seconds_between_is_the_inverse_of_add_working_hours(
    settings: Settings, start: datetime, hours: float
) -> None:
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 3600
    start = start.replace(tzinfo=SHANGHAI)
    due = add_working_hours(start, hours)
    assert due >= start
    assert working_seconds_between(start, due) == pytest.approx(hours * 3600, abs=1e-3)
    if hours:
        # The deadline falls within (or at the end of) an office period of a workday.
        periods = office_periods(due)
        assert any(begin < due <= end for begin, end in periods)


def test_parked_office_time_moves_a_working_time_deadline() -> None:
    due = at("2026-11-23 16:00")
    # Parked Monday 10:00 to Tuesday 10:00: 2 + 3.5 + 1.5 = 7 working hours.
    moved = shift_for_pause(due, at("2026-11-23 10:00"), at("2026-11-24 10:00"), "work_hours")
    assert moved == at("2026-11-24 16:00")
    assert shift_for_pause(
        due, at("2026-11-23 10:00"), at("2026-11-24 10:00"), TimeUnit.WORK_DAYS
    ) == at("2026-11-24 16:00")


def test_parking_over_a_weekend_costs_only_the_office_time_it_covered() -> None:
    due = at("2026-11-25 17:30")
    moved = shift_for_pause(due, at("2026-11-20 17:00"), at("2026-11-23 09:00"), "work_days")
    assert moved == at("2026-11-26 09:30")  # one working hour later


def test_parked_time_moves_a_natural_hour_deadline_by_the_elapsed_time() -> None:
    due = at("2026-11-23 16:00")
    moved = shift_for_pause(
        due, at("2026-11-21 10:00"), at("2026-11-22 12:30"), TimeUnit.NATURAL_HOURS
    )
    assert moved == at("2026-11-24 18:30")


def test_a_pause_that_did_not_last_leaves_the_deadline_alone() -> None:
    due = at("2026-11-23 16:00")
    assert shift_for_pause(due, at("2026-11-23 10:00"), at("2026-11-23 10:00"), "work_hours") == due


# -- a year without data ---------------------------------------------------------------------


def test_a_year_without_data_falls_back_to_weekends_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="civicgrid.cases.workcalendar"),
        pytest.warns(CalendarFallbackWarning, match="2027"),
    ):
        assert is_workday(date(2027, 1, 1))  # a Friday; no holiday known
    assert "2027" in caplog.text
    assert not is_workday(date(2027, 1, 2))  # Saturday
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarFallbackWarning)
        # Once per year and process: no second warning, and no exception either.
        assert add_working_days(at("2026-12-31 10:00"), 1) == at("2027-01-01 17:30")
        assert add_working_hours(at("2027-01-01 17:00"), 1) == at("2027-01-04 09:00")


def test_the_system_check_reports_next_year_without_data() -> None:
    with time_machine.travel(at("2026-11-26 10:00"), tick=False):
        found = check_work_calendar()
    assert [(m.id, str(m.obj)) for m in found] == [("cases.W002", "WorkCalendarYear(2027)")]
    assert "2027" in str(found[0].msg)
    with time_machine.travel(at("2027-03-01 10:00"), tick=False):
        ids = [m.id for m in check_work_calendar()]
    assert ids == ["cases.W001", "cases.W002"]  # 2027 this year, 2028 next


def test_the_system_check_reports_office_hours_that_leave_a_gap() -> None:
    OfficeHours.objects.filter(name="冬季作息").update(is_active=False)
    ids = [m.id for m in check_work_calendar()]
    assert "cases.W003" in ids
    # And the arithmetic still runs, on the fallback hours.
    assert add_working_hours(at("2026-11-24 17:00"), 1) == at("2026-11-25 09:00")


# -- import -----------------------------------------------------------------------------------

SAMPLE_2027 = """date,type,name
2027-01-01,holiday,元旦
2027-02-05,holiday,春节
2027-02-08,holiday,春节
2027/2/20,workday,春节
"""


def test_importing_a_2027_file_makes_2027_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path, SAMPLE_2027)
    call_command("calendar", "import", str(path))
    assert "2027" in capsys.readouterr().out
    year = WorkCalendarYear.objects.get(year=2027)
    assert year.source == CalendarSource.IMPORT
    assert years_without_data([2026, 2027]) == []
    with time_machine.travel(at("2026-11-26 10:00"), tick=False):
        assert check_work_calendar() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarFallbackWarning)
        assert not is_workday(date(2027, 1, 1))
        assert not is_workday(date(2027, 2, 8))  # a Monday off
        assert is_workday(date(2027, 2, 20))  # a make-up Saturday
    # Importing again changes nothing.
    call_command("calendar", "import", str(path))
    assert WorkCalendarDay.objects.filter(date__year=2027).count() == 4


def test_an_import_with_bad_rows_is_refused_with_line_numbers_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = write_csv(
        tmp_path,
        "date,type,name\n"
        "2027-01-01,holiday,元旦\n"
        "2027-02-30,holiday,春节\n"
        "2027-02-08,day-off,春节\n"
        "2027-02-09,workday,春节\n"
        "2027-01-01,holiday,元旦\n",
    )
    with pytest.raises(CommandError) as refused:
        call_command("calendar", "import", str(path))
    errors = str(refused.value).splitlines()[1:]
    assert [line.split("：")[0] for line in errors] == ["第 3 行", "第 4 行", "第 5 行", "第 6 行"]
    assert "2027-02-30" in errors[0]
    assert "day-off" in errors[1]
    assert "周一至周五" in errors[2]  # a make-up workday on a Tuesday
    assert "第 2 行重复" in errors[3]
    assert not WorkCalendarDay.objects.filter(date__year=2027).exists()
    assert not WorkCalendarYear.objects.filter(year=2027).exists()


def test_an_import_reads_a_spreadsheet_export_in_gb18030_with_chinese_headers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "2027.csv"
    path.write_bytes("日期,类型,名称\r\n2027/1/1,放假,元旦\r\n".encode("gb18030"))
    call_command("calendar", "import", str(path))
    assert WorkCalendarDay.objects.get(date=date(2027, 1, 1)).name == "元旦"


def test_calendar_show_lists_a_years_exceptions(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("calendar", "show", "2026")
    out = capsys.readouterr().out
    assert "2026-10-10  周六  调休上班  国庆节" in out
    assert "2026-10-01  周四  法定节假日（放假）  国庆节" in out
    call_command("calendar", "show", "2027")
    assert "没有官方日历数据" in capsys.readouterr().out


# -- the per-process cache and the admin ---------------------------------------------------


def test_the_cache_sees_a_holiday_added_in_the_admin(admin_client: Client) -> None:
    day = date(2026, 12, 1)  # a Tuesday
    assert is_workday(day)
    response = admin_client.post(
        "/admin/cases/workcalendarday/add/",
        {"date": "2026-12-01", "is_workday": "False", "name": "临时放假"},
    )
    assert response.status_code == 302, response.content.decode()
    assert not is_workday(day)
    assert add_working_hours(at("2026-11-30 17:00"), 1) == at("2026-12-02 09:00")


def test_the_admin_refuses_a_make_up_workday_on_a_weekday(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/cases/workcalendarday/add/",
        {"date": "2026-12-01", "is_workday": "True", "name": "调休"},
    )
    assert response.status_code == 200
    assert "调休上班日应为周六或周日" in response.content.decode()


def test_the_admin_refuses_a_second_active_scheme_for_the_same_period(
    admin_client: Client,
) -> None:
    response = admin_client.post(
        "/admin/cases/officehours/add/",
        {
            "name": "新作息",
            "valid_from": "07-01",
            "valid_to": "08-31",
            "morning_start": "09:00",
            "morning_end": "12:00",
            "afternoon_start": "13:00",
            "afternoon_end": "17:00",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert "夏季作息" in response.content.decode()
    assert not OfficeHours.objects.filter(name="新作息").exists()


def test_the_calendar_pages_show_the_missing_year(admin_client: Client) -> None:
    with time_machine.travel(at("2026-11-26 10:00"), tick=False):
        response = admin_client.get("/admin/cases/workcalendaryear/", follow=True)
    body = response.content.decode()
    assert "2027 年没有工作日历数据" in body
    assert admin_client.get("/admin/cases/officehours/").status_code == 200
    assert admin_client.get("/admin/cases/workcalendarday/?date__year=2026").status_code == 200


def test_a_warm_cache_computes_deadlines_without_a_query_per_day(
    settings: Settings, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    add_working_days(at("2026-09-30 10:00"), 30)  # loads 2026 and the office hours
    with django_assert_num_queries(1):  # the fingerprint check, nothing per day
        assert add_working_days(at("2026-09-30 10:00"), 30) == at("2026-11-17 17:30")
    settings.CIVICGRID_CALENDAR_RECHECK_SECONDS = 60
    add_working_days(at("2026-09-30 10:00"), 1)
    with django_assert_num_queries(0):
        add_working_hours(at("2026-09-30 10:00"), 100)
        working_seconds_between(at("2026-01-01 00:00"), at("2026-12-31 00:00"))
