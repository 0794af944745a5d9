"""One row of an export, checked and turned into what a case needs.

``Columns.find`` places the mapping's fields on the file's header (a required field
without a column refuses the whole file before anything is read); ``parse_row``
checks every cell of a row and returns a ``Row`` with all its ``problems``, each
naming the column and the reason, so that a refused row can be fixed at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django.utils.translation import gettext as _

from civicgrid.cases.models import Status
from civicgrid.exchange.mapping import (
    FALSE_WORDS,
    FIELDS,
    REQUIRED,
    TIME_FIELDS,
    TRUE_WORDS,
    Mapping,
    key,
)

HISTORICAL, LIVE = "historical", "live"
#: Statuses whose story needs a lead unit (they were dispatched).
DISPATCHED_STATUSES = frozenset(
    {Status.DISPATCHED, Status.IN_PROGRESS, Status.HANDLED, Status.CLOSED}
)

ISO_SECONDS = "%Y-%m-%d %H:%M:%S"
_ISO_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
_ISO_T = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_PHONE_SEPARATORS = re.compile(r"[/、,，;；]")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
_PHONE_EXTENSION = re.compile(r"(?:转|ext\.?|x|#)\d{1,6}$", re.IGNORECASE)
_PHONE = re.compile(
    r"^(?:1[3-9][\d*]{9}"  # mobile, maybe masked (138****5678)
    r"|0[1-9][\d*]{8,10}"  # landline with its area code
    r"|[2-9][\d*]{6,7}"  # local number
    r"|(?:400|800)\d{7}"  # service numbers
    r"|1\d{4}|9\d{4})$"  # 12345, 95598 …
)


class HeaderError(Exception):
    """The file's header lacks a column the mapping requires."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Problem:
    column: str
    reason: str


@dataclass
class Row:
    number: int
    cells: list[Any]
    problems: list[Problem] = field(default_factory=list)
    external_id: str = ""
    received_at: datetime | None = None
    category_id: int | None = None
    description: str = ""
    title: str = ""
    request_type: str = ""
    urgency: str = ""
    address: str = ""
    lon: float | None = None
    lat: float | None = None
    grid_code: str = ""
    requester_name: str = ""
    requester_phone: str = ""
    confidential: bool = False
    unit_id: int | None = None
    status: str = Status.NEW
    times: dict[str, datetime] = field(default_factory=dict)
    reply: str = ""
    satisfaction: int | None = None
    followed_up_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Columns:
    """Where each mapped field is in the file: its index and the header it has there."""

    index: dict[str, int]
    header: dict[str, str]

    @classmethod
    def find(cls, headers: list[str], mapping: Mapping) -> Columns:
        position: dict[str, int] = {}
        for i, name in enumerate(headers):
            position.setdefault(key(name), i)
        index: dict[str, int] = {}
        header: dict[str, str] = {}
        problems = []
        for name, candidates in mapping.columns.items():
            for candidate in candidates:
                if key(candidate) in position:
                    index[name] = position[key(candidate)]
                    header[name] = candidate
                    break
            else:
                if name in REQUIRED:
                    problems.append(
                        _("文件缺少必需的列“%(c)s”（%(f)s），未导入任何数据")
                        % {"c": "”或“".join(candidates), "f": FIELDS[name]}
                    )
        if problems:
            raise HeaderError(problems)
        return cls(index, header)

    def label(self, name: str) -> str:
        return self.header.get(name, FIELDS[name])


def text(value: Any) -> str:
    if type(value) is str:  # most cells of a CSV: the fast path
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).strip()


