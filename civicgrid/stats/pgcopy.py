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
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from django.db import connection, models
from django.db.models import Model

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


@lru_cache(maxsize=64)
def _plan(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple[Formatter, ...]]:
    q = connection.ops.quote_name
    by_name: dict[str, Any] = {f.attname: f for f in model._meta.concrete_fields}
    fields = [by_name[name] for name in names]
    columns = ", ".join(q(str(f.column)) for f in fields)
    sql = f"COPY {q(model._meta.db_table)} ({columns}) FROM STDIN"
    return sql, tuple(formatter(f) for f in fields)


@dataclass(frozen=True)
class Copy:
    """The ``COPY`` of some rows of a table, ready to send (``send``)."""

    model: type[Model]
    names: tuple[str, ...]
    text: str
    rows: int


def prepare(model: type[Model], names: Sequence[str], rows: Iterable[Sequence[Any]]) -> Copy:
    """The ``COPY`` text of rows given as tuples of the values of the fields ``names``
    (attnames), in that order."""
    names = tuple(names)
    _sql, formats = _plan(model, names)
    pairs = tuple(enumerate(formats))
    lines = ["\t".join([fmt(row[i]) for i, fmt in pairs]) for row in rows]
    count = len(lines)
    if lines:
        lines.append("")
    return Copy(model, names, "\n".join(lines), count)


def prepare_objects(model: type[Model], objects: Sequence[Any]) -> Copy:
    """The ``COPY`` text of model instances: every concrete field, the primary key only
    when the first instance has one (else the database numbers the rows)."""
    if not objects:
        return Copy(model, (), "", 0)
    pk = model._meta.pk
    keep_pk = pk is not None and getattr(objects[0], pk.attname) is not None
    names = tuple(f.attname for f in model._meta.concrete_fields if keep_pk or not f.primary_key)
    return prepare(model, names, map(operator.attrgetter(*names), objects))


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


__all__ = ["Copy", "copy_tuples", "formatter", "prepare", "prepare_objects", "send"]
