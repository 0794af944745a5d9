"""``civicgrid calendar``: import a year's holiday arrangement, or show one.

civicgrid calendar import 2027.csv      # columns date,type(holiday|workday),name
civicgrid calendar show 2027
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from civicgrid.cases.calendar_import import (
    CalendarImportError,
    decode_calendar_file,
    import_calendar,
    parse_calendar_csv,
)
from civicgrid.cases.models.workcalendar import OfficeHours, WorkCalendarDay, WorkCalendarYear

WEEKDAYS = [
    _lazy("周一"),
    _lazy("周二"),
    _lazy("周三"),
    _lazy("周四"),
    _lazy("周五"),
    _lazy("周六"),
    _lazy("周日"),
]
#: A year's arrangement has 22–33 holiday dates (2004–2026); fewer suggests a partial file.
FEW_HOLIDAYS = 20


class Command(BaseCommand):
    help = "Import a year's official holidays and make-up workdays from CSV, or list a year's."
    # The calendar checks would only repeat what this command is about to fix or show.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import",
            help="import a CSV with columns date,type(holiday|workday),name; all or nothing",
        )
        imp.add_argument("file", help="CSV file (UTF-8 or GB18030)")
        imp.add_argument("--note", default="", help="note recorded on newly known years")
        show = sub.add_parser("show", help="list a year's holidays and make-up workdays")
        show.add_argument("year", type=int, nargs="?", help="the year (default: this year)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "import":
            self.import_file(Path(options["file"]), note=options["note"])
        else:
            self.show(options["year"] or timezone.localdate().year)

    def import_file(self, path: Path, *, note: str) -> None:
        try:
            text = decode_calendar_file(path.read_bytes())
        except OSError as exc:
            raise CommandError(
                _("无法读取 %(path)s：%(error)s") % {"path": path, "error": exc}
            ) from exc
        try:
            rows = parse_calendar_csv(text)
            results = import_calendar(rows=rows, note=note or _("导入自 %s") % path.name)
        except CalendarImportError as exc:
            raise CommandError(
                _("%(path)s 有 %(n)s 处错误，未写入任何数据：\n%(errors)s")
                % {"path": path, "n": len(exc.errors), "errors": "\n".join(exc.errors)}
            ) from exc
        for result in results:
            line = _(
                "%(year)s 年：新增 %(added)s 天，更新 %(changed)s 天，未变 %(unchanged)s 天"
                "（文件中放假 %(holidays)s 天，调休上班 %(workdays)s 天）。"
            ) % {
                "year": result.year,
                "added": result.added,
                "changed": result.changed,
                "unchanged": result.unchanged,
                "holidays": result.holidays,
                "workdays": result.workdays,
            }
            if result.newly_known:
                line += _("该年已标记为有官方数据。")
            self.stdout.write(self.style.SUCCESS(line))
            if result.newly_known and result.holidays < FEW_HOLIDAYS:
                self.stdout.write(
                    self.style.WARNING(
                        _("请核对：一年的放假日期通常在 22 天以上，文件中只有 %(n)s 天。")
                        % {"n": result.holidays}
                    )
                )

    def show(self, year: int) -> None:
        record = WorkCalendarYear.objects.filter(year=year).first()
        if record is None:
            self.stdout.write(
                self.style.WARNING(
                    _("%(year)s 年没有官方日历数据：期限只按周末计算。") % {"year": year}
                )
            )
        else:
            self.stdout.write(
                _("%(year)s 年：%(source)s %(note)s")
                % {"year": year, "source": record.get_source_display(), "note": record.note}
            )
        days = list(WorkCalendarDay.objects.filter(date__year=year).order_by("date"))
        for day in days:
            self.stdout.write(
                f"{day.date.isoformat()}  {WEEKDAYS[day.date.weekday()]}  "
                f"{day.get_is_workday_display()}  {day.name}".rstrip()
            )
        holidays = [day for day in days if not day.is_workday]
        on_weekdays = sum(1 for day in holidays if day.date.weekday() < 5)
        self.stdout.write(
            _(
                "共 %(holidays)s 天放假（其中 %(weekdays)s 天在周一至周五），"
                "%(workdays)s 天调休上班。"
            )
            % {
                "holidays": len(holidays),
                "weekdays": on_weekdays,
                "workdays": len(days) - len(holidays),
            }
        )
        for scheme in OfficeHours.objects.filter(is_active=True):
            self.stdout.write(
                _("作息：%(scheme)s 上午 %(ms)s–%(me)s，下午 %(as)s–%(ae)s")
                % {
                    "scheme": scheme,
                    "ms": f"{scheme.morning_start:%H:%M}",
                    "me": f"{scheme.morning_end:%H:%M}",
                    "as": f"{scheme.afternoon_start:%H:%M}",
                    "ae": f"{scheme.afternoon_end:%H:%M}",
                }
            )
