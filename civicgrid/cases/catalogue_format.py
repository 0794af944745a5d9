"""The catalogue file: its columns, reading and checking it, writing it out.

civicgrid ships one in ``cases/data/categories.csv``; a data migration loads it on
``migrate`` and ``civicgrid load-categories FILE`` loads an edited copy (CSV or XLSX)
again. One row per category; the columns (English or Chinese header, any order):

====================  ==================  ==============================================
code                  编码                 unique, e.g. ``SJ0502``
name                  名称                 e.g. ``占道经营``
kind                  类型                 component/部件, event/事件, request/诉求
parent_code           大类编码              empty for a 大类; a 小类's 大类 (same kind)
pinyin                拼音首字母             initials of the name, e.g. ``zdjy``
aliases               别名                 other names and their initials, by spaces
filing_criteria       立案条件
closing_criteria      结案条件
default_unit_code     默认责任单位编码        a handling unit's code
sort_order            排序                 whole number; empty: 10 × the row's position
is_active             启用                 是/否 (1/0); empty: 是
handle_normal …       处置时限（一般）…       ``<stage>_<urgency>``: a time limit
====================  ==================  ==============================================

A time-limit cell reads ``4工作时`` (or ``4h``), ``5工作日`` (``5d``) or
``2自然小时`` (``2nh``); working days are whole. Stages: handle 处置, acknowledge
签收, accept 受理, dispatch 派遣, verify 核查, close 结案, follow_up 回访;
urgencies: normal 一般, urgent 紧急, emergency 特急. A limit on a 大类 applies to
each of its 小类 that has none for that stage and urgency.

Code scheme: a two-letter kind prefix (``BJ`` 部件, ``SJ`` 事件, ``SQ`` 12345 诉求),
then the 2-digit 大类 and the 2-digit 小类 of GB/T 30428.2: ``BJ01`` 公用设施,
``BJ0101`` 上水井盖 (a component's 16-digit code is county + ``0101`` + serial);
``SJ05`` 街面秩序, ``SJ0502`` 占道经营. The prefix keeps component 01 and event 01
apart and keeps Excel from reading a code as a number.

Problems name their row as Excel numbers it (the header is row 1) and their column
by letter and header, e.g. ``第 5 行，L（handle_normal）列：…``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

from civicgrid.cases.models import Category
from civicgrid.grids.models import HandlingUnit

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "categories.csv"
SHEET_TITLE = "类别目录"

#: (column, Chinese header) of the fields, in file order.
FIELDS: tuple[tuple[str, str], ...] = (
    ("code", "编码"),
    ("name", "名称"),
    ("kind", "类型"),
    ("parent_code", "大类编码"),
    ("pinyin", "拼音首字母"),
    ("aliases", "别名"),
    ("filing_criteria", "立案条件"),
    ("closing_criteria", "结案条件"),
    ("default_unit_code", "默认责任单位编码"),
    ("sort_order", "排序"),
    ("is_active", "启用"),
)
REQUIRED = ("code", "name", "kind")
#: Stages in column order (the one a practitioner edits most comes first).
STAGES: dict[str, str] = {
    "handle": "处置",
    "acknowledge": "签收",
    "accept": "受理",
    "dispatch": "派遣",
    "verify": "核查",
    "close": "结案",
    "follow_up": "回访",
}
URGENCIES: dict[str, str] = {"normal": "一般", "urgent": "紧急", "emergency": "特急"}
#: kind value → the words a file may use for it; the first is written to XLSX.
KINDS: dict[str, tuple[str, ...]] = {
    "component": ("部件", "component", "bj"),
    "event": ("事件", "event", "sj"),
    "request": ("诉求", "request", "sq", "12345", "12345诉求", "12345 诉求"),
}
#: time unit → the words a cell may use for it; the first is written back.
UNITS: dict[str, tuple[str, ...]] = {
    "work_hours": ("工作时", "工作小时", "h", "wh"),
    "work_days": ("工作日", "d", "wd"),
    "natural_hours": ("自然小时", "nh"),
}
_YES = {"", "1", "是", "启用", "y", "yes", "true", "t"}
_NO = {"0", "否", "停用", "n", "no", "false", "f"}
_CODE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_LIMIT = re.compile(r"^(\d+(?:\.\d+)?)\s*([^\d\s.].*?)$")
_ALIAS_SPLIT = re.compile(r"[\s,，、;；]+")
ASCII_WORD = re.compile(r"^[a-z0-9]+$")
_MAX_AMOUNT = Decimal("99999.99")


def limit_column(stage: str, urgency: str) -> str:
    return f"{stage}_{urgency}"


def limit_header(stage: str, urgency: str) -> str:
    """The Chinese header of a time-limit column, e.g. ``处置时限（一般）``."""
    return f"{STAGES[stage]}时限（{URGENCIES[urgency]}）"


LIMIT_COLUMNS: tuple[tuple[str, str], ...] = tuple((s, u) for s in STAGES for u in URGENCIES)
COLUMNS: tuple[str, ...] = tuple(f for f, _h in FIELDS) + tuple(
    limit_column(s, u) for s, u in LIMIT_COLUMNS
)
HEADERS_ZH: tuple[str, ...] = tuple(h for _f, h in FIELDS) + tuple(
    limit_header(s, u) for s, u in LIMIT_COLUMNS
)
_MAX = {
    "code": Category._meta.get_field("code").max_length or 32,
    "name": Category._meta.get_field("name").max_length or 100,
    "pinyin": Category._meta.get_field("pinyin").max_length or 64,
    "default_unit_code": HandlingUnit._meta.get_field("code").max_length or 32,
}


def _norm(header: str) -> str:
    text = header.strip().lower().replace("（", "(").replace("）", ")")
    return re.sub(r"[\s\-·/:：_]+", "_", text).strip("_")


def _header_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for column, chinese in FIELDS:
        names[_norm(column)] = column
        names[_norm(chinese)] = column
    for stage, urgency in LIMIT_COLUMNS:
        column = limit_column(stage, urgency)
        zh_stage, zh_urgency = STAGES[stage], URGENCIES[urgency]
        for spelling in (
            column,
            limit_header(stage, urgency),
            f"{zh_stage}({zh_urgency})",
            f"{zh_stage}_{zh_urgency}",
            f"{zh_stage}时限_{zh_urgency}",
            f"{zh_urgency}_{zh_stage}",
        ):
            names[_norm(spelling)] = column
    return names


_HEADER_NAMES = _header_names()
_KIND_WORDS = {_norm(word): kind for kind, words in KINDS.items() for word in words}
_UNIT_WORDS = {word.lower(): unit for unit, words in UNITS.items() for word in words}


# -- problems and results -----------------------------------------------------------
def column_letter(index: int) -> str:
    """0 → ``A``, 26 → ``AA``: the column as Excel shows it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a catalogue file. ``row`` counts as Excel does (the header
    is row 1); row 0 is the file as a whole."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        if not self.row:
            return self.message
        if not self.column:
            return _("第 %(row)d 行：%(message)s") % {"row": self.row, "message": self.message}
        return _("第 %(row)d 行，%(column)s列：%(message)s") % {
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


class CatalogueError(Exception):
    """A catalogue file with problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Limit:
    amount: Decimal
    unit: str

    def __str__(self) -> str:
        return f"{format(self.amount.normalize(), 'f')}{UNITS[self.unit][0]}"


@dataclass
class CatalogueRow:
    """One category as a file gives it."""

    row: int
    code: str
    name: str
    kind: str
    parent_code: str = ""
    #: The name's initials followed by the aliases, as kept in ``Category.pinyin``.
    search_words: str = ""
    filing_criteria: str = ""
    closing_criteria: str = ""
    default_unit_code: str = ""
    sort_order: int = 0
    is_active: bool = True
    #: (stage, urgency) → limit, or ``None`` for an empty cell (no limit).
    limits: dict[tuple[str, str], Limit | None] = field(default_factory=dict)


@dataclass
class Catalogue:
    """A parsed file: its rows, and its columns with how problems name them."""

    rows: list[CatalogueRow]
    #: column → its letter and header as written, e.g. ``L（handle_normal）``.
    labels: dict[str, str]
    #: What is wrong with the file itself; the database may add more (see ``catalogue``).
    problems: list[Problem] = field(default_factory=list)

    def has(self, column: str) -> bool:
        return column in self.labels

    def label(self, column: str) -> str:
        return self.labels.get(column, column)


# -- reading a file -----------------------------------------------------------------
def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_table(path: Path) -> list[list[str]]:
    """The cells of a CSV (UTF-8 or GB18030) or XLSX file as text, header first."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            data = path.read_bytes()
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = data.decode("gb18030")
            return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
        if suffix in {".xlsx", ".xlsm"}:
            return _read_xlsx(path)
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CatalogueError(
            [Problem(0, "", _("无法读取 %(path)s：%(error)s") % {"path": path, "error": exc})]
        ) from exc
    raise CatalogueError(
        [
            Problem(
                0,
                "",
                _("不支持的文件类型 %(suffix)s：请另存为 .csv（UTF-8）或 .xlsx")
                % {"suffix": suffix or "?"},
            )
        ]
    )


def _read_xlsx(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book[SHEET_TITLE] if SHEET_TITLE in book.sheetnames else book.worksheets[0]
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def parse_limit(text: str) -> Limit:
    """``4工作时``/``4h``, ``5工作日``/``5d``, ``2自然小时``/``2nh`` → a limit; ``ValueError``
    with a message for anything else."""
    match = _LIMIT.match(text.strip())
    unit = _UNIT_WORDS.get(match.group(2).strip().lower()) if match else None
    if match is None or unit is None:
        raise ValueError(
            _("无法识别的时限“%(text)s”：请写成 4工作时、5工作日、2自然小时（或 4h、5d、2nh）")
            % {"text": text}
        )
    try:
        amount = Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(_("无法识别的时限“%(text)s”") % {"text": text}) from exc
    if amount <= 0 or amount > _MAX_AMOUNT:
        raise ValueError(_("时限须大于 0 且不超过 99999.99：“%(text)s”") % {"text": text})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(_("时限最多两位小数：“%(text)s”") % {"text": text})
    if unit == "work_days" and amount != int(amount):
        raise ValueError(
            _("工作日须为整数：“%(text)s”（半天请写成工作时，如 4工作时）") % {"text": text}
        )
    return Limit(amount=amount, unit=unit)


def _search_words(pinyin: str, aliases: str) -> list[str]:
    words = [w for w in _ALIAS_SPLIT.split(f"{pinyin} {aliases}") if w]
    return [w.lower() if w.isascii() else w for w in words]


def _unknown_header(header: str) -> str:
    parts = _norm(header).rsplit("_", 1)
    if len(parts) == 2:
        stage, urgency = parts
        if stage in STAGES and urgency not in URGENCIES:
            return _("未知的紧急程度“%(u)s”（可用：%(all)s）") % {
                "u": urgency,
                "all": "、".join(URGENCIES),
            }
        if urgency in URGENCIES and stage not in STAGES:
            return _("未知的环节“%(s)s”（可用：%(all)s）") % {"s": stage, "all": "、".join(STAGES)}
    return _("未知的列“%(h)s”") % {"h": header}


def parse_table(table: list[list[str]]) -> Catalogue:
    """Check every cell and row of a table (header first): its rows and its problems.

    A row is kept (to check its relations) even when a cell of it is wrong; only a
    header without the required columns raises ``CatalogueError`` at once.
    Relations to categories already in the database are checked when loading.
    """
    problems: list[Problem] = []
    if not table or not any(table[0]):
        raise CatalogueError([Problem(1, "", _("文件为空或缺少表头"))])
    header = table[0]
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        if not cell:
            continue
        where = f"{column_letter(i)}（{cell}）"
        column = _HEADER_NAMES.get(_norm(cell))
        if column is None:
            problems.append(Problem(1, where, _unknown_header(cell)))
        elif column in index:
            problems.append(
                Problem(1, where, _("与 %(col)s 列重复") % {"col": column_letter(index[column])})
            )
        else:
            index[column] = i
    for column in REQUIRED:
        if column not in index:
            problems.append(
                Problem(
                    1,
                    "",
                    _("缺少必填列 %(column)s（%(zh)s）")
                    % {"column": column, "zh": dict(FIELDS)[column]},
                )
            )
    if any(p.row == 1 and not p.column for p in problems):
        raise CatalogueError(problems)

    labels = {column: f"{column_letter(i)}（{header[i]}）" for column, i in index.items()}
    rows: list[CatalogueRow] = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue  # blank lines, as spreadsheets leave them
        row = _parse_row(number, cells, index, labels, problems)
        if row is not None:
            rows.append(row)
    _check_rows(rows, labels, problems)
    return Catalogue(rows=rows, labels=labels, problems=problems)


def _parse_row(
    number: int,
    cells: list[str],
    index: dict[str, int],
    labels: dict[str, str],
    problems: list[Problem],
) -> CatalogueRow | None:
    def cell(column: str) -> str:
        i = index.get(column)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    def problem(column: str, message: str) -> None:
        problems.append(Problem(number, labels[column], message))

    code, name = cell("code"), cell("name")
    if not code:
        problem("code", _("编码不能为空"))
    elif len(code) > _MAX["code"] or not _CODE.match(code):
        problem(
            "code",
            _("编码“%(code)s”只能由字母、数字、“-”“_”“.”组成，且不超过 %(n)d 个字符")
            % {"code": code, "n": _MAX["code"]},
        )
    if not name:
        problem("name", _("名称不能为空"))
    elif len(name) > _MAX["name"]:
        problem("name", _("名称不能超过 %(n)d 个字") % {"n": _MAX["name"]})
    kind = _KIND_WORDS.get(_norm(cell("kind")))
    if kind is None:
        problem(
            "kind",
            _("未知的类型“%(kind)s”：请填 部件、事件 或 诉求（component、event、request）")
            % {"kind": cell("kind")},
        )
    parent_code = cell("parent_code")
    if parent_code and parent_code == code:
        problem("parent_code", _("大类编码不能是自己"))
    words = _search_words(cell("pinyin"), cell("aliases"))
    search_words = " ".join(words)
    if len(search_words) > _MAX["pinyin"]:
        problem(
            "aliases" if "aliases" in index else "pinyin",
            _("拼音首字母与别名合计不能超过 %(n)d 个字符（现为 %(len)d 个）")
            % {"n": _MAX["pinyin"], "len": len(search_words)},
        )
    elif cell("pinyin") and not ASCII_WORD.match(words[0]):
        problem(
            "pinyin",
            _("拼音首字母只能是字母或数字，如 zdjy：“%(v)s”") % {"v": cell("pinyin")},
        )
    unit_code = cell("default_unit_code")
    if len(unit_code) > _MAX["default_unit_code"]:
        problem("default_unit_code", _("单位编码过长"))
    sort_order = (number - 1) * 10
    if cell("sort_order"):
        try:
            sort_order = int(cell("sort_order"))
            if sort_order < 0:
                raise ValueError
        except ValueError:
            problem("sort_order", _("排序须为非负整数：“%(v)s”") % {"v": cell("sort_order")})
    active = cell("is_active").lower()
    if active not in _YES | _NO:
        problem("is_active", _("启用请填 是 或 否：“%(v)s”") % {"v": cell("is_active")})
    limits: dict[tuple[str, str], Limit | None] = {}
    for stage, urgency in LIMIT_COLUMNS:
        column = limit_column(stage, urgency)
        if column not in index:
            continue
        text = cell(column)
        if not text:
            limits[(stage, urgency)] = None
            continue
        try:
            limits[(stage, urgency)] = parse_limit(text)
        except ValueError as exc:
            problem(column, str(exc))
    if not code:
        return None
    return CatalogueRow(
        row=number,
        code=code,
        name=name,
        kind=kind or "",
        parent_code=parent_code,
        search_words=search_words,
        filing_criteria=cell("filing_criteria"),
        closing_criteria=cell("closing_criteria"),
        default_unit_code=unit_code,
        sort_order=sort_order,
        is_active=active not in _NO,
        limits=limits,
    )


def _check_rows(rows: list[CatalogueRow], labels: dict[str, str], problems: list[Problem]) -> None:
    """Duplicate codes, and duplicate names under one 大类 (parents are checked with
    the database, in ``catalogue``)."""
    where = labels.__getitem__
    by_code: dict[str, CatalogueRow] = {}
    for row in rows:
        if row.code in by_code:
            problems.append(
                Problem(
                    row.row,
                    where("code"),
                    _("编码“%(code)s”与第 %(other)d 行重复")
                    % {"code": row.code, "other": by_code[row.code].row},
                )
            )
        else:
            by_code[row.code] = row
    names: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row.kind, row.parent_code, row.name)
        if key in names and by_code.get(row.code) is row:
            problems.append(
                Problem(
                    row.row,
                    where("name"),
                    _("同一大类下名称“%(name)s”与第 %(other)d 行重复")
                    % {"name": row.name, "other": names[key]},
                )
            )
        names.setdefault(key, row.row)


def read_catalogue(path: Path | None = None) -> Catalogue:
    """Read a catalogue file (the shipped one by default) and check its cells."""
    return parse_table(read_table(path or DEFAULT_PATH))


# -- writing a file ------------------------------------------------------------
def write_csv(rows: list[dict[str, str]], handle: IO[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.get(column, "") for column in COLUMNS])


_XLSX_WIDTHS = {
    "code": 10,
    "name": 16,
    "kind": 7,
    "parent_code": 9,
    "pinyin": 10,
    "aliases": 24,
    "filing_criteria": 48,
    "closing_criteria": 40,
    "default_unit_code": 14,
    "sort_order": 7,
    "is_active": 6,
}


def write_xlsx(rows: list[dict[str, str]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET_TITLE
    sheet.append(list(HEADERS_ZH))
    kind_label = {kind: words[0] for kind, words in KINDS.items()}
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for row in rows:
        values: list[Any] = []
        for column in COLUMNS:
            value: Any = row.get(column, "")
            if column == "kind":
                value = kind_label.get(value, value)
            elif column == "is_active":
                value = "是" if value == "1" else "否"
            elif column == "sort_order":
                value = int(value)
            values.append(value)
        sheet.append(values)
        if not row["parent_code"]:
            for cell in sheet[sheet.max_row]:
                cell.font = bold
    for i, column in enumerate(COLUMNS):
        letter = column_letter(i)
        header = sheet[f"{letter}1"]
        header.font, header.fill = bold, fill
        header.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[letter].width = _XLSX_WIDTHS.get(column, 11)
    sheet.freeze_panes = "C2"  # the header row, and code and name while scrolling right
    sheet.auto_filter.ref = sheet.dimensions
    last = max(sheet.max_row, 2)
    kinds = DataValidation(
        type="list", formula1='"' + ",".join(kind_label.values()) + '"', allow_blank=False
    )
    active = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
    sheet.add_data_validation(kinds)
    sheet.add_data_validation(active)
    kinds.add(
        f"{column_letter(COLUMNS.index('kind'))}2:{column_letter(COLUMNS.index('kind'))}{last + 500}"
    )
    active.add(
        f"{column_letter(COLUMNS.index('is_active'))}2:"
        f"{column_letter(COLUMNS.index('is_active'))}{last + 500}"
    )
    notes = book.create_sheet("填写说明")
    for line in _HELP_LINES:
        notes.append([line])
    notes.column_dimensions["A"].width = 100
    book.save(path)


_HELP_LINES = (
    "每行一个类别。大类的“大类编码”留空；小类填写所属大类的编码，类型须与大类相同。",
    "编码：类型前缀 + 2 位大类号 + 2 位小类号，BJ 部件、SJ 事件、SQ 12345 诉求，如 SJ0502 占道经营。",
    "类型：部件、事件 或 诉求。启用：是 或 否。排序：整数，越小越靠前。",
    "拼音首字母：名称各字拼音的首字母，如 占道经营 → zdjy。别名：其他常用叫法及其首字母，以空格分隔，如 摆摊设点 btsd。",
    "默认责任单位编码：处置单位的编码；系统中尚无该单位时暂不设置，导入结果会列出。",
    "时限列“处置时限（一般）”等：填 4工作时、5工作日（整数）或 2自然小时，也可写 4h、5d、2nh；留空表示不设该时限。",
    "小类未设某环节时限时，使用其大类的时限，再没有则使用系统默认值。",
    "导入：civicgrid load-categories 文件.xlsx（先检查全部行，有任何错误则不写入）。",
)
