"""Seed the work calendar: official holidays and make-up workdays of 2004–2026 from
the chinesecalendar package, and the default office hours (summer and winter)."""

import datetime

from django.db import migrations

FIRST_YEAR, LAST_YEAR = 2004, 2026

# chinesecalendar's short Chinese names, completed as the State Council writes them.
NAMES = {
    "清明": "清明节",
    "端午": "端午节",
    "中秋": "中秋节",
    "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日": "抗战胜利70周年纪念日",
}


def _name(value):
    from chinese_calendar import Holiday

    chinese = Holiday(value).chinese
    return NAMES.get(chinese, chinese)


def seed(apps, schema_editor):
    import chinese_calendar

    WorkCalendarDay = apps.get_model("cases", "WorkCalendarDay")
    WorkCalendarYear = apps.get_model("cases", "WorkCalendarYear")
    OfficeHours = apps.get_model("cases", "OfficeHours")
    alias = schema_editor.connection.alias

    def in_range(day):
        return FIRST_YEAR <= day.year <= LAST_YEAR

    rows = [
        WorkCalendarDay(date=day, is_workday=False, name=_name(value))
        for day, value in chinese_calendar.holidays.items()
        if in_range(day)
    ]
    rows += [
        WorkCalendarDay(date=day, is_workday=True, name=_name(value))
        for day, value in chinese_calendar.workdays.items()
        if in_range(day)
    ]
    existing = set(WorkCalendarDay.objects.using(alias).values_list("date", flat=True))
    WorkCalendarDay.objects.using(alias).bulk_create(
        sorted((row for row in rows if row.date not in existing), key=lambda row: row.date)
    )
    version = getattr(chinese_calendar, "__version__", "?")
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        WorkCalendarYear.objects.using(alias).get_or_create(
            year=year,
            defaults={"source": "chinesecalendar", "note": f"chinesecalendar {version}"},
        )
    if not OfficeHours.objects.using(alias).exists():
        OfficeHours.objects.using(alias).bulk_create(
            [
                OfficeHours(
                    name="夏季作息",
                    valid_from="05-01",
                    valid_to="09-30",
                    morning_start=datetime.time(8, 30),
                    morning_end=datetime.time(12, 0),
                    afternoon_start=datetime.time(14, 30),
                    afternoon_end=datetime.time(18, 0),
                ),
                OfficeHours(
                    name="冬季作息",
                    valid_from="10-01",
                    valid_to="04-30",
                    morning_start=datetime.time(8, 30),
                    morning_end=datetime.time(12, 0),
                    afternoon_start=datetime.time(14, 0),
                    afternoon_end=datetime.time(17, 30),
                ),
            ]
        )


def unseed(apps, schema_editor):
    WorkCalendarDay = apps.get_model("cases", "WorkCalendarDay")
    WorkCalendarYear = apps.get_model("cases", "WorkCalendarYear")
    OfficeHours = apps.get_model("cases", "OfficeHours")
    alias = schema_editor.connection.alias
    WorkCalendarYear.objects.using(alias).filter(source="chinesecalendar").delete()
    WorkCalendarDay.objects.using(alias).filter(date__year__gte=FIRST_YEAR, date__year__lte=LAST_YEAR).delete()
    OfficeHours.objects.using(alias).filter(name__in=["夏季作息", "冬季作息"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
