"""Mapping files: how the columns and values of a 12345 export become a case.

A mapping is a TOML file (``docs/exchange.md`` is its reference; the shipped one is
``exchange/data/12345.toml``). ``load_mapping`` reads it and checks everything it
can before a single row is read: the sections and keys it knows, that the required
fields have a column, the date formats, the coordinate system, and that every value
table points at things that exist here (active subcategories, handling units,
statuses an import can end in, request types, urgencies, satisfaction levels). Any
problem raises ``MappingError`` listing them all, and nothing is written.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

from civicgrid.cases.models import Category, RequestType, Status, Urgency
from civicgrid.grids import crs as crs_mod
from civicgrid.grids.models import HandlingUnit

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_MAPPING = DATA_DIR / "12345.toml"

#: Every field a column can feed, with the words used in messages.
FIELDS: dict[str, str] = {
    "external_id": "工单编号",
    "received_at": "受理时间",
    "description": "诉求内容",
    "category": "问题分类",
    "title": "标题",
    "request_type": "诉求类型",
    "urgency": "紧急程度",
    "address": "事发地址",
    "lon": "经度",
    "lat": "纬度",
    "grid_code": "网格编码",
    "requester_name": "来电人",
    "requester_phone": "联系电话",
    "confidential": "是否保密",
    "unit": "承办单位",
    "status": "工单状态",
    "accepted_at": "受理确认时间",
    "dispatched_at": "派单时间",
    "handled_at": "办理反馈时间",
    "closed_at": "办结时间",
    "followed_up_at": "回访时间",
    "reply": "答复内容",
    "satisfaction": "满意度",
}
REQUIRED = ("external_id", "received_at", "description", "category")
TIME_FIELDS = ("received_at", "accepted_at", "dispatched_at", "handled_at", "closed_at")
TIME_FIELDS_ALL = (*TIME_FIELDS, "followed_up_at")

#: The statuses an imported case can end in (historical mode).
IMPORT_STATUSES = (
    Status.NEW,
    Status.FILED,
    Status.DISPATCHED,
    Status.IN_PROGRESS,
    Status.HANDLED,
    Status.CLOSED,
    Status.REJECTED,
)
ENCODINGS = {"auto", "utf-8", "utf-8-sig", "gb18030", "gbk"}
SECTIONS = {"mapping", "file", "columns", "dates", "coordinates", "defaults", "values"}
VALUE_TABLES = {"category", "status", "unit", "request_type", "urgency", "satisfaction"}
DEFAULT_KEYS = {"status", "urgency", "request_type", "result", "reject_reason"}

DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
    "%Y%m%d%H%M%S",
)

#: Values understood without a table (a mapping's own table comes first).
BUILTIN_SATISFACTION = {
    "非常满意": 5,
    "满意": 4,
    "基本满意": 3,
    "一般": 3,
    "不满意": 2,
    "非常不满意": 1,
    **{str(n): n for n in range(1, 6)},
}
TRUE_WORDS = {"是", "保密", "要求保密", "y", "yes", "true", "1"}
FALSE_WORDS = {"否", "不保密", "", "n", "no", "false", "0"}


class MappingError(Exception):
    """A mapping file that cannot be used; ``problems`` lists every one."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.path = path
        self.problems = problems


def key(value: object) -> str:
    """A cell or table key as compared: stripped, inner whitespace collapsed."""
    return re.sub(r"\s+", " ", str(value)).strip()


@dataclass
class Mapping:
    path: Path
    name: str = ""
    #: field → the column headers that may hold it, the first present one wins.
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    encoding: str = "auto"
    sheet: str = ""
    header_row: int = 1
    delimiter: str = ","
    date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    crs: str = crs_mod.WGS84
    #: Separators of a category path ("城乡建设/市容环境/占道经营"): the last part is tried too.
    category_separators: str = "/\\>＞-—|"
    #: The export's category names/codes → subcategory id (the table, then our codes and
    #: unique names of active subcategories).
    categories: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    request_types: dict[str, str] = field(default_factory=dict)
    urgencies: dict[str, str] = field(default_factory=dict)
    satisfaction: dict[str, int] = field(default_factory=dict)
    default_status: str = ""
    default_urgency: str = Urgency.NORMAL
    default_request_type: str = ""
    default_result: str = "已办结"
    default_reject_reason: str = "不予受理"

    def category_of(self, value: str) -> int | None:
        found = self.categories.get(value)
        if found is None and value:
            parts = [p for p in re.split(f"[{re.escape(self.category_separators)}]", value) if p]
            if len(parts) > 1:
                found = self.categories.get(key(parts[-1]))
        return found


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    return None


def resolve_mapping(path: Path | str) -> Path:
    """A mapping file's path; a bare name (``12345``) names a shipped mapping."""
    given = Path(path)
    if given.exists():
        return given
    shipped = DATA_DIR / f"{given.name}.toml"
    if given.suffix == "" and shipped.exists():
        return shipped
    return given


