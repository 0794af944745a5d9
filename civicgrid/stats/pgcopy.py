"""Rows straight into PostgreSQL's ``COPY … FROM STDIN`` text format.

``rollups.insert_rows`` sends each value through its field's ``get_db_prep_save``
and psycopg's per-value adaptation (``write_row``): about 20 µs a row, which at a
million imported cases and fourteen rows each is most of a bulk import's time. Here
each column gets a formatter chosen once from its field's type, and a batch's rows go
to the server as one text buffer. Only the field types the case tables use are known;
another raises ``TypeError`` when the formatters are built, never silently.

The text format (PostgreSQL's ``COPY`` documentation): columns separated by tabs,
rows by newlines, ``\\N`` for NULL, backslash, tab, newline and carriage return
escaped with a backslash; booleans ``t``/``f``; times in ISO 8601 with their offset.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models
from django.db.models import Model
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Formatter = Callable[[Any], str]


def _text(value: Any) -> str:
    if value is None:
        return NULL
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def _number(value: Any) -> str:
    return NULL if value is None else str(int(value))


def _float(value: Any) -> str:
    return NULL if value is None else repr(float(value))


def _boolean(value: Any) -> str:
    if value is None:
        return NULL
    return "t" if value else "f"


def _moment(value: datetime | None) -> str:
    if value is None:
        return NULL
    if value.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {value!r}")
    return value.isoformat()


def _day(value: date | None) -> str:
    return NULL if value is None else value.isoformat()


def _decimal(value: Any) -> str:
    return NULL if value is None else str(value)


def formatter(field: Any) -> Formatter:
    """How a value of ``field`` is written in ``COPY`` text."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def as_json(value: Any) -> str:
            if value is None:
                return NULL
            return _text(json.dumps(value, cls=encoder))

        return as_json
    if isinstance(field, models.BooleanField):
        return _boolean
    if isinstance(field, models.DateTimeField):
        return _moment
    if isinstance(field, models.DateField):
        return _day
    if isinstance(field, models.DecimalField):
        return _decimal
    if isinstance(field, models.FloatField):
        return _float
    if isinstance(field, models.IntegerField | models.AutoField | models.ForeignKey):
        return _number
    if isinstance(field, models.CharField | models.TextField):
        return _text
    raise TypeError(f"no COPY formatter for {field!r}")


# -- whole columns -------------------------------------------------------------------
# What the formatters above give, for a column of values at a time: mostly loops in C
# (``map`` of a builtin), a value at a time in Python only where a column needs it (a
# NULL, an escape, an unusual time zone).

Column = Callable[[Sequence[Any]], list[str]]
_isoformat = operator.methodcaller("isoformat")
_tzinfo = operator.attrgetter("tzinfo")


def _texts(values: Sequence[Any]) -> list[str]:
    out = list(map(str, values))
    if "None" in out:  # cheaper than looking for None itself: strings compare fast
        return [_text(v) for v in values]
    joined = "".join(out)
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return [_text(v) for v in out]
    return out


def _numbers(values: Sequence[Any]) -> list[str]:
    try:
        return list(map(str, map(int, values)))
    except TypeError:  # a NULL (int(None))
        return [NULL if v is None else str(int(v)) for v in values]


def _floats(values: Sequence[Any]) -> list[str]:
    if None in values:
        return [_float(v) for v in values]
    return list(map(repr, map(float, values)))


def _booleans(values: Sequence[Any]) -> list[str]:
    return [NULL if v is None else "t" if v else "f" for v in values]


#: Time zones whose ``utcoffset`` is never None.
_ALWAYS_AWARE = frozenset({ZoneInfo, timezone})


#: Formatted times by time zone and time, shared by the columns of ``prepare_tables``.
Times = dict[Any, dict[datetime, str]]


def _moments(values: Sequence[Any], memo: Times | None = None) -> list[str]:
    """Times in ISO 8601. ``isoformat`` is slow (most of a microsecond), and a batch's
    times repeat (a step's time is its event's, its deadlines' start and end, the
    case's; many deadlines fall at the end of the same office period): each time is
    formatted once, remembered in ``memo`` by zone and value. Equal times in the same
    zone format alike, unless one is the second of a repeated wall time (``fold``):
    those are not remembered."""
    zones = set(map(_tzinfo, filter(None, values)))  # (a datetime is never false)
    if not all(type(zone) in _ALWAYS_AWARE for zone in zones):
        return [_moment(v) for v in values]  # naive ones raise there
    if memo is None:
        memo = {}
    for zone in zones:
        memo.setdefault(zone, {})
    out: list[str] = []
    append = out.append
    for value in values:
        if value is None:
            append(NULL)
        elif value.fold:
            append(value.isoformat())
        else:
            known = memo[value.tzinfo]
            text = known.get(value)
            if text is None:
                text = known[value] = value.isoformat()
            append(text)
    return out


def _days(values: Sequence[Any]) -> list[str]:
    if None in values:
        return [_day(v) for v in values]
    return list(map(_isoformat, values))


def _decimals(values: Sequence[Any]) -> list[str]:
    if None in values:
        return [_decimal(v) for v in values]
    return list(map(str, values))


_COLUMNS: dict[Formatter, Column] = {
    _text: _texts,
    _number: _numbers,
    _float: _floats,
    _boolean: _booleans,
    _moment: _moments,
    _day: _days,
    _decimal: _decimals,
}