def parse_time(value: Any, mapping: Mapping) -> datetime | None:
    """A cell as an aware datetime (naive ones are in the mapping's time zone)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        raw = text(value)
        if not raw:
            return None
        raw = raw.replace("T", " ") if _ISO_T.match(raw) else raw
        found: datetime | None = None
        formats = mapping.date_formats
        if formats and formats[0] == ISO_SECONDS and _ISO_SECONDS.match(raw):
            # What strptime with that format gives, several times faster.
            try:
                found = datetime.fromisoformat(raw)
            except ValueError:
                found = None
        for fmt in formats if found is None else ():
            try:
                found = datetime.strptime(raw, fmt)
                break
            except ValueError:
                continue
        if found is None:
            try:
                found = datetime.fromisoformat(raw)
            except ValueError:
                raise ValueError(raw) from None
        moment = found
    if moment.tzinfo is None:
        # moment.replace(tzinfo=…), fold included, without parsing keyword arguments
        moment = datetime.combine(moment.date(), moment.time(), mapping.timezone)
    return moment


def valid_phone(value: str) -> bool:
    for part in _PHONE_SEPARATORS.split(value):
        number = _PHONE_NOISE.sub("", part)
        if not number:
            continue
        number = _PHONE_EXTENSION.sub("", number)
        number = re.sub(r"^(?:\+86|0086|86(?=1\d{10}$))", "", number)
        if not _PHONE.match(number):
            return False
    return True


def parse_row(
    number: int, cells: list[Any], columns: Columns, mapping: Mapping, *, mode: str
) -> Row:
    row = Row(number=number, cells=cells)

    def cell(name: str) -> Any:
        i = columns.index.get(name)
        if i is None or i >= len(cells):
            return ""
        return cells[i]

    def bad(name: str, reason: str) -> None:
        row.problems.append(Problem(columns.label(name), reason))

    for name in ("external_id", "description", "category"):
        if not text(cell(name)):
            bad(name, _("必填项为空"))
    row.external_id = text(cell("external_id"))
    if len(row.external_id) > 64:
        bad("external_id", _("工单编号超过 64 个字符"))
    row.description = text(cell("description"))
    row.title = text(cell("title"))[:200]
    row.address = text(cell("address"))[:300]
    row.requester_name = text(cell("requester_name"))[:50]
    row.grid_code = text(cell("grid_code"))

    category = key(text(cell("category")))
    if category:
        row.category_id = mapping.category_of(category)
        if row.category_id is None:
            bad(
                "category",
                _("未知的问题分类“%(v)s”：请在映射文件 [values.category] 中把它对应到小类编码")
                % {"v": category},
            )

    try:
        row.received_at = parse_time(cell("received_at"), mapping)
        if row.received_at is None:
            bad("received_at", _("必填项为空"))
    except ValueError:
        bad("received_at", _("无法识别的时间“%(v)s”") % {"v": text(cell("received_at"))})

    # The messages are translated only for a row that needs them (gettext is not free).
    unknown = _choice(
        row,
        "request_type",
        key(text(cell("request_type"))),
        mapping.request_types,
        mapping.default_request_type,
    )
    if unknown:
        bad("request_type", _("未知的诉求类型“%(v)s”") % {"v": unknown})
    unknown = _choice(
        row, "urgency", key(text(cell("urgency"))), mapping.urgencies, mapping.default_urgency
    )
    if unknown:
        bad("urgency", _("未知的紧急程度“%(v)s”") % {"v": unknown})

    _coordinates(row, cell("lon"), cell("lat"), bad)

    phone = text(cell("requester_phone"))
    if phone and not valid_phone(phone):
        bad("requester_phone", _("电话号码“%(v)s”格式不对") % {"v": phone})
    row.requester_phone = phone[:30]

    confidential = key(text(cell("confidential"))).lower()
    if confidential in TRUE_WORDS:
        row.confidential = True
    elif confidential not in FALSE_WORDS:
        bad("confidential", _("“%(v)s”不是 是/否") % {"v": confidential})

    if mode == HISTORICAL:
        _history(row, cell, bad, mapping)
    return row


def _choice(row: Row, name: str, value: str, table: dict[str, str], default: str) -> str:
    """Set ``name`` to what ``value`` stands for in ``table`` (``default`` when empty);
    an unknown ``value`` is returned (else "")."""
    if not value:
        setattr(row, name, default)
    elif value in table:
        setattr(row, name, table[value])
    else:
        return value
    return ""


def _coordinates(row: Row, lon: Any, lat: Any, bad: Any) -> None:
    lon_text, lat_text = text(lon), text(lat)
    if not lon_text and not lat_text:
        return
    try:
        x = float(lon_text)
    except ValueError:
        bad("lon", _("经度“%(v)s”不是数字") % {"v": lon_text})
        return
    try:
        y = float(lat_text)
    except ValueError:
        bad("lat", _("纬度“%(v)s”不是数字") % {"v": lat_text})
        return
    if x == 0 and y == 0:
        return  # exports write 0,0 for "no position"
    if not (-180 <= x <= 180) or not (-90 <= y <= 90):
        bad("lon", _("坐标 (%(x)s, %(y)s) 超出经纬度范围") % {"x": lon_text, "y": lat_text})
        return
    row.lon, row.lat = x, y


def _history(row: Row, cell: Any, bad: Any, mapping: Mapping) -> None:
    for name in (*TIME_FIELDS[1:], "followed_up_at"):
        try:
            moment = parse_time(cell(name), mapping)
        except ValueError:
            bad(name, _("无法识别的时间“%(v)s”") % {"v": text(cell(name))})
            continue
        if moment is None:
            continue
        if name == "followed_up_at":
            row.followed_up_at = moment
        else:
            row.times[name] = moment

    status = key(text(cell("status")))
    if status:
        if status in mapping.statuses:
            row.status = mapping.statuses[status]
        else:
            bad(
                "status",
                _("未知的工单状态“%(v)s”：请在映射文件 [values.status] 中对应") % {"v": status},
            )
    elif mapping.default_status:
        row.status = mapping.default_status
    else:
        row.status = Status.CLOSED if "closed_at" in row.times else Status.NEW

    # Times in the order things happen.
    previous_name, previous = "received_at", row.received_at
    for name in TIME_FIELDS[1:]:
        moment = row.times.get(name)
        if moment is None:
            continue
        if previous is not None and moment < previous:
            bad(
                name,
                _("%(a)s早于%(b)s") % {"a": FIELDS[name], "b": FIELDS[previous_name]},
            )
        previous_name, previous = name, moment
    if row.status == Status.CLOSED and "closed_at" not in row.times:
        bad("closed_at", _("已办结的工单须有办结时间"))

    unit = key(text(cell("unit")))
    if unit:
        row.unit_id = mapping.units.get(unit)
        if row.unit_id is None and row.status in DISPATCHED_STATUSES:
            bad(
                "unit",
                _("未知的承办单位“%(v)s”：请在映射文件 [values.unit] 中对应到处置单位编码")
                % {"v": unit},
            )

    row.reply = text(cell("reply"))
    satisfaction = key(text(cell("satisfaction")))
    if satisfaction:
        level = mapping.satisfaction.get(satisfaction)
        if level is None:
            bad("satisfaction", _("无法识别的满意度“%(v)s”") % {"v": satisfaction})
        row.satisfaction = level


__all__ = [
    "HISTORICAL",
    "LIVE",
    "Columns",
    "HeaderError",
    "Problem",
    "Row",
    "parse_row",
    "parse_time",
    "valid_phone",
]
