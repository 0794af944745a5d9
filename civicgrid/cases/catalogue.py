"""The category catalogue (大类/小类, criteria, default units, time limits) as data.

civicgrid ships it as ``cases/data/categories.csv``; the data migration
``0004_load_categories`` loads it on ``migrate`` and ``civicgrid load-categories``
loads an edited copy (CSV or XLSX) again or exports the catalogue for editing. The
file's layout and code scheme are described in ``catalogue_format``.

Loading checks every row first and writes nothing when any row is wrong; then it
writes in one transaction. It is idempotent: a category is known by its code and
updated in place. A column missing from the file leaves that field alone; an empty
time-limit cell removes that limit. A default unit is set only when a unit with
that code exists. Aliases are kept after the initials in ``Category.pinyin``
(``zdjy 摆摊设点 btsd``), which ``search_categories`` reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from civicgrid.cases.catalogue_format import (
    ASCII_WORD,
    COLUMNS,
    DEFAULT_PATH,
    Catalogue,
    CatalogueError,
    CatalogueRow,
    Limit,
    Problem,
    limit_column,
    read_catalogue,
    write_csv,
    write_xlsx,
)
from civicgrid.cases.models import Category, TimeLimit
from civicgrid.grids.models import HandlingUnit

__all__ = [
    "COLUMNS",
    "DEFAULT_PATH",
    "CatalogueError",
    "CatalogueModels",
    "CatalogueResult",
    "Problem",
    "catalogue_rows",
    "check_catalogue",
    "export_catalogue",
    "link_default_units",
    "load_catalogue",
    "load_catalogue_with",
    "read_catalogue",
    "search_categories",
]


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


def check_catalogue(*, path: Path | None = None, update: bool = True) -> Catalogue:
    """Check a catalogue file as loading it would, without writing: ``CatalogueError``
    lists every problem."""
    catalogue = read_catalogue(path)
    _Writer(
        APP_MODELS, catalogue, path=path or DEFAULT_PATH, update=update, using="default"
    ).check()
    return catalogue


def link_default_units(*, path: Path | None = None) -> int:
    """Fill in the default unit of categories that have none from the file's unit codes,
    now that those units exist (e.g. after the demo district made them). Returns how
    many categories were linked; nothing else is changed."""
    catalogue = check_catalogue(path=path)
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

    def check(self) -> tuple[dict[str, Any], list[CatalogueRow]]:
        """Raise ``CatalogueError`` with every problem of the file, its own and those
        against the database; else the existing categories by code and the rows to write."""
        rows = self.catalogue.rows
        existing = {c.code: c for c in self._categories().filter(code__in=[r.code for r in rows])}
        written = [r for r in rows if self.update or r.code not in existing]
        problems = self.catalogue.problems + self._relation_problems(written)
        if problems:
            raise CatalogueError(sorted(problems, key=lambda p: p.row))
        return existing, written

    def run(self) -> CatalogueResult:
        existing, written = self.check()
        self.result.skipped = len(self.catalogue.rows) - len(written)
        unit_codes = {r.default_unit_code for r in written if r.default_unit_code}
        self.units: dict[str, int] = dict(
            self.m.unit.objects.using(self.using)
            .filter(code__in=unit_codes)
            .values_list("code", "pk")
        )
        self.unknown_units: Counter[str] = Counter()
        self.pks: dict[str, int] = {code: c.pk for code, c in existing.items()}
        parent_codes = {r.parent_code for r in written if r.parent_code} - set(self.pks)
        self.pks.update(self._categories().filter(code__in=parent_codes).values_list("code", "pk"))
        changed: set[str] = set()
        # 大类 first, so their 小类 can point at them.
        for tier in (
            [r for r in written if not r.parent_code],
            [r for r in written if r.parent_code],
        ):
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

    def _relation_problems(self, written: list[CatalogueRow]) -> list[Problem]:
        """Each 小类's 大类 exists (in the file or the database), is a 大类 and is of
        the same kind; a 大类 that keeps 小类 neither becomes a 小类 nor changes kind."""
        in_file = {r.code: r for r in written}
        merged: dict[str, tuple[str, str]] = {
            code: (kind, parent or "")
            for code, kind, parent in self._categories().values_list("code", "kind", "parent__code")
        }
        merged.update({r.code: (r.kind, r.parent_code) for r in written})
        problems: list[Problem] = []

        def add(row: CatalogueRow, column: str, message: str) -> None:
            problems.append(Problem(row.row, self.catalogue.label(column), message))

        def named(code: str) -> str:
            row = in_file.get(code)
            if row is None:
                return f"“{code}”"
            return _("“%(code)s”（第 %(row)d 行）") % {"code": code, "row": row.row}

        for row in written:
            if not row.parent_code:
                continue
            parent = merged.get(row.parent_code)
            if parent is None:
                add(
                    row,
                    "parent_code",
                    _("大类“%(code)s”不存在：文件和系统中都没有这个编码")
                    % {"code": row.parent_code},
                )
            elif parent[1]:
                add(
                    row,
                    "parent_code",
                    _("%(parent)s本身是小类，小类下不能再分小类")
                    % {"parent": named(row.parent_code)},
                )
            elif parent[0] and row.kind and parent[0] != row.kind:
                add(
                    row,
                    "kind",
                    _("类型与大类%(parent)s不一致") % {"parent": named(row.parent_code)},
                )
        for code, (kind, parent_code) in merged.items():
            major = in_file.get(parent_code)
            if major is None or code in in_file:
                continue  # the file's own rows were checked above
            if major.parent_code:
                add(
                    major,
                    "parent_code",
                    _("系统中“%(code)s”下还有小类“%(child)s”，不能改为小类")
                    % {"code": major.code, "child": code},
                )
            elif kind and major.kind and kind != major.kind:
                add(
                    major,
                    "kind",
                    _("系统中“%(code)s”下的小类“%(child)s”类型不同，不能改变大类的类型")
                    % {"code": major.code, "child": code},
                )
        return problems

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
        has_initials = bool(words) and bool(ASCII_WORD.match(words[0]))
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
        write_xlsx(rows, path)
    else:
        raise ValueError(_("导出文件须为 .xlsx 或 .csv：%(path)s") % {"path": path})
    return len(rows)


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
    initials = bool(words) and bool(ASCII_WORD.match(words[0]))
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
