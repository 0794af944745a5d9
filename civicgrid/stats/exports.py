"""Tables of figures, and writing them to XLSX and CSV; the centre's periodic report.

A ``Table`` is a title, columns (each with a Chinese label and a kind: text, count,
rate, hours or score) and rows of selector output. ``write_xlsx`` puts each table
on its own sheet with a bold, frozen header row and number formats (rates as
percentages, hours with one decimal); ``write_csv`` writes one table as UTF-8 with
a byte-order mark, so that Excel opens the Chinese headers right.

``report_tables`` is the centre's daily, weekly or monthly report (日报/周报/月报):
the headline figures, the 12345 KPIs, the trend, the hot topics, categories,
units with their scores, subdistricts and channels of the period.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from civicgrid.grids.models import Grid
from civicgrid.stats import evaluations, measures, selectors
from civicgrid.stats.measures import COUNT, HOURS, RATE, SCORE

TEXT = "text"
FORMATS = {COUNT: "#,##0", RATE: "0.0%", HOURS: "0.0", SCORE: "0.00", TEXT: "@"}

#: The measures of a breakdown table, in order.
TABLE_MEASURES = (
    "received",
    "closed",
    "in_progress",
    "overdue",
    "close_rate",
    "ontime_close_rate",
    "acknowledge_ontime_rate",
    "handle_ontime_rate",
    "mean_hours",
    "median_hours",
    "p90_hours",
    "sent_back",
    "reworked",
    "rework_rate",
    "extensions",
    "follow_up_rate",
    "satisfaction_rate",
    "reopen_rate",
)


@dataclass
class Column:
    key: str
    label: str
    kind: str = COUNT


@dataclass
class Table:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> Iterable[list[Any]]:
        for row in self.rows:
            yield [row.get(c.key) for c in self.columns]


def measure_columns(names: Sequence[str]) -> list[Column]:
    return [Column(n, measures.label(n), measures.kind(n)) for n in names]


def key_columns(key_label: str, name_label: str) -> list[Column]:
    return [Column("key", key_label, TEXT), Column("name", name_label, TEXT)]


BY_LABELS = {
    "unit": (gettext_lazy("单位编号"), gettext_lazy("处置单位")),
    "category": (gettext_lazy("类别编码"), gettext_lazy("小类")),
    "major": (gettext_lazy("类别编码"), gettext_lazy("大类")),
    "kind": (gettext_lazy("类型"), gettext_lazy("类型名称")),
    "domain": (gettext_lazy("领域"), gettext_lazy("业务领域")),
    "topic": (gettext_lazy("编码"), gettext_lazy("热点")),
    "channel": (gettext_lazy("渠道"), gettext_lazy("来源渠道")),
    "request_type": (gettext_lazy("诉求类型"), gettext_lazy("诉求类型名称")),
    "subdistrict": (gettext_lazy("编码"), gettext_lazy("街道/乡镇")),
    "community": (gettext_lazy("编码"), gettext_lazy("社区/村")),
    "grid": (gettext_lazy("编码"), gettext_lazy("网格")),
}


def _score_columns() -> list[Column]:
    return [
        Column("score", _("综合得分"), SCORE),
        Column("band", _("等级"), TEXT),
        Column("rank", _("排名"), COUNT),
    ]


def breakdown_table(
    *, scope: Grid | None, start: date, end: date, by: str, title: str = ""
) -> Table:
    """Measures by ``by`` (``selectors.breakdown``) as a table; units with their scores."""
    key_label, name_label = (str(s) for s in BY_LABELS[by])
    columns = key_columns(key_label, name_label) + measure_columns(TABLE_MEASURES)
    if by == "unit":
        rows = evaluations.unit_evaluation(scope=scope, start=start, end=end)
        columns += _score_columns()
    else:
        rows = selectors.breakdown(scope=scope, start=start, end=end, by=by)
    return Table(title or str(name_label), columns, rows)


AREA_MEASURES = ("received", "filed", "supervision_rate", "close_rate", "ontime_close_rate")
#: The counts and rates of each position's evaluation table.
POSITION_COLUMNS: dict[str, tuple[tuple[str, Any, str], ...]] = {
    "grid_worker": (
        ("reports", gettext_lazy("上报"), COUNT),
        ("valid_reports", gettext_lazy("有效上报"), COUNT),
        ("valid_report_rate", gettext_lazy("有效上报率"), RATE),
        ("verifies", gettext_lazy("核查"), COUNT),
        ("verify_fails", gettext_lazy("核查不通过"), COUNT),
        ("verify_ontime_rate", gettext_lazy("按时核查率"), RATE),
    ),
    "call_taker": (
        ("reports", gettext_lazy("登记"), COUNT),
        ("accepts", gettext_lazy("受理"), COUNT),
        ("rejects", gettext_lazy("不予受理"), COUNT),
        ("accept_ontime_rate", gettext_lazy("按时受理率"), RATE),
        ("follow_ups", gettext_lazy("回访"), COUNT),
    ),
    "dispatcher": (
        ("dispatches", gettext_lazy("派遣"), COUNT),
        ("dispatch_ontime_rate", gettext_lazy("按时派遣率"), RATE),
        ("accurate_dispatch_rate", gettext_lazy("准确派遣率"), RATE),
    ),
    "unit_handler": (
        ("acknowledges", gettext_lazy("签收"), COUNT),
        ("acknowledge_ontime_rate", gettext_lazy("按时签收率"), RATE),
        ("handles", gettext_lazy("处置反馈"), COUNT),
        ("handle_ontime_rate", gettext_lazy("按期处置率"), RATE),
        ("send_backs", gettext_lazy("回退"), COUNT),
    ),
    "supervisor": (
        ("decisions", gettext_lazy("审批"), COUNT),
        ("closes", gettext_lazy("结案"), COUNT),
        ("close_ontime_rate", gettext_lazy("按时结案率"), RATE),
        ("urges", gettext_lazy("督办"), COUNT),
    ),
}


def area_table(*, parent: Grid | None, start: date, end: date, title: str = "") -> Table:
    """The areas under ``parent``: 监督举报率, 结案率, 按期结案率 and their score."""
    columns = [
        Column("code", _("编码"), TEXT),
        Column("name", _("区域"), TEXT),
        *measure_columns(AREA_MEASURES),
        *_score_columns(),
    ]
    rows = evaluations.area_evaluation(parent=parent, start=start, end=end)
    return Table(title or _("区域考评"), columns, rows)


def position_table(
    *, scope: Grid | None, start: date, end: date, role: str, title: str = ""
) -> Table:
    """Everyone who acted in ``role``: their counts, rates and score."""
    columns = [
        Column("key", _("账号"), TEXT),
        Column("name", _("姓名"), TEXT),
        *[Column(k, str(label), kind) for k, label, kind in POSITION_COLUMNS.get(role, ())],
        *_score_columns(),
    ]
    rows = evaluations.position_evaluation(scope=scope, start=start, end=end, role=role)
    label = rows[0]["role_label"] if rows else role
    return Table(title or _("%(r)s考评") % {"r": label}, columns, rows)


# -- writing -------------------------------------------------------------------------------
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def write_xlsx(tables: Sequence[Table], target: Path | IO[bytes]) -> None:
    """Every table on its own sheet: bold frozen header, number formats, widths."""
    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for table in tables:
        title = _sheet_title(table.title, used)
        sheet = book.create_sheet(title)
        sheet.append([c.label for c in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for values in table.values():
            sheet.append([_cell(v) for v in values])
        for index, column in enumerate(table.columns, start=1):
            letter = get_column_letter(index)
            for cell in sheet[letter][1:]:
                cell.number_format = FORMATS[column.kind]
            width = max(len(column.label) * 2 + 2, 10 if column.kind != TEXT else 14)
            sheet.column_dimensions[letter].width = min(width, 40)
        sheet.freeze_panes = "A2"
    book.save(target)


def _sheet_title(title: str, used: set[str]) -> str:
    clean = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "Sheet"
    name, n = clean, 2
    while name in used:
        name, n = f"{clean}{n}", n + 1
    used.add(name)
    return name


def _cell(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return value


def write_csv(table: Table, handle: IO[str]) -> None:
    """One table as CSV with Chinese headers (write the file as ``utf-8-sig``)."""
    writer = csv.writer(handle)
    writer.writerow([c.label for c in table.columns])
    for values in table.values():
        writer.writerow(["" if v is None else _cell(v) for v in values])


# -- the centre's report ----------------------------------------------------------------------
REPORT_TITLES = {
    "day": gettext_lazy("日报"),
    "week": gettext_lazy("周报"),
    "month": gettext_lazy("月报"),
}


def report_tables(*, kind: str, day: date, scope: Grid | None) -> list[Table]:
    """The daily, weekly or monthly report of the period containing ``day``."""
    start, end = selectors.period_bounds(kind, day)
    totals = selectors.totals(scope=scope, start=start, end=end)
    hotline = selectors.hotline_kpis(scope=scope, start=start, end=end)
    headline = Table(
        str(REPORT_TITLES[kind]),
        [Column("label", _("指标"), TEXT), Column("value", _("数值"), TEXT)],
        [
            {"label": _("统计区间"), "value": f"{start.isoformat()} ~ {end.isoformat()}"},
            {"label": _("范围"), "value": scope.name if scope else _("全部")},
            {
                "label": _("承办单位数"),
                "value": selectors.units_involved(scope=scope, start=start, end=end),
            },
        ],
    )
    summary = Table(_("概况"), measure_columns(list(measures.MEASURES)), [totals])
    kpis = Table(_("12345考核指标"), measure_columns(list(hotline)), [hotline])
    # A day's report shows the 30 days up to it; a week's and a month's, their days.
    since = min(start, day - timedelta(days=29)) if kind == "day" else start
    trend = Table(
        _("趋势"),
        [Column("label", _("日期"), TEXT), *measure_columns(TABLE_MEASURES[:4])],
        selectors.trend(scope=scope, start=since, end=end, grain="day"),
    )
    tables = [headline, summary, kpis, trend]
    for by, title in (
        ("domain", _("业务领域")),
        ("topic", _("热点")),
        ("major", _("大类")),
        ("unit", _("责任单位")),
        (_children(scope), _("区域")),
        ("channel", _("渠道")),
    ):
        tables.append(breakdown_table(scope=scope, start=start, end=end, by=by, title=title))
    tables.append(area_table(parent=scope, start=start, end=end))
    for role, title in (("grid_worker", _("网格员考评")), ("dispatcher", _("派遣员考评"))):
        tables.append(position_table(scope=scope, start=start, end=end, role=role, title=title))
    return tables


def _children(scope: Grid | None) -> str:
    """The breakdown of the level under the scope."""
    level = 1 if scope is None else min(scope.level + 1, 3)
    return {1: "subdistrict", 2: "community", 3: "grid"}[level]


def write_report(path: Path, *, kind: str, day: date, scope: Grid | None) -> list[Table]:
    tables = report_tables(kind=kind, day=day, scope=scope)
    write_xlsx(tables, path)
    return tables


__all__ = [
    "TABLE_MEASURES",
    "Column",
    "Table",
    "breakdown_table",
    "report_tables",
    "write_csv",
    "write_report",
    "write_xlsx",
]