def load_mapping(path: Path | str | None = None) -> Mapping:
    """Read and check a mapping file (the shipped 12345 one by default)."""
    source = resolve_mapping(path) if path else DEFAULT_MAPPING
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MappingError(source, [_("找不到映射文件 %(p)s") % {"p": source}]) from exc
    except UnicodeDecodeError as exc:
        raise MappingError(source, [_("映射文件须为 UTF-8 编码")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(source, [_("映射文件不是有效的 TOML：%(e)s") % {"e": exc}]) from exc
    return _Checker(source, raw).run()


class _Checker:
    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self.path = path
        self.raw = raw
        self.problems: list[str] = []
        self.mapping = Mapping(path=path)

    def bad(self, message: str) -> None:
        self.problems.append(message)

    def table(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            self.bad(_("[%(s)s] 须为表（section）") % {"s": name})
            return {}
        return value

    def run(self) -> Mapping:
        for section in self.raw:
            if section not in SECTIONS:
                self.bad(
                    _("未知的节 [%(s)s]（可用：%(all)s）")
                    % {"s": section, "all": "、".join(sorted(SECTIONS))}
                )
        self.mapping.name = str(self.table("mapping").get("name", ""))
        self._file()
        self._columns()
        self._dates()
        self._coordinates()
        self._values()
        self._defaults()
        if self.problems:
            raise MappingError(self.path, self.problems)
        return self.mapping

    def _unknown_keys(self, section: str, table: dict[str, Any], known: set[str]) -> None:
        for name in table:
            if name not in known:
                self.bad(_("[%(s)s] 中未知的键 %(k)s") % {"s": section, "k": name})

    def _file(self) -> None:
        file = self.table("file")
        self._unknown_keys("file", file, {"encoding", "sheet", "header_row", "delimiter"})
        m = self.mapping
        encoding = str(file.get("encoding", "auto")).lower()
        if encoding not in ENCODINGS:
            self.bad(
                _("[file] encoding 须为 %(all)s 之一，而不是 %(v)s")
                % {"all": "、".join(sorted(ENCODINGS)), "v": encoding}
            )
        m.encoding = encoding
        m.sheet = str(file.get("sheet", ""))
        header_row = file.get("header_row", 1)
        if not isinstance(header_row, int) or isinstance(header_row, bool) or header_row < 1:
            self.bad(_("[file] header_row 须为正整数"))
        else:
            m.header_row = header_row
        delimiter = file.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            self.bad(_("[file] delimiter 须为一个字符"))
        else:
            m.delimiter = delimiter

    def _columns(self) -> None:
        columns = self.table("columns")
        for name, value in columns.items():
            if name not in FIELDS:
                self.bad(
                    _("[columns] 中未知的字段 %(f)s（可用：%(all)s）")
                    % {"f": name, "all": "、".join(FIELDS)}
                )
                continue
            headers = _strings(value)
            if headers is None:
                self.bad(_("[columns] %(f)s 须为列名或列名列表") % {"f": name})
                continue
            self.mapping.columns[name] = headers
        for name in REQUIRED:
            if name not in self.mapping.columns:
                self.bad(
                    _("[columns] 缺少必需字段 %(f)s（%(label)s）")
                    % {"f": name, "label": FIELDS[name]}
                )
        if ("lon" in self.mapping.columns) != ("lat" in self.mapping.columns):
            self.bad(_("[columns] 经度 lon 和纬度 lat 须同时给出"))

    def _dates(self) -> None:
        dates = self.table("dates")
        self._unknown_keys("dates", dates, {"formats", "timezone"})
        if "formats" in dates:
            formats = _strings(dates["formats"])
            if formats is None:
                self.bad(_("[dates] formats 须为格式字符串列表"))
            else:
                for fmt in formats:
                    if "%" not in fmt:
                        self.bad(
                            _("[dates] 日期格式 %(f)s 无效（例如 %%Y-%%m-%%d %%H:%%M:%%S）")
                            % {"f": fmt}
                        )
                        continue
                    try:
                        datetime(2020, 1, 2, 3, 4, 5).strftime(fmt)
                    except ValueError:
                        self.bad(_("[dates] 日期格式 %(f)s 无效") % {"f": fmt})
                self.mapping.date_formats = formats
        if "timezone" in dates:
            try:
                self.mapping.timezone = ZoneInfo(str(dates["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                self.bad(_("[dates] 未知的时区 %(z)s") % {"z": dates["timezone"]})

    def _coordinates(self) -> None:
        coordinates = self.table("coordinates")
        self._unknown_keys("coordinates", coordinates, {"crs"})
        try:
            self.mapping.crs = crs_mod.normalize(str(coordinates.get("crs", crs_mod.WGS84)))
        except crs_mod.CRSInputError as exc:
            self.bad(_("[coordinates] %(e)s") % {"e": exc})

    def _value_table(self, name: str) -> dict[str, Any]:
        values = self.table("values")
        table = values.get(name, {})
        if not isinstance(table, dict):
            self.bad(_("[values.%(t)s] 须为表") % {"t": name})
            return {}
        return {key(k): v for k, v in table.items()}

    def _values(self) -> None:
        for name in self.table("values"):
            if name not in VALUE_TABLES:
                self.bad(
                    _("未知的取值表 [values.%(t)s]（可用：%(all)s）")
                    % {"t": name, "all": "、".join(sorted(VALUE_TABLES))}
                )
        self._categories()
        self._units()
        m = self.mapping
        m.statuses = {key(s.label): s.value for s in Status if s in IMPORT_STATUSES}
        m.statuses.update({s: s for s in IMPORT_STATUSES})
        for source, target in self._value_table("status").items():
            if target not in IMPORT_STATUSES:
                self.bad(
                    _("[values.status] “%(k)s” 指向 %(v)s：导入只支持 %(all)s")
                    % {"k": source, "v": target, "all": "、".join(IMPORT_STATUSES)}
                )
            else:
                m.statuses[source] = target
        m.request_types = {key(t.label): t.value for t in RequestType}
        m.request_types.update({t: t for t in RequestType.values})
        for source, target in self._value_table("request_type").items():
            if target not in RequestType.values:
                self.bad(
                    _("[values.request_type] “%(k)s” 指向未知的诉求类型 %(v)s（可用：%(all)s）")
                    % {"k": source, "v": target, "all": "、".join(RequestType.values)}
                )
            else:
                m.request_types[source] = target
        m.urgencies = {key(u.label): u.value for u in Urgency}
        m.urgencies.update({u: u for u in Urgency.values})
        for source, target in self._value_table("urgency").items():
            if target not in Urgency.values:
                self.bad(
                    _("[values.urgency] “%(k)s” 指向未知的紧急程度 %(v)s（可用：%(all)s）")
                    % {"k": source, "v": target, "all": "、".join(Urgency.values)}
                )
            else:
                m.urgencies[source] = target
        m.satisfaction = dict(BUILTIN_SATISFACTION)
        for source, target in self._value_table("satisfaction").items():
            if not isinstance(target, int) or isinstance(target, bool) or target not in range(1, 6):
                self.bad(
                    _("[values.satisfaction] “%(k)s” 须指向 1～5 的满意度，而不是 %(v)s")
                    % {"k": source, "v": target}
                )
            else:
                m.satisfaction[source] = target

    def _categories(self) -> None:
        minors = list(
            Category.objects.filter(parent__isnull=False, is_active=True).values_list(
                "pk", "code", "name"
            )
        )
        by_code = {code: pk for pk, code, _name in minors}
        names: dict[str, list[int]] = {}
        for pk, _code, name in minors:
            names.setdefault(key(name), []).append(pk)
        resolved = {name: pks[0] for name, pks in names.items() if len(pks) == 1}
        resolved.update(by_code)
        majors = set(Category.objects.filter(parent__isnull=True).values_list("code", flat=True))
        for source, target in self._value_table("category").items():
            if not isinstance(target, str) or target not in by_code:
                hint = _("（这是大类，请指向小类）") if target in majors else ""
                self.bad(
                    _("[values.category] “%(k)s” 指向的 %(v)s 不是启用的小类编码%(hint)s")
                    % {"k": source, "v": target, "hint": hint}
                )
                continue
            resolved[source] = by_code[target]
        self.mapping.categories = resolved

    def _units(self) -> None:
        units = list(HandlingUnit.objects.active().values_list("pk", "code", "name"))
        by_code = {code: pk for pk, code, _name in units}
        resolved = {key(name): pk for pk, _code, name in units}
        resolved.update(by_code)
        for source, target in self._value_table("unit").items():
            if not isinstance(target, str) or target not in by_code:
                self.bad(
                    _("[values.unit] “%(k)s” 指向的 %(v)s 不是启用的处置单位编码")
                    % {"k": source, "v": target}
                )
                continue
            resolved[source] = by_code[target]
        self.mapping.units = resolved

    def _defaults(self) -> None:
        defaults = self.table("defaults")
        self._unknown_keys("defaults", defaults, DEFAULT_KEYS)
        m = self.mapping
        status = str(defaults.get("status", ""))
        if status and status not in IMPORT_STATUSES:
            self.bad(_("[defaults] status 须为 %(all)s 之一") % {"all": "、".join(IMPORT_STATUSES)})
        m.default_status = status
        urgency = str(defaults.get("urgency", Urgency.NORMAL))
        if urgency not in Urgency.values:
            self.bad(_("[defaults] urgency 须为 %(all)s 之一") % {"all": "、".join(Urgency.values)})
        m.default_urgency = urgency
        request_type = str(defaults.get("request_type", ""))
        if request_type and request_type not in RequestType.values:
            self.bad(
                _("[defaults] request_type 须为 %(all)s 之一")
                % {"all": "、".join(RequestType.values)}
            )
        m.default_request_type = request_type
        m.default_result = str(defaults.get("result", m.default_result)).strip() or m.default_result
        m.default_reject_reason = (
            str(defaults.get("reject_reason", m.default_reject_reason)).strip()
            or m.default_reject_reason
        )


__all__ = [
    "DEFAULT_MAPPING",
    "FIELDS",
    "IMPORT_STATUSES",
    "REQUIRED",
    "Mapping",
    "MappingError",
    "key",
    "load_mapping",
    "resolve_mapping",
]
