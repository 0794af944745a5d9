"""``pgcopy`` formats a column at a time: the same text as its formatter of one value.

``test_pgcopy`` proves (on PostgreSQL) that the text reads back as the ORM's rows;
here, on any database, that the column formatters' fast paths write exactly what the
per-value formatters write, for every kind of value, NULLs and escapes included.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import models
from django.db.models import Model

from civicgrid.cases.models import Action, Case, CaseEvent, Deadline, Status
from civicgrid.stats import pgcopy
from civicgrid.stats.models import CaseFact

TZ = ZoneInfo("Asia/Shanghai")


class _Fixed(tzinfo):
    """A time zone of another kind than ZoneInfo and timezone."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=3)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "+03"


def reference(model: type[Model], names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The ``COPY`` text by the formatter of each value (how ``prepare`` used to do it)."""
    by_name = {f.attname: f for f in model._meta.concrete_fields}
    formats = [pgcopy.formatter(by_name[n]) for n in names]
    lines = ["\t".join(fmt(row[i]) for i, fmt in enumerate(formats)) for row in rows]
    return "".join(line + "\n" for line in lines)


def values_for(field: Any, rnd: random.Random, n: int, *, nulls: bool) -> list[Any]:
    def one(i: int) -> Any:
        if nulls and i % 7 == 3:
            return None
        if isinstance(field, models.JSONField):
            return rnd.choice([{}, {"a": i, "b": [1, None, "x\ty"]}, [], "s\\n", 2.5, {"中": "文"}])
        if isinstance(field, models.BooleanField):
            return rnd.random() < 0.5
        if isinstance(field, models.DateTimeField):
            zone = rnd.choice([TZ, UTC, timezone(timedelta(hours=-5, minutes=-30))])
            moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randrange(10**9))
            return moment.replace(microsecond=rnd.choice([0, 123456])).astimezone(zone)
        if isinstance(field, models.DateField):
            return date(2020, 1, 1) + timedelta(days=rnd.randrange(3000))
        if isinstance(field, models.DecimalField):
            return Decimal(rnd.randrange(-(10**6), 10**6)) / 100
        if isinstance(field, models.FloatField):
            return rnd.uniform(-180, 180)
        if isinstance(field, models.IntegerField | models.AutoField | models.ForeignKey):
            return rnd.randrange(-(2**40), 2**40)
        return rnd.choice(["", "plain", "tab\there", "new\nline", "back\\slash", "\\N", "中文"])

    return [one(i) for i in range(n)]


@pytest.mark.parametrize("model", [Case, CaseEvent, Deadline, CaseFact], ids=lambda m: m.__name__)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "with-nulls"])
def test_columns_are_written_as_each_value_would_be(model: type[Model], nulls: bool) -> None:
    rnd = random.Random(f"{model.__name__}{nulls}")
    fields = list(model._meta.concrete_fields)
    names = [f.attname for f in fields]
    columns = [
        values_for(f, rnd, 200, nulls=nulls and (f.null or not f.primary_key)) for f in fields
    ]
    rows = [list(r) for r in zip(*columns, strict=True)]
    objects = [model(**dict(zip(names, row, strict=True))) for row in rows]
    expected = reference(model, names, rows)
    copy = pgcopy.prepare_objects(model, objects)  # a column at a time
    assert (copy.rows, copy.names) == (200, tuple(names))
    assert copy.text == expected
    assert pgcopy.prepare_tables([(model, objects)]) == [copy]
    assert pgcopy.prepare(model, names, rows).text == expected  # a row at a time


def test_a_column_of_plain_text_needs_no_escapes_and_one_that_does_gets_them() -> None:
    field = Case._meta.get_field("description")
    column = pgcopy.column_formatter(field)
    plain = ["a", Status.CLOSED, "中文", ""]
    assert column(plain) == ["a", "closed", "中文", ""]
    awkward = [*plain, "x\ty\\z\r\n"]
    assert column(awkward) == [pgcopy.formatter(field)(v) for v in awkward]


def test_times_in_any_zone_and_naive_ones_refused() -> None:
    column = pgcopy.column_formatter(CaseEvent._meta.get_field("at"))
    other = datetime(2025, 3, 3, 9, tzinfo=_Fixed())
    assert column([other, None]) == ["2025-03-03T09:00:00+03:00", "\\N"]
    assert column([datetime(2025, 3, 3, 9, tzinfo=TZ)]) == ["2025-03-03T09:00:00+08:00"]
    with pytest.raises(ValueError, match="timezone-aware"):
        column([datetime(2025, 3, 3, 9, tzinfo=UTC), datetime(2025, 3, 3, 9)])


def test_numbers_and_booleans_as_the_per_value_formatters() -> None:
    number = pgcopy.column_formatter(Case._meta.get_field("satisfaction"))
    assert number([1, 2.0, Decimal(3), True]) == ["1", "2", "3", "1"]
    flag = pgcopy.column_formatter(Case._meta.get_field("is_overdue"))
    assert flag([True, False, None, 1, 0]) == ["t", "f", "\\N", "t", "f"]


def test_instances_are_read_as_their_attributes() -> None:
    events = [
        CaseEvent(case_id=1, action=Action.ACCEPT, at=datetime(2025, 3, 3, 9, tzinfo=TZ)),
        CaseEvent(case_id=2, action=Action.CLOSE, at=datetime(2025, 3, 4, 9, tzinfo=TZ)),
    ]
    copy = pgcopy.prepare_objects(CaseEvent, events)
    names = copy.names
    assert "id" not in names
    rows = [[getattr(e, n) for n in names] for e in events]
    assert copy.text == reference(CaseEvent, names, rows)
    assert pgcopy.prepare_objects(CaseEvent, []).rows == 0
    assert pgcopy.prepare(CaseEvent, names, []).text == ""


def test_rows_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        pgcopy.prepare(Deadline, ["case_id", "stage"], [[1, "accept"], [2]])
    with pytest.raises(ValueError, match="longer"):
        pgcopy.prepare(Deadline, ["case_id", "stage"], [[1, "accept", 3]])


def test_tables_prepared_together_share_the_times_they_share() -> None:
    rnd = random.Random(5)
    times = [
        datetime(2025, 3, 3, 9, tzinfo=TZ) + timedelta(minutes=rnd.randrange(9999))
        for _ in range(20)
    ]
    utc = [t.astimezone(UTC) for t in times]  # equal instants, other objects and texts
    events = [
        CaseEvent(case_id=1, action=Action.ACCEPT, at=rnd.choice(times + utc)) for _ in range(50)
    ]
    deadlines = [
        Deadline(
            case_id=1,
            stage="accept",
            started_at=rnd.choice(times),
            due_at=rnd.choice(utc),
            finished_at=rnd.choice([None, *times]),
            amount=Decimal(2),
            unit="work_hours",
        )
        for _ in range(50)
    ]
    copies = pgcopy.prepare_tables([(CaseEvent, events), (Deadline, deadlines), (Case, [])])
    assert [c.rows for c in copies] == [50, 50, 0]
    together: list[tuple[pgcopy.Copy, Sequence[Model]]] = [
        (copies[0], events),
        (copies[1], deadlines),
    ]
    for copy, objects in together:
        rows = [[getattr(o, n) for n in copy.names] for o in objects]
        assert copy.text == reference(copy.model, copy.names, rows)
        assert copy == pgcopy.prepare_objects(copy.model, objects)


def test_a_repeated_wall_time_keeps_its_offset() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2025, 10, 26, 2, 30, tzinfo=berlin)  # 02:30 happens twice that night
    second = first.replace(fold=1)
    assert first == second  # the same wall time in the same zone: equal, yet
    column = pgcopy.column_formatter(CaseEvent._meta.get_field("at"))
    texts = ["2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00"]
    assert column([first, second, first, second]) == texts * 2
    copies = pgcopy.prepare_tables(
        [(CaseEvent, [CaseEvent(case_id=1, action=Action.ACCEPT, at=t) for t in (first, second)])]
    )
    assert copies[0].text == reference(
        CaseEvent,
        copies[0].names,
        [
            [getattr(e, n) for n in copies[0].names]
            for e in [
                CaseEvent(case_id=1, action=Action.ACCEPT, at=first),
                CaseEvent(case_id=1, action=Action.ACCEPT, at=second),
            ]
        ],
    )
