"""The category catalogue (大类/小类 and their time limits) kept as a spreadsheet.

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

Loading checks every row first and writes nothing when any row is wrong; then it
writes in one transaction. It is idempotent: a category is known by its code and
updated in place. A column missing from the file leaves that field alone; an empty
time-limit cell removes that limit. Aliases are kept after the initials in
``Category.pinyin`` (``zdjy 摆摊设点 btsd``), which the search reads.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from civicgrid.cases.models import Category, TimeLimit
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
_ASCII_WORD = re.compile(r"^[a-z0-9]+$")
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
        return _("第 %(row)d 行，%(column)s 列：%(message)s") % {
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

    def has(self, column: str) -> bool:
        return column in self.labels

    def label(self, column: str) -> str:
        return self.labels.get(column, column)


@dataclass
class CatalogueResult:
    """What a load did."""

    path: Path
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Existing categories left alone because ``update=False``.
    skipped: int = 0
    limits_created: int = 0
    limits_updated: int = 0
    limits_deleted: int = 0
    #: Rows naming a default unit that does not exist (their default unit is left unset).
    units_unset: int = 0
    unknown_units: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogueModels:
    """The model classes to write with: the app's, or a migration's historical ones."""

    category: Any
    time_limit: Any
    unit: Any


APP_MODELS = CatalogueModels(category=Category, time_limit=TimeLimit, unit=HandlingUnit)


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
    """Check every cell and row of a table (header first) and return its rows.

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
    if problems:
        raise CatalogueError(problems)
    return Catalogue(rows=rows, labels=labels)


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

    before = len(problems)
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
    elif cell("pinyin") and not _ASCII_WORD.match(words[0]):
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
            problem(
                "sort_order", _("排序须为非负整数：“%(v)s”") % {"v": cell("sort_order")}
            )
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
    if len(problems) > before or kind is None:
        return None
    return CatalogueRow(
        row=number,
        code=code,
        name=name,
        kind=kind,
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
    """Duplicates and parents within the file."""
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
        parent = by_code.get(row.parent_code) if row.parent_code else None
        if parent is None:
            continue
        if parent.parent_code:
            problems.append(
                Problem(
                    row.row,
                    where("parent_code"),
                    _("“%(parent)s”本身是小类（第 %(other)d 行），小类下不能再分小类")
                    % {"parent": parent.code, "other": parent.row},
                )
            )
        elif parent.kind != row.kind:
            problems.append(
                Problem(
                    row.row,
                    where("kind"),
                    _("类型与大类“%(parent)s”（第 %(other)d 行）不一致")
                    % {"parent": parent.code, "other": parent.row},
                )
            )


def read_catalogue(path: Path | None = None) -> Catalogue:
    """Read and check a catalogue file (the shipped one by default)."""
    return parse_table(read_table(path or DEFAULT_PATH))


# -- writing to the database --------------------------------------------------------
def load_catalogue(*, path: Path | None = None, update: bool = True) -> CatalogueResult:
    """Load a catalogue file (CSV or XLSX; the shipped one by default).

    Every row is checked first; any problem raises ``CatalogueError`` listing them all
    and nothing is written. With ``update=False`` categories already present are left
    as they are and only new ones are added.
    """
    return load_catalogue_with(APP_MODELS, path=path, update=update)


def load_catalogue_with(
    models: CatalogueModels,
    *,
    path: Path | None = None,
    update: bool = True,
    using: str = "default",
) -> CatalogueResult:
    """``load_catalogue`` with given model classes (a data migration's) and database."""
    path = path or DEFAULT_PATH
    catalogue = read_catalogue(path)
    with transaction.atomic(using=using):
        return _Writer(models, catalogue, path=path, update=update, using=using).run()


def link_default_units(*, path: Path | None = None) -> int:
    """Fill in the default unit of categories that have none from the file's unit codes,
    now that those units exist (e.g. after the demo district made them). Returns how
    many categories were linked; nothing else is changed."""
    catalogue = read_catalogue(path)
    wanted = {row.code: row.default_unit_code for row in catalogue.rows if row.default_unit_code}
    units = dict(
        HandlingUnit.objects.filter(code__in=set(wanted.values())).values_list("code", "pk")
    )
    linked = 0
    with transaction.atomic():
        for category in Category.objects.filter(code__in=wanted, default_unit__isnull=True):
            unit_id = units.get(wanted[category.code])
            if unit_id is not None:
                category.default_unit_id = unit_id
                category.save(update_fields=["default_unit"])
                linked += 1
    return linked


_PLAIN_FIELDS = {
    "name": "name",
    "kind": "kind",
    "filing_criteria": "filing_criteria",
    "closing_criteria": "closing_criteria",
    "sort_order": "sort_order",
    "is_active": "is_active",
}


class _Writer:
    def __init__(
        self,
        models: CatalogueModels,
        catalogue: Catalogue,
        *,
        path: Path,
        update: bool,
        using: str,
    ) -> None:
        self.m = models
        self.catalogue = catalogue
        self.update = update
        self.using = using
        self.result = CatalogueResult(path=path, rows=len(catalogue.rows))

    def _categories(self) -> Any:
        return self.m.category.objects.using(self.using)

    def run(self) -> CatalogueResult:
        rows = self.catalogue.rows
        existing = {c.code: c for c in self._categories().filter(code__in=[r.code for r in rows])}
        written = [r for r in rows if self.update or r.code not in existing]
        self.result.skipped = len(rows) - len(written)
        self._check_against_database(written)
        unit_codes = {r.default_unit_code for r in written if r.default_unit_code}
        self.units: dict[str, int] = dict(
            self.m.unit.objects.using(self.using)
            .filter(code__in=unit_codes)
            .values_list("code", "pk")
        )
        self.unknown_units: Counter[str] = Counter()
        self.pks: dict[str, int] = {code: c.pk for code, c in existing.items()}
        parent_codes = {r.parent_code for r in written if r.parent_code} - set(self.pks)
        self.pks.update(
            self._categories().filter(code__in=parent_codes).values_list("code", "pk")
        )
        changed: set[str] = set()
        # 大类 first, so their 小类 can point at them.
        for tier in ([r for r in written if not r.parent_code], [r for r in written if r.parent_code]):
            new = []
            for row in tier:
                category = existing.get(row.code)
                if category is None:
                    new.append(self.m.category(code=row.code, **self._values(row, None)))
                elif self._apply(row, category):
                    changed.add(row.code)
            created = self._categories().bulk_create(new)
            if any(c.pk is None for c in created):  # pragma: no cover - a backend without RETURNING
                created = list(self._categories().filter(code__in=[c.code for c in new]))
            for category in created:
                self.pks[category.code] = category.pk
            self.result.created += len(created)
        changed |= self._write_limits(written)
        self.result.updated = len({code for code in changed if code in existing})
        self.result.unchanged = len(written) - self.result.created - self.result.updated
        self.result.unknown_units = sorted(self.unknown_units)
        self.result.units_unset = sum(self.unknown_units.values())
        return self.result

    def _check_against_database(self, written: list[CatalogueRow]) -> None:
        """Parents that are not in the file, and 小类 that the file would orphan."""
        index = {r.code: r for r in written}
        known: dict[str, tuple[str, str]] = {
            code: (kind, parent or "")
            for code, kind, parent in self._categories().values_list(
                "code", "kind", "parent__code"
            )
        }
        merged = dict(known)
        merged.update({r.code: (r.kind, r.parent_code) for r in written})
        problems: list[Problem] = []
        label = self.catalogue.label
        for row in written:
            if not row.parent_code:
                continue
            parent = merged.get(row.parent_code)
            if parent is None:
                problems.append(
                    Problem(
                        row.row,
                        label("parent_code"),
                        _("大类“%(code)s”不存在：文件和系统中都没有这个编码")
                        % {"code": row.parent_code},
                    )
                )
            elif parent[1]:
                problems.append(
                    Problem(
                        row.row,
                        label("parent_code"),
                        _("“%(code)s”是小类，小类下不能再分小类") % {"code": row.parent_code},
                    )
                )
            elif parent[0] != row.kind:
                problems.append(
                    Problem(
                        row.row,
                        label("kind"),
                        _("类型与大类“%(code)s”不一致") % {"code": row.parent_code},
                    )
                )
        for code, (kind, parent_code) in merged.items():
            row = index.get(parent_code)
            if row is None:
                continue
            if row.parent_code:
                problems.append(
                    Problem(
                        row.row,
                        label("parent_code"),
                        _("“%(code)s”下还有小类“%(child)s”，不能改为小类")
                        % {"code": row.code, "child": code},
                    )
                )
            elif kind != row.kind:
                problems.append(
                    Problem(
                        row.row,
                        label("kind"),
                        _("“%(code)s”下的小类“%(child)s”类型不同，不能改变大类的类型")
                        % {"code": row.code, "child": code},
                    )
                )
        if problems:
            raise CatalogueError(sorted(set(problems), key=lambda p: (p.row, p.column, p.message)))

    def _values(self, row: CatalogueRow, current: Any) -> dict[str, Any]:
        """The field values a row sets (only for the columns the file has)."""
        has = self.catalogue.has
        values: dict[str, Any] = {
            model_field: getattr(row, column)
            for column, model_field in _PLAIN_FIELDS.items()
            if has(column) or current is None
        }
        if has("pinyin") or has("aliases") or current is None:
            values["pinyin"] = row.search_words
        if has("parent_code") or current is None:
            values["parent_id"] = self.pks[row.parent_code] if row.parent_code else None
        if has("default_unit_code"):
            if not row.default_unit_code:
                values["default_unit_id"] = None
            elif row.default_unit_code in self.units:
                values["default_unit_id"] = self.units[row.default_unit_code]
            else:
                # Unknown here: left unset (or as it is), and reported.
                self.unknown_units[row.default_unit_code] += 1
        return values

    def _apply(self, row: CatalogueRow, category: Any) -> bool:
        """Update an existing category in place; whether anything changed."""
        fields = []
        for name, value in self._values(row, category).items():
            if getattr(category, name) != value:
                setattr(category, name, value)
                fields.append(name.removesuffix("_id"))
        if fields:
            category.save(using=self.using, update_fields=fields)
        return bool(fields)

    def _write_limits(self, written: list[CatalogueRow]) -> set[str]:
        TimeLimitModel = self.m.time_limit
        pks = {row.code: self.pks[row.code] for row in written}
        current = {
            (limit.category_id, limit.stage, limit.urgency): limit
            for limit in TimeLimitModel.objects.using(self.using).filter(
                category_id__in=pks.values()
            )
        }
        new, changed, deleted = [], [], []
        touched: set[str] = set()
        for row in written:
            pk = pks[row.code]
            for (stage, urgency), wanted in row.limits.items():
                have = current.get((pk, stage, urgency))
                if wanted is None:
                    if have is not None:
                        deleted.append(have.pk)
                        touched.add(row.code)
                elif have is None:
                    new.append(
                        TimeLimitModel(
                            category_id=pk,
                            stage=stage,
                            urgency=urgency,
                            amount=wanted.amount,
                            unit=wanted.unit,
                        )
                    )
                    touched.add(row.code)
                elif Decimal(have.amount) != wanted.amount or have.unit != wanted.unit:
                    have.amount, have.unit = wanted.amount, wanted.unit
                    changed.append(have)
                    touched.add(row.code)
        if deleted:
            TimeLimitModel.objects.using(self.using).filter(pk__in=deleted).delete()
        TimeLimitModel.objects.using(self.using).bulk_create(new)
        TimeLimitModel.objects.using(self.using).bulk_update(changed, ["amount", "unit"])
        self.result.limits_created = len(new)
        self.result.limits_updated = len(changed)
        self.result.limits_deleted = len(deleted)
        return touched


# -- export --------------------------------------------------------------------------
def catalogue_rows() -> list[dict[str, str]]:
    """The catalogue in the database as file rows (English columns, canonical cells):
    each 大类 followed by its 小类."""
    categories = list(
        Category.objects.select_related("parent", "default_unit")
        .prefetch_related("time_limits")
        .order_by("sort_order", "code")
    )
    children: dict[int | None, list[Category]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category)
    ordered = []
    for major in children.get(None, []):
        ordered.append(major)
        ordered.extend(children.get(major.pk, []))
    rows = []
    for category in ordered:
        words = category.pinyin.split()
        has_initials = bool(words) and bool(_ASCII_WORD.match(words[0]))
        row = {
            "code": category.code,
            "name": category.name,
            "kind": category.kind,
            "parent_code": category.parent.code if category.parent else "",
            "pinyin": words[0] if has_initials else "",
            "aliases": " ".join(words[1:] if has_initials else words),
            "filing_criteria": category.filing_criteria,
            "closing_criteria": category.closing_criteria,
            "default_unit_code": category.default_unit.code if category.default_unit else "",
            "sort_order": str(category.sort_order),
            "is_active": "1" if category.is_active else "0",
        }
        for limit in category.time_limits.all():
            row[limit_column(limit.stage, limit.urgency)] = str(
                Limit(amount=Decimal(limit.amount), unit=limit.unit)
            )
        rows.append(row)
    return rows


def export_catalogue(path: Path) -> int:
    """Write the catalogue to ``path``: ``.xlsx`` (Chinese header, frozen, for editing
    in Excel) or ``.csv`` (English header, UTF-8 with BOM). Returns the number of rows."""
    rows = catalogue_rows()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            write_csv(rows, handle)
    elif suffix == ".xlsx":
        _write_xlsx(rows, path)
    else:
        raise ValueError(_("导出文件须为 .xlsx 或 .csv：%(path)s") % {"path": path})
    return len(rows)


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


def _write_xlsx(rows: list[dict[str, str]], path: Path) -> None:
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
    kinds.add(f"{column_letter(COLUMNS.index('kind'))}2:{column_letter(COLUMNS.index('kind'))}{last + 500}")
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


# -- the call-taker's picker ------------------------------------------------------------
def search_categories(text: str, *, kind: str | None = None, limit: int = 20) -> list[Category]:
    """Active 小类 matching ``text``: a code (or its prefix, with or without the kind
    letters), pinyin initials (or an alias's) by prefix, or part of the name, an alias
    or the 大类's name. Ranked: exact code, name initials, alias initials, name, alias,
    code prefix, 大类."""
    query = text.strip()
    if not query:
        return []
    lowered = query.lower()
    condition = (
        Q(code__istartswith=query)
        | Q(name__icontains=query)
        | Q(pinyin__icontains=query)
        | Q(parent__name__icontains=query)
        | Q(parent__pinyin__icontains=query)
    )
    if query.isdigit():
        condition |= Q(code__contains=query)
    candidates = (
        Category.objects.filter(condition, parent__isnull=False, is_active=True)
        .filter(parent__is_active=True)
        .select_related("parent")
    )
    if kind:
        candidates = candidates.filter(kind=kind)
    ranked = []
    for category in candidates:
        rank = _rank(category, query, lowered)
        if rank is not None:
            ranked.append((rank, category.sort_order, category.code, category))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked[:limit]]