def column_formatter(field: Any) -> Column:
    """How a column of values of ``field`` is written in ``COPY`` text: what
    ``formatter(field)`` gives for each value."""
    if isinstance(field, models.JSONField):
        # The encoder json.dumps(value, cls=field.encoder) makes for each value.
        encode = (
            json.JSONEncoder()
            if field.encoder is None
            else field.encoder(
                skipkeys=False,
                ensure_ascii=True,
                check_circular=True,
                allow_nan=True,
                indent=None,
                separators=None,
                default=None,
                sort_keys=False,
            )
        ).encode

        def as_json(values: Sequence[Any]) -> list[str]:
            return _texts(
                [
                    None if v is None else "{}" if type(v) is dict and not v else encode(v)
                    for v in values
                ]
            )

        return as_json
    return _COLUMNS[formatter(field)]


@lru_cache(maxsize=64)
def _plan(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple[Column, ...]]:
    q = connection.ops.quote_name
    by_name: dict[str, Any] = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_name[name] for name in names]
    columns = ", ".join(q(str(f.column)) for f in fields)
    sql = f"COPY {q(model._meta.db_table)} ({columns}) FROM STDIN"
    return sql, tuple(column_formatter(f) for f in fields)


@dataclass(frozen=True)
class Copy:
    """The ``COPY`` of some rows of a table, ready to send (``send``)."""

    model: type[Model]
    names: tuple[str, ...]
    text: str
    rows: int


def _join(
    model: type[Model],
    names: tuple[str, ...],
    columns: Sequence[Sequence[Any]],
    memo: Times | None = None,
) -> Copy:
    _sql, formats = _plan(model, names)
    if len(columns) != len(names):
        raise ValueError(f"{len(names)} columns expected, got {len(columns)}")
    formatted = [
        _moments(values, memo) if fmt is _moments and memo is not None else fmt(values)
        for fmt, values in zip(formats, columns, strict=True)
    ]
    lines = list(map("\t".join, zip(*formatted, strict=True)))
    count = len(lines)
    if lines:
        lines.append("")
    return Copy(model, names, "\n".join(lines), count)


@lru_cache(maxsize=64)
def _value_formats(model: type[Model], names: tuple[str, ...]) -> tuple[Formatter, ...]:
    by_name: dict[str, Any] = {f.attname: f for f in model._meta.concrete_fields}
    return tuple(formatter(by_name[name]) for name in names)


def prepare(model: type[Model], names: Sequence[str], rows: Iterable[Sequence[Any]]) -> Copy:
    """The ``COPY`` text of rows given as tuples of the values of the fields ``names``
    (attnames), in that order. (Row by row: turning many short rows into columns and
    back costs what formatting a column at a time saves.)"""
    names = tuple(names)
    formats = _value_formats(model, names)
    lines = ["\t".join([fmt(v) for fmt, v in zip(formats, row, strict=True)]) for row in rows]
    count = len(lines)
    if lines:
        lines.append("")
    return Copy(model, names, "\n".join(lines), count)


#: Attribute descriptors that read an instance's value from its ``__dict__`` as it is
#: (when it is there): a column of those is read from the instances' dicts directly.
_PLAIN = (DeferredAttribute, ForeignKeyDeferredAttribute)


@lru_cache(maxsize=256)
def _plain(model: type[Model], name: str) -> bool:
    descriptor = next((k.__dict__[name] for k in model.__mro__ if name in k.__dict__), None)
    return descriptor is None or type(descriptor) in _PLAIN


def _columns(model: type[Model], names: tuple[str, ...], objects: Sequence[Any]) -> list[Any]:
    """The values of the fields ``names`` of ``objects``, a sequence per field. Read a
    row at a time (each instance once, while it is in the CPU's cache), from the
    instances' dicts when every field is a plain one and there."""
    get: Callable[[Any], Any]
    if len(names) == 1:
        return [[getattr(o, names[0]) for o in objects]]
    rows: list[Any] | None = None
    if all(_plain(model, name) for name in names):
        get = operator.itemgetter(*names)
        try:
            rows = list(map(get, map(vars, objects)))
        except KeyError:  # deferred: the descriptors fetch them
            rows = None
    if rows is None:
        get = operator.attrgetter(*names)
        rows = list(map(get, objects))
    return list(zip(*rows, strict=True))


def prepare_objects(model: type[Model], objects: Sequence[Any]) -> Copy:
    """The ``COPY`` text of model instances: every concrete field, the primary key only
    when the first instance has one (else the database numbers the rows)."""
    return prepare_tables([(model, objects)])[0]


def prepare_tables(tables: Sequence[tuple[type[Model], Sequence[Any]]]) -> list[Copy]:
    """``prepare_objects`` of each (model, instances), the times they share formatted
    once."""
    memo: Times = {}
    copies = []
    for model, objects in tables:
        if not objects:
            copies.append(Copy(model, (), "", 0))
            continue
        pk = model._meta.pk
        keep_pk = pk is not None and getattr(objects[0], pk.attname) is not None
        names = tuple(
            f.attname for f in model._meta.concrete_fields if keep_pk or not f.primary_key
        )
        copies.append(_join(model, names, _columns(model, names, objects), memo))
    return copies


def send(copy: Copy) -> int:
    """Run the ``COPY`` (in the caller's transaction). Returns how many rows."""
    if copy.rows:
        sql, _formats = _plan(copy.model, copy.names)
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as stream:
            stream.write(copy.text)
    return copy.rows


def copy_tuples(model: type[Model], names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """``prepare`` and ``send``."""
    return send(prepare(model, names, rows))


__all__ = [
    "Copy",
    "column_formatter",
    "copy_tuples",
    "formatter",
    "prepare",
    "prepare_objects",
    "prepare_tables",
    "send",
]
