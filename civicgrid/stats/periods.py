"""The period a statistics page shows, read from its query string.

``period`` is ``today``, ``week``, ``month`` (the default) or ``year`` — the one
containing ``date`` (default: today, Asia/Shanghai) — or ``custom`` with ``from`` and
``to`` (both included). Dates are ``YYYY-MM-DD``. Anything else is a ``PeriodError``
whose message says what is wrong (the pages answer 400 with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext as _

from civicgrid.stats.query import period_bounds

KINDS = ("today", "week", "month", "year", "custom")
DEFAULT_KIND = "month"
#: Dates outside these years are refused (they would be typing errors).
FIRST_YEAR, LAST_YEAR = 1990, 2200
#: The longest custom period, in days (about three years: the trend by day stays small).
MAX_DAYS = 1100
#: The trend's grain: by day up to this many days, by week up to ``WEEKLY_DAYS``, then by month.
DAILY_DAYS = 62
WEEKLY_DAYS = 190


class PeriodError(ValueError):
    """A period that cannot be read; ``str()`` is the message for the user."""


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date
    #: The day the period was chosen around (``date``; for custom, ``to``).
    anchor: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def grain(self) -> str:
        """The trend's buckets for a period this long."""
        if self.days <= DAILY_DAYS:
            return "day"
        return "week" if self.days <= WEEKLY_DAYS else "month"

    def params(self) -> dict[str, str]:
        """The query string that gives this period back."""
        if self.kind == "custom":
            return {"period": "custom", "from": self.start.isoformat(), "to": self.end.isoformat()}
        return {"period": self.kind, "date": self.anchor.isoformat()}

    def label(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()} ~ {self.end.isoformat()}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "date": self.anchor.isoformat(),
            "days": self.days,
            "label": self.label(),
            "grain": self.grain(),
        }


def _date(params: Mapping[str, str], name: str, label: str, default: date | None) -> date:
    raw = (params.get(name) or "").strip()
    if not raw:
        if default is None:
            raise PeriodError(_("自定义时段需要填写%(label)s。") % {"label": label})
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(
            _("%(label)s的格式应为 YYYY-MM-DD，收到的是“%(value)s”。")
            % {"label": label, "value": raw[:40]}
        ) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise PeriodError(
            _("%(label)s应在 %(first)d 年至 %(last)d 年之间。")
            % {"label": label, "first": FIRST_YEAR, "last": LAST_YEAR}
        )
    return day


def parse_period(params: Mapping[str, str], *, today: date) -> Period:
    """The period of a query string (``period``, ``date``, ``from``, ``to``)."""
    kind = (params.get("period") or DEFAULT_KIND).strip()
    if kind not in KINDS:
        raise PeriodError(
            _("未知的统计时段“%(kind)s”，可选：%(kinds)s。")
            % {"kind": kind[:40], "kinds": "、".join(KINDS)}
        )
    if kind == "custom":
        start = _date(params, "from", _("开始日期"), None)
        end = _date(params, "to", _("结束日期"), None)
        if start > end:
            raise PeriodError(_("开始日期不能晚于结束日期。"))
        if (end - start).days + 1 > MAX_DAYS:
            raise PeriodError(_("自定义时段最长 %(n)d 天。") % {"n": MAX_DAYS})
        return Period("custom", start, end, end)
    anchor = _date(params, "date", _("日期"), today)
    start, end = period_bounds("day" if kind == "today" else kind, anchor)
    return Period(kind, start, end, anchor)