def _word_rank(words: list[str], query: str, lowered: str) -> tuple[bool, bool, bool]:
    """Whether the initials, an alias's initials, or a Chinese alias match."""
    initials = bool(words) and bool(_ASCII_WORD.match(words[0]))
    ascii_words = [w for w in words if w.isascii()]
    first = initials and words[0].startswith(lowered)
    alias_initials = any(w.startswith(lowered) for w in ascii_words[1 if initials else 0 :])
    alias = any(query in w for w in words if not w.isascii())
    return first, alias_initials, alias


def _rank(category: Category, query: str, lowered: str) -> int | None:
    code = category.code.lower()
    if code == lowered:
        return 0
    first, alias_initials, alias = _word_rank(category.pinyin.split(), query, lowered)
    if first:
        return 1
    if alias_initials:
        return 2
    if category.name.startswith(query):
        return 3
    if query in category.name:
        return 4
    if alias:
        return 5
    if code.startswith(lowered) or code.lstrip("abcdefghijklmnopqrstuvwxyz").startswith(lowered):
        return 6
    parent = category.parent
    if parent is not None:
        p_first, p_alias_initials, p_alias = _word_rank(parent.pinyin.split(), query, lowered)
        if query in parent.name or p_first or p_alias_initials or p_alias:
            return 7
    return None
