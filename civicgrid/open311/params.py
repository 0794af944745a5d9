"""Reading the arguments of GET calls: dates, windows, lists and pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from civicgrid.open311.gateway import Call
from civicgrid.open311.render import Open311Error

#: The widest window of GET requests, and the default one (the most recent).
MAX_WINDOW = timedelta(days=90)
#: Rows in one answer unless ``page_size`` asks for fewer.
MAX_ROWS = 1000
#: The most ``service_request_id`` values one call may list.
MAX_IDS = 200


def parse_when(value: str, name: str) -> datetime:
    """An ISO 8601 date-time (without an offset: the platform's time zone) or a date."""
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day: date | None = parse_date(value)
            if day is None:
                raise ValueError(value)
            parsed = datetime.combine(day, time.min)
    except ValueError as exc:
        raise Open311Error(
            400,
            _("%(n)s 不是有效的 ISO 8601 时间：%(v)s（示例 2026-12-08T13:21:00+08:00）")
            % {"n": name, "v": value},
        ) from exc
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def window(call: Call) -> Window:
    """``start_date``/``end_date``: at most 90 days; without them the last 90 days."""
    raw_start, raw_end = call.param("start_date"), call.param("end_date")
    start = parse_when(raw_start, "start_date") if raw_start else None
    end = parse_when(raw_end, "end_date") if raw_end else None
    if start and end:
        if end < start:
            raise Open311Error(400, _("end_date 早于 start_date"))
        if end - start > MAX_WINDOW:
            raise Open311Error(
                400, _("start_date 与 end_date 相隔不能超过 %(d)s 天") % {"d": MAX_WINDOW.days}
            )
        return Window(start, end)
    if start:
        return Window(start, start + MAX_WINDOW)
    if end:
        return Window(end - MAX_WINDOW, end)
    now = timezone.now()
    return Window(now - MAX_WINDOW, now)


def comma_list(call: Call, name: str, *, most: int | None = None) -> list[str]:
    """A comma-separated parameter (also given several times), in order, deduplicated."""
    values: list[str] = []
    for raw in call.param_list(name):
        for part in raw.split(","):
            part = part.strip()
            if part and part not in values:
                values.append(part)
    if most is not None and len(values) > most:
        raise Open311Error(
            400,
            _("%(n)s 一次最多 %(m)s 个，收到 %(c)s 个") % {"n": name, "m": most, "c": len(values)},
        )
    return values


def positive_int(call: Call, name: str, default: int, *, most: int | None = None) -> int:
    raw = call.param(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise Open311Error(400, _("%(n)s 须为正整数：%(v)s") % {"n": name, "v": raw})
    value = int(raw)
    if most is not None and value > most:
        raise Open311Error(400, _("%(n)s 不能超过 %(m)s") % {"n": name, "m": most})
    return value


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page(call: Call) -> Page:
    """``page`` (from 1) and ``page_size`` (at most, and by default, 1,000 rows)."""
    return Page(
        number=positive_int(call, "page", 1, most=1_000_000),
        size=positive_int(call, "page_size", MAX_ROWS, most=MAX_ROWS),
    )


def flag(call: Call, name: str) -> bool:
    return (call.param(name) or "").lower() in {"true", "1", "yes"}
