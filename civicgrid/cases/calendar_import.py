"""Importing a year's holiday arrangement: ``civicgrid calendar import FILE.csv``.

The State Council publishes the next year's arrangement each November; an admin
types it into a ``date,type,name`` CSV and imports it. The whole file is checked
first and every bad line reported; then it is written in one transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils.translation import gettext as _

from civicgrid.cases.models.workcalendar import CalendarSource, WorkCalendarDay, WorkCalendarYear
from civicgrid.cases.workcalendar import invalidate

_TYPES = {
    "holiday": False,
    "放假": False,
    "节假日": False,
    "workday": True,
    "上班": True,
    "调休上班": True,
}
_HEADERS = {
    "date": "date",
    "日期": "date",
    "type": "type",
    "类型": "type",
    "name": "name",
    "名称": "name",
}
NAME_MAX_LENGTH = WorkCalendarDay._meta.get_field("name").max_length or 100
#: Years a calendar file may speak of (a typo such as 2207 is refused).
FIRST_YEAR, LAST_YEAR = 1949, 2100
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")


class CalendarImportError(Exception):
    """A calendar file with problems; ``errors`` lists every one, with its line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class CalendarRow:
    line: int
    day: date
    is_workday: bool
    name: str


@dataclass(frozen=True)
class YearImport:
    """What an import did to one year."""

    year: int
    added: int
    changed: int
    unchanged: int
    holidays: int
    workdays: int
    newly_known: bool


def decode_calendar_file(data: bytes) -> str:
    """UTF-8 (with or without BOM), or GB18030 as Excel on Chinese Windows writes it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def parse_calendar_csv(text: str) -> list[CalendarRow]:
    """Rows of a ``date,type,name`` CSV; ``CalendarImportError`` lists every bad line.

    ``date`` is ``2027-01-01`` (or ``2027/1/1`` as spreadsheets write it), ``type`` is
    ``holiday`` (放假) or ``workday`` (调休上班, only on a Saturday or Sunday), ``name``
    is optional, e.g. 国庆节. The first line is the header (English or 日期,类型,名称).
    """
    reader = csv.reader(io.StringIO(text))
    errors: list[str] = []
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise CalendarImportError([_("文件是空的：第一行应为表头 date,type,name。")])
    columns = [_HEADERS.get(cell.strip().lower()) for cell in header]
    if "date" not in columns or "type" not in columns or None in columns:
        raise CalendarImportError(
            [
                _(
                    "第 %(line)s 行：表头应为 date,type,name（或 日期,类型,名称），实际为 %(header)s。"
                )
                % {"line": reader.line_num, "header": ",".join(header)}
            ]
        )
    rows: list[CalendarRow] = []
    first_line: dict[date, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            errors.append(_("第 %(line)s 行：列数多于表头。") % {"line": line})
            continue
        values = {col: cells[i].strip() if i < len(cells) else "" for i, col in enumerate(columns)}
        raw_date, raw_type, name = values["date"], values["type"], values.get("name", "")
        day = _parse_date(raw_date)
        if day is None:
            errors.append(
                _("第 %(line)s 行：日期“%(value)s”无效，应如 2027-01-01。")
                % {"line": line, "value": raw_date}
            )
        kind = _TYPES.get(raw_type.lower())
        if kind is None:
            errors.append(
                _(
                    "第 %(line)s 行：类型“%(value)s”无效，应为 holiday（放假）或 workday（调休上班）。"
                )
                % {"line": line, "value": raw_type}
            )
        if len(name) > NAME_MAX_LENGTH:
            errors.append(_("第 %(line)s 行：名称过长。") % {"line": line})
        if day is None or kind is None:
            continue
        if kind and day.weekday() < 5:
            errors.append(
                _("第 %(line)s 行：%(day)s 是周一至周五，不能标为调休上班（类型是否写反了？）。")
                % {"line": line, "day": day.isoformat()}
            )
        if day in first_line:
            errors.append(
                _("第 %(line)s 行：日期 %(day)s 与第 %(first)s 行重复。")
                % {"line": line, "day": day.isoformat(), "first": first_line[day]}
            )
        first_line.setdefault(day, line)
        rows.append(CalendarRow(line=line, day=day, is_workday=kind, name=name))
    if not rows and not errors:
        errors.append(_("文件中没有数据行。"))
    if errors:
        raise CalendarImportError(errors)
    return rows


def _parse_date(value: str) -> date | None:
    match = _DATE.match(value)
    if not match:
        return None
    try:
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None
    return day if FIRST_YEAR <= day.year <= LAST_YEAR else None


def import_calendar(*, rows: Sequence[CalendarRow], note: str = "") -> list[YearImport]:
    """Write holidays and make-up workdays, all or nothing; their years become known.

    Each date is added or updated; rows of the table not in ``rows`` are left alone
    (delete them in the admin). Every year with a row gets a ``WorkCalendarYear``
    (source 文件导入) unless it already has one.
    """
    if len({row.day for row in rows}) != len(rows):
        raise CalendarImportError([_("同一日期出现了多次。")])
    by_year: dict[int, list[CalendarRow]] = {}
    for row in rows:
        by_year.setdefault(row.day.year, []).append(row)
    results = []
    with transaction.atomic():
        existing = {
            day.date: day
            for day in WorkCalendarDay.objects.select_for_update().filter(
                date__in=[row.day for row in rows]
            )
        }
        known = set(
            WorkCalendarYear.objects.filter(year__in=by_year).values_list("year", flat=True)
        )
        for year, year_rows in sorted(by_year.items()):
            added = changed = unchanged = 0
            new = []
            for row in year_rows:
                stored = existing.get(row.day)
                if stored is None:
                    new.append(
                        WorkCalendarDay(date=row.day, is_workday=row.is_workday, name=row.name)
                    )
                    added += 1
                elif (stored.is_workday, stored.name) != (row.is_workday, row.name):
                    stored.is_workday, stored.name = row.is_workday, row.name
                    stored.save(update_fields=["is_workday", "name", "updated_at"])
                    changed += 1
                else:
                    unchanged += 1
            WorkCalendarDay.objects.bulk_create(new)
            if year not in known:
                WorkCalendarYear.objects.create(
                    year=year, source=CalendarSource.IMPORT, note=note[:200]
                )
            results.append(
                YearImport(
                    year=year,
                    added=added,
                    changed=changed,
                    unchanged=unchanged,
                    holidays=sum(1 for row in year_rows if not row.is_workday),
                    workdays=sum(1 for row in year_rows if row.is_workday),
                    newly_known=year not in known,
                )
            )
        transaction.on_commit(invalidate)
    return results
