"""Keeping the rollups equal to the sum of the facts, in the transaction of each transition.

The case services call one hook after every write that matters (``record_intake``
from ``create_case``, ``record_transition`` from ``engine.move``, ``record_overdue``
from the deadline sweep). Each recomputes the case's fact from its rows
(``facts.compute``), compares it with the stored one, stores the new one and adds
the difference to every rollup row either touches: a case that changes lead unit
moves from one unit's rows to the other's, one that closes moves from "open" to
"closed" on its day of intake. Counters are added with one ``INSERT … ON CONFLICT
DO UPDATE SET c = c + excluded.c`` per table, keys in order (no deadlocks between
two transitions).

``rebuild_rollups(day_from, day_to)`` recomputes the rollup rows of those days
(and of the months they touch) from the facts with ``INSERT … SELECT … GROUP BY``:
the bulk history generator's path, and a periodic job that repairs any drift.
With ``refresh_facts=True`` it first recomputes the facts of the cases taken in or
acted on in those days. On PostgreSQL a rebuild locks the statistics tables against
writers (``SHARE ROW EXCLUSIVE``) while each transition's hook takes ``ROW
EXCLUSIVE`` before it reads a fact, so the two serialise without deadlock.
"""

from __future__ import annotations

import json
import logging
import time as clock
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.models import Max, Min, Model
from django.utils import timezone

from civicgrid.cases.models import Case, CaseEvent, Deadline
from civicgrid.stats import conf, pgcopy
from civicgrid.stats.counters import CASE_COUNTERS, PERSON_COUNTERS
from civicgrid.stats.facts import (
    CASE_FIELDS,
    DEADLINE_FIELDS,
    EVENT_FIELDS,
    Fact,
    PersonKey,
    as_case_row,
    as_deadline_row,
    as_event_row,
    compute,
)
from civicgrid.stats.models import (
    CaseFact,
    DimRollup,
    GridRollup,
    PersonFact,
    PersonRollup,
    Rollup,
)

logger = logging.getLogger("civicgrid.stats")

#: Cases read and written at once by ``refresh_cases`` and ``write_facts``.
CHUNK = 1000
#: Rows per upsert statement (SQLite allows 32,766 parameters).
UPSERT_ROWS = 300

STATS_TABLES = (CaseFact, PersonFact, GridRollup, DimRollup, Rollup, PersonRollup)


# -- the hooks ----------------------------------------------------------------------------
def record_intake(
    case: Case,
    *,
    events: Sequence[CaseEvent] | None = None,
    deadlines: Sequence[Deadline] | None = None,
) -> None:
    """``create_case`` took ``case`` in (inside its transaction).

    Given the event and deadline rows the intake just wrote (all the rows the case
    has), the fact is computed from them in memory: a new case has no stored fact to
    read or take out of the rollups, so the hook is the fact's INSERTs and one upsert
    per rollup table, with no read. Without them it reads the rows back like every
    other hook."""
    if events is None or deadlines is None or timezone.is_naive(case.received_at):
        refresh_cases([case.pk])
        return
    fact = compute(
        as_case_row({name: getattr(case, name) for name in CASE_FIELDS}),
        [as_deadline_row({n: getattr(d, n) for n in DEADLINE_FIELDS}) for d in deadlines],
        [as_event_row({n: getattr(e, n) for n in EVENT_FIELDS}) for e in events],
        public_channels=conf.get("public_channels"),
    )
    if not connection.in_atomic_block:
        with transaction.atomic():
            _add_new_facts([fact])
    else:
        _add_new_facts([fact])


def _add_new_facts(facts: list[Fact]) -> None:
    """Store the facts of cases that have none and add them to the rollups. The
    first statement is the fact's INSERT, which takes the same ROW EXCLUSIVE lock on
    ``stats_casefact`` that ``_refresh_chunk`` takes before reading (so a rebuild and
    this serialise the same way)."""
    deltas = Deltas()
    for fact in facts:
        deltas.add(fact, +1)
    _insert_facts(facts, small=True)
    deltas.apply()


def record_transition(case: Case, event: CaseEvent | None = None) -> None:
    """``engine.move`` applied a transition to ``case`` (inside its transaction)."""
    refresh_cases([case.pk])


def record_overdue(case_id: int) -> None:
    """The deadline sweep marked a stage of the case overdue (inside its transaction)."""
    refresh_cases([case_id])


# -- facts --------------------------------------------------------------------------------
def load_facts(case_ids: Sequence[int]) -> dict[int, Fact]:
    """The facts of these cases as their rows say now (three queries)."""
    if not case_ids:
        return {}
    ids = list(case_ids)
    deadlines: dict[int, list[Any]] = {}
    for row in (
        Deadline.objects.filter(case_id__in=ids)
        .order_by("case_id", "id")
        .values("case_id", *DEADLINE_FIELDS)
    ):
        deadlines.setdefault(row["case_id"], []).append(as_deadline_row(row))
    events: dict[int, list[Any]] = {}
    for row in (
        CaseEvent.objects.filter(case_id__in=ids)
        .order_by("case_id", "id")
        .values("case_id", *EVENT_FIELDS)
    ):
        events.setdefault(row["case_id"], []).append(as_event_row(row))
    public = conf.get("public_channels")
    return {
        row["id"]: compute(
            as_case_row(row),
            deadlines.get(row["id"], []),
            events.get(row["id"], []),
            public_channels=public,
        )
        for row in Case.objects.filter(pk__in=ids).values(*CASE_FIELDS)
    }


def stored_facts(case_ids: Sequence[int]) -> dict[int, Fact]:
    """The facts stored for these cases (what the rollups hold for them)."""
    if not case_ids:
        return {}
    ids = list(case_ids)
    persons: dict[int, dict[PersonKey, dict[str, int]]] = {}
    for row in PersonFact.objects.filter(case_id__in=ids).values(
        "case_id", "day", "user", "role", *PERSON_COUNTERS
    ):
        persons.setdefault(row["case_id"], {})[(row["day"], row["user"], row["role"])] = {
            name: row[name] for name in PERSON_COUNTERS
        }
    out = {}
    stored: Any = CaseFact.objects.filter(case_id__in=ids).values()
    for row in stored:
        out[row["case_id"]] = Fact(
            case_id=row["case_id"],
            day=row["day"],
            month=row["month"],
            nodes=(row["node0"], row["node1"], row["node2"], row["node3"]),
            grid_path=row["grid_path"],
            category=row["category"],
            unit=row["unit"],
            channel=row["channel"],
            request_type=row["request_type"],
            counters={name: row[name] for name in CASE_COUNTERS},
            persons=persons.get(row["case_id"], {}),
        )
    return out


def write_facts(facts: Iterable[Fact]) -> int:
    """Insert facts of cases that have none, without touching the rollups (a bulk
    writer then calls ``rebuild_rollups`` for their days)."""
    written = 0
    batch: list[Fact] = []
    for fact in facts:
        batch.append(fact)
        if len(batch) >= CHUNK:
            written += _insert_facts(batch)
            batch = []
    return written + _insert_facts(batch)


def record_bulk_intake(facts: Sequence[Fact]) -> int:
    """Store the facts of cases a bulk writer has just inserted (with their events and
    deadlines) and add them to the rollups, inside the writer's transaction: what the
    hooks would have done case by case, in a dozen statements per batch."""
    return record_prepared_intake(prepare_bulk_intake(facts))


@dataclass
class PreparedFacts:
    """Facts ready for ``record_prepared_intake``: on PostgreSQL their ``COPY`` text,
    made beforehand (by a thread other than the one that writes, say)."""

    facts: list[Fact]
    copies: list[pgcopy.Copy]


def prepare_bulk_intake(facts: Sequence[Fact]) -> PreparedFacts:
    facts = list(facts)
    copies: list[pgcopy.Copy] = []
    if facts and connection.vendor == "postgresql":
        for model, rows in (
            (CaseFact, [f.columns() for f in facts]),
            (PersonFact, [row for f in facts for row in f.person_columns()]),
        ):
            if rows:
                names = tuple(rows[0])
                copies.append(pgcopy.prepare(model, names, ([r[n] for n in names] for r in rows)))
    return PreparedFacts(facts, copies)


def record_prepared_intake(prepared: PreparedFacts) -> int:
    """``record_bulk_intake`` of facts prepared by ``prepare_bulk_intake``."""
    facts = prepared.facts
    if not facts:
        return 0
    _lock("ROW EXCLUSIVE", (CaseFact,))
    if connection.vendor == "postgresql":
        for copy in prepared.copies:
            pgcopy.send(copy)
    else:
        _insert_facts(facts)
    add_stored_facts([f.case_id for f in facts])
    return len(facts)


def add_stored_facts(case_ids: Sequence[int]) -> None:
    """Add the stored facts of ``case_ids`` (cases just inserted, in no rollup yet) to
    the rollups, in the caller's transaction: what ``Deltas`` adds for them, summed by
    the database (``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE``, one statement
    per rollup table, rows in key order) instead of in Python and sent back."""
    if not case_ids:
        return
    ids = sorted(case_ids)
    param: Any = ids
    if connection.vendor == "postgresql":
        where = "= ANY(%s)"
    else:  # one parameter whatever the number of cases
        where, param = "IN (SELECT value FROM json_each(%s))", json.dumps(ids)
    rollup_levels, dim_levels = levels("rollup_levels"), levels("dim_levels")
    with connection.cursor() as cursor:
        for table in (GridRollup, DimRollup, Rollup, PersonRollup):
            parts = list(_bulk_parts(table, rollup_levels, dim_levels))
            if not parts:
                continue
            cursor.execute(_bulk_statement(table, tuple(parts), where, connection.vendor), [param])


def _bulk_parts(
    table: type[Model], rollup_levels: list[int], dim_levels: list[int]
) -> Iterable[tuple[str, ...]]:
    """The (source, level, grain, dim) of each group of rows ``table`` gets from facts."""
    grains = ("d", "m")
    if table is GridRollup:
        return (("fact", str(lv), g, "") for lv in range(4) for g in grains)
    if table is DimRollup:
        return (("fact", str(lv), g, d) for lv in dim_levels for d in DIMENSIONS for g in grains)
    if table is Rollup:
        return (("fact", str(lv), g, "") for lv in rollup_levels for g in grains)
    return (("person", str(lv), g, "") for lv in rollup_levels for g in grains)


@lru_cache(maxsize=16)
def _bulk_statement(
    table: type[Model], parts: tuple[tuple[str, ...], ...], where: str, vendor: str
) -> str:
    """One upsert of ``table`` from the facts of a set of cases (``case_id {where}``,
    one parameter): the same rows, keys and sums as ``rebuild_rollups``'
    ``_insert_*`` (and as ``Deltas``), added to the counters already there. The cases'
    facts are read once (a materialised ``WITH``) and every part sums them from there:
    one index lookup a case rather than one a case and part (16 parts for the
    dimension rollups)."""
    q = connection.ops.quote_name
    keys, extra, counters = KEYS[table]
    columns = (*keys, *extra, *counters)
    selects = []
    sources: set[type[Model]] = set()
    for source, level_text, grain, dim in parts:
        level = int(level_text)
        node = q(f"node{level}")
        period = q("day" if grain == "d" else "month")
        located = f" AND {node} <> 0" if level else ""
        values: dict[str, str] = {
            "node": node,
            "grain": f"'{grain}'",
            "period": period,
            "level": str(level),
        }
        group = [period, node]
        if table is GridRollup:
            values["parent"] = q(f"node{level - 1}") if level else "0"
            group += [values["parent"]] if level else []
        elif table is DimRollup:
            values["dim"] = f"'{dim}'"
            values["key"] = f"CAST({q(dim)} AS VARCHAR(32))"
            group.append(q(dim))
        elif table is Rollup:
            for name in DIMENSIONS:
                values[name] = q(name)
                group.append(q(name))
        else:
            values["user"], values["role"] = q("user"), q("role")
            group += [q("user"), q("role")]
        sources.add(CaseFact if source == "fact" else PersonFact)
        selected = ", ".join(
            [f"{values[c]} AS {q(c)}" for c in (*keys, *extra)]
            + [f"SUM({q(c)}) AS {q(c)}" for c in counters]
        )
        selects.append(
            f"SELECT {selected} FROM batch "  # noqa: S608
            f"WHERE true{located} GROUP BY {', '.join(group)}"
        )
    name = q(table._meta.db_table)
    target = "r" if vendor == "postgresql" else name
    alias = " AS r" if vendor == "postgresql" else ""
    listed = ", ".join(q(c) for c in columns)
    sets = ", ".join(f"{q(c)} = {target}.{q(c)} + excluded.{q(c)}" for c in counters)
    (source_table,) = sources  # a table's rows come from one kind of fact
    return (
        f"WITH batch AS MATERIALIZED (SELECT * FROM {q(source_table._meta.db_table)} "  # noqa: S608
        f"WHERE {q('case_id')} {where}) "
        f"INSERT INTO {name}{alias} ({listed}) SELECT {listed} FROM ("
        + " UNION ALL ".join(selects)
        + f") AS s WHERE true ORDER BY {', '.join(q(k) for k in keys)} "
        f"ON CONFLICT ({', '.join(q(k) for k in keys)}) DO UPDATE SET {sets}"
    )


def _insert_facts(facts: list[Fact], *, small: bool = False, replace: bool = False) -> int:
    """Insert the facts' rows. ``small`` (the hooks: a case or a few): one INSERT per
    table with a constant text instead of ``insert_rows``'s COPY; ``replace``: a
    ``CaseFact`` row already there is overwritten (its ``PersonFact`` rows must have
    been deleted)."""
    if not facts:
        return 0
    if small:
        _insert_small(CaseFact, [f.columns() for f in facts], replace=replace)
        _insert_small(PersonFact, [row for f in facts for row in f.person_columns()])
        return len(facts)
    insert_rows(CaseFact, [f.columns() for f in facts])
    insert_rows(PersonFact, [row for f in facts for row in f.person_columns()])
    return len(facts)


def _json_default(value: Any) -> Any:
    """JSON for the values ``json`` does not know: the dates of facts and rollups."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


_dumps = partial(json.dumps, default=_json_default, separators=(",", ":"))


@lru_cache(maxsize=32)
def _statement(
    table: type[Model],
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    add: tuple[str, ...] | None,
    vendor: str,
) -> str:
    """The constant text of an INSERT of rows into ``table`` (``columns`` are column
    names), ``ON CONFLICT (conflict)`` adding the columns ``add`` to the row's (the
    counters; the other columns are left as they are) or, with ``add=None``,
    overwriting every column not in ``conflict``. On
    PostgreSQL the rows come as one JSON parameter (``jsonb_populate_recordset`` of
    the table's row type, in the order given), so the text and its single
    placeholder are the same whatever the number of rows, and psycopg has almost
    nothing to convert; on SQLite it is a one-row statement for ``executemany``."""
    q = connection.ops.quote_name
    name = q(table._meta.db_table)
    cols = ", ".join(q(c) for c in columns)
    if vendor == "postgresql":
        head = (
            f"INSERT INTO {name} AS r ({cols}) SELECT {cols} "  # noqa: S608
            f"FROM jsonb_populate_recordset(NULL::{name}, %s)"
        )
        target = "r"
    else:
        head = f"INSERT INTO {name} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
        target = name
    if not conflict:
        return head
    if add is not None:
        sets = ", ".join(f"{q(c)} = {target}.{q(c)} + excluded.{q(c)}" for c in add)
    else:
        others = [c for c in columns if c not in conflict]
        sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in others)
    return f"{head} ON CONFLICT ({', '.join(q(c) for c in conflict)}) DO UPDATE SET {sets}"


def _execute_rows(sql: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Run a ``_statement`` for ``rows`` (values in the order of ``columns``)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            payload = [dict(zip(columns, row, strict=True)) for row in rows]
            params: list[Any] = [Jsonb(payload, dumps=_dumps)]
            cursor.execute(sql, params)
        else:
            cursor.executemany(sql, [list(row) for row in rows])


def _insert_small(
    model: type[Model], rows: Sequence[dict[str, Any]], *, replace: bool = False
) -> None:
    """Insert a few rows given as {column: value} (plain values: ints, strings, dates)
    with one statement of constant text (``replace``: overwrite on a primary key
    conflict)."""
    if not rows:
        return
    columns = tuple(rows[0])
    conflict = (model._meta.pk.column,) if replace else ()
    sql = _statement(model, columns, conflict, None, connection.vendor)
    _execute_rows(sql, columns, [[row[c] for c in columns] for row in rows])


#: Fields whose Python values the database drivers take as they are.
PLAIN_FIELDS: tuple[type[Any], ...] = (
    models.IntegerField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.FloatField,
    models.ForeignKey,
)


def _converter(field: Any, wrapper: Any) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField) and wrapper.vendor == "sqlite" and settings.USE_TZ:
        zone = wrapper.timezone

        def datetime_text(value: Any) -> Any:
            # What the SQLite backend makes of an aware datetime, without its generic checks.
            if not isinstance(value, datetime) or value.utcoffset() is None:
                return field.get_db_prep_save(value, wrapper)
            return str(value.astimezone(zone).replace(tzinfo=None))

        return datetime_text

    def convert(value: Any) -> Any:
        return field.get_db_prep_save(value, wrapper)

    return convert


def insert_rows(model: type[Model], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows given as {attname: value} with ``executemany`` (``COPY`` on
    PostgreSQL, its text built by ``pgcopy``): the fields' own conversions to database
    values, without the per-object work of ``bulk_create`` (no ``save()``, no
    ``pre_save``: ``auto_now`` fields keep the values given)."""
    if not rows:
        return
    fields: list[Any] = [
        f for f in model._meta.concrete_fields if f.attname in rows[0] or not f.primary_key
    ]
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
    q = connection.ops.quote_name
    sql = (
        f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: it is asked once per value
    names = [f.attname for f in fields]
    converters: list[tuple[int, Callable[[Any], Any]]] = [
        (i, _converter(f, wrapper)) for i, f in enumerate(fields) if not isinstance(f, PLAIN_FIELDS)
    ]

    def values(row: dict[str, Any]) -> list[Any]:
        out = [row[name] if name in row else defaults[name] for name in names]
        for i, convert in converters:
            out[i] = convert(out[i])
        return out

    if connection.vendor == "postgresql":  # COPY: an order of magnitude faster
        pgcopy.copy_tuples(
            model, names, ([row[n] if n in row else defaults[n] for n in names] for row in rows)
        )
        return
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 5000):
            cursor.executemany(sql, [values(row) for row in rows[start : start + 5000]])


def refresh_cases(case_ids: Iterable[int], *, move_rollups: bool = True) -> int:
    """Recompute the facts of these cases and move the differences into the rollups,
    inside the transaction that changed the cases (or, called outside any, a
    transaction per chunk). Returns how many changed.

    ``move_rollups=False`` only stores the facts: for cases all of whose rollup rows
    a rebuild is about to recompute anyway."""
    ids = sorted(set(case_ids))
    changed = 0
    for start in range(0, len(ids), CHUNK):
        changed += _refresh_chunk(ids[start : start + CHUNK], move_rollups)
    return changed


def _refresh_chunk(ids: list[int], move_rollups: bool) -> int:
    if not connection.in_atomic_block:  # called on its own (a bulk load): a chunk at a time
        with transaction.atomic():
            return _refresh_chunk(ids, move_rollups)
    _lock("ROW EXCLUSIVE", (CaseFact,))
    new = load_facts(ids)
    old = stored_facts(ids)
    deltas = Deltas()
    changed: list[int] = []
    for case_id in ids:
        before, after = old.get(case_id), new.get(case_id)
        if before == after:
            continue
        changed.append(case_id)
        if not move_rollups:
            continue
        if before is not None:
            deltas.add(before, -1)
        if after is not None:
            deltas.add(after, +1)
    if not changed:
        return 0
    updated = [new[i] for i in changed if i in new]
    gone = [i for i in changed if i not in new]
    if gone:  # cases deleted meanwhile (tests, repairs)
        CaseFact.objects.filter(case_id__in=gone).delete()
    PersonFact.objects.filter(case_id__in=changed).delete()
    # The hooks pass a case or a few: their facts go in (or over the stored ones) with
    # one statement per table; a bulk refresh COPYs them after deleting the old ones.
    small = len(updated) <= UPSERT_ROWS
    if not small:
        CaseFact.objects.filter(case_id__in=changed).delete()
    _insert_facts(updated, small=small, replace=small)
    deltas.apply()
    return len(changed)


# -- rollup rows of a fact ------------------------------------------------------------------
class Deltas:
    """Signed sums of facts, by rollup row; ``apply`` adds them to the tables."""

    def __init__(self) -> None:
        tables = (GridRollup, DimRollup, Rollup, PersonRollup)
        self.rows: dict[type[Model], dict[tuple[Any, ...], list[int]]] = {t: {} for t in tables}
        self.extra: dict[type[Model], dict[tuple[Any, ...], tuple[Any, ...]]] = {
            t: {} for t in tables
        }
        self.levels = levels("rollup_levels")
        self.dim_levels = levels("dim_levels")

    def _add(
        self,
        table: type[Model],
        key: tuple[Any, ...],
        extra: tuple[Any, ...],
        values: list[int],
        sign: int,
    ) -> None:
        rows = self.rows[table]
        current = rows.get(key)
        if current is None:
            rows[key] = [sign * v for v in values]
            self.extra[table][key] = extra
        else:
            for i, v in enumerate(values):
                current[i] += sign * v

    def add(self, fact: Fact, sign: int) -> None:
        values = [fact.counters[name] for name in CASE_COUNTERS]
        nodes = fact.nodes
        periods = (("d", fact.day), ("m", fact.month))
        dims = (fact.category, fact.unit, fact.channel, fact.request_type)
        for level in range(4):
            node = nodes[level]
            if node == 0 and level > 0:
                continue  # not located that deep
            parent = nodes[level - 1] if level else 0
            for grain, period in periods:
                self._add(GridRollup, (node, grain, period), (level, parent), values, sign)
                if level in self.dim_levels:
                    for dim, key in zip(DIMENSIONS, dims, strict=True):
                        dim_row = (node, dim, grain, period, str(key))
                        self._add(DimRollup, dim_row, (level,), values, sign)
                if level in self.levels:
                    self._add(Rollup, (node, grain, period, *dims), (level,), values, sign)
            if level not in self.levels:
                continue
            for (day, user, role), counters in fact.persons.items():
                person = [counters[name] for name in PERSON_COUNTERS]
                for grain, period in (("d", day), ("m", day.replace(day=1))):
                    person_row = (node, role, grain, period, user)
                    self._add(PersonRollup, person_row, (level,), person, sign)

    def apply(self) -> None:
        for table, rows in self.rows.items():
            live = sorted((k, v) for k, v in rows.items() if any(v))
            if live:
                _upsert(table, [(k, self.extra[table][k], v) for k, v in live])


KEYS: dict[type[Model], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    GridRollup: (("node", "grain", "period"), ("level", "parent"), CASE_COUNTERS),
    DimRollup: (("node", "dim", "grain", "period", "key"), ("level",), CASE_COUNTERS),
    Rollup: (
        ("node", "grain", "period", "category", "unit", "channel", "request_type"),
        ("level",),
        CASE_COUNTERS,
    ),
    PersonRollup: (("node", "role", "grain", "period", "user"), ("level",), PERSON_COUNTERS),
}
#: The dimensions of ``DimRollup``, in the order of a fact's dimensions.
DIMENSIONS = ("category", "unit", "channel", "request_type")


def levels(key: str) -> list[int]:
    """The grid levels a rollup is kept for (``conf``)."""
    return sorted({int(level) for level in conf.get(key)})


def _upsert(
    table: type[Model], rows: Sequence[tuple[tuple[Any, ...], tuple[Any, ...], list[int]]]
) -> None:
    """Add counters to rows (made when missing): one statement of constant text per
    batch of ``UPSERT_ROWS`` (``_statement``), rows in key order."""
    keys, extra, counters = KEYS[table]
    columns = (*keys, *extra, *counters)
    sql = _statement(table, columns, keys, tuple(counters), connection.vendor)
    for start in range(0, len(rows), UPSERT_ROWS):
        batch = rows[start : start + UPSERT_ROWS]
        _execute_rows(sql, columns, [(*key, *more, *values) for key, more, values in batch])


def _lock(mode: str, models: Sequence[type[Model]]) -> None:
    """Table locks that order hooks and rebuilds on PostgreSQL (SQLite has one writer)."""
    if connection.vendor != "postgresql":
        return
    q = connection.ops.quote_name
    tables = ", ".join(q(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {tables} IN {mode} MODE")


# -- rebuilding -----------------------------------------------------------------------------
@dataclass
class RebuildResult:
    day_from: date
    day_to: date
    facts_refreshed: int = 0
    rollup_rows: int = 0
    grid_rows: int = 0
    dim_rows: int = 0
    person_rows: int = 0


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def rebuild_rollups(day_from: date, day_to: date, *, refresh_facts: bool = False) -> RebuildResult:
    """Recompute the rollup rows of the days ``day_from`` … ``day_to`` (and the month
    rows of the months they touch) from the facts. Safe to run at any time and more
    than once; with ``refresh_facts`` the facts of the cases taken in or acted on in
    those days are recomputed first (as the hooks would)."""
    result = RebuildResult(day_from, day_to)
    with transaction.atomic():
        _lock("SHARE ROW EXCLUSIVE", STATS_TABLES)
        if refresh_facts:
            inside, outside = _cases_touched(day_from, day_to)
            # Every rollup row of a case taken in and acted on only in these days is
            # rebuilt below: its facts are just stored. The others move their rows.
            result.facts_refreshed = refresh_cases(inside, move_rollups=False)
            result.facts_refreshed += refresh_cases(outside)
        month_from, month_to = day_from.replace(day=1), _month_end(day_to)
        spans = (("d", "day", day_from, day_to), ("m", "month", month_from, month_to))
        if connection.vendor == "postgresql":
            # It deletes the rows itself, or builds the tables afresh (``_swapped``).
            _rebuild_postgresql(result, day_from, day_to)
            return result
        for model in (GridRollup, DimRollup, Rollup, PersonRollup):
            _delete_span(model, day_from, day_to)
        for span in spans:
            for level in range(4):
                result.grid_rows += _insert_grid(level, *span)
            for level in levels("dim_levels"):
                for dim in DIMENSIONS:
                    result.dim_rows += _insert_dim(level, dim, *span)
            for level in levels("rollup_levels"):
                result.rollup_rows += _insert_rollup(level, *span)
                result.person_rows += _insert_person(level, *span)
    return result


# -- rebuilding on PostgreSQL: the facts summed once into staged rows, every level from them --
def _rebuild_postgresql(result: RebuildResult, day_from: date, day_to: date) -> None:
    """The rows ``rebuild_rollups`` deleted, on PostgreSQL. The facts of the span
    (its days, and the whole of the months it touches) are first summed by day, month
    and every node and value the rows of a table group by (``_stage``: a ``CREATE TEMP
    TABLE … AS SELECT … GROUP BY``, which PostgreSQL runs on parallel workers, where it
    runs the ``SELECT`` of an ``INSERT`` and any ``GROUPING SETS`` serially): three
    scans of the facts in all (grid nodes; nodes and dimensions for the dimension
    rollups and the cube; nodes, person and role), with far fewer rows out than in
    (ten million case facts make four million staged cube rows; fifty-one million
    person facts under 800,000). Each level's rows are then summed from those
    (``_from_stage``), and inserted in the order of the table's unique key, one level
    and grain at a time: each statement then fills its own range of the key's index
    page after page instead of touching a random page per row (the cube's key at ten
    million cases is several times ``shared_buffers``). The month rows of the
    grid and dimension rollups, whose day rows are few, are summed from the day rows
    just written for the months wholly inside ``day_from`` … ``day_to``
    (``_months_from_days``); every other month row from the staged rows of the facts'
    month. The same rows as the portable path (the property test checks both)."""
    with connection.cursor() as cursor:
        # Hash aggregates of a year of facts: in memory rather than sorted on disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # JIT compiles the 74 sums of each statement for no gain here.
        cursor.execute("SET LOCAL jit = off")
    month_from, month_to = day_from.replace(day=1), _month_end(day_to)
    full_from = day_from if day_from.day == 1 else _month_end(day_from) + timedelta(days=1)
    full_to = day_to if day_to == _month_end(day_to) else day_to.replace(day=1) - timedelta(days=1)
    partial = sorted(
        {
            m
            for m in (day_from.replace(day=1), day_to.replace(day=1))
            if not full_from <= m <= full_to
        }
    )
    rollup_levels, dim_levels = levels("rollup_levels"), levels("dim_levels")
    days = (day_from, day_to)
    months = (month_from, month_to)
    grid = _stage("stats_rebuild_grid", GridRollup, range(4), (), days, months)
    staged = [grid]
    cube = person = ""
    if rollup_levels or dim_levels:
        nodes = sorted({*rollup_levels, *dim_levels})
        cube = _stage("stats_rebuild_cube", Rollup, nodes, DIMENSIONS, days, months)
        staged.append(cube)
    if rollup_levels:
        person = _stage(
            "stats_rebuild_person", PersonRollup, rollup_levels, ("user", "role"), days, months
        )
        staged.append(person)
    # Per table: the stage, and each row kind's level, grouping columns and expressions.
    kinds: dict[type[Model], tuple[str, list[tuple[int, tuple[str, ...], dict[str, str]]]]] = {
        GridRollup: (
            grid,
            [
                (
                    lv,
                    (f"node{lv}", f"node{lv - 1}") if lv else (f"node{lv}",),
                    {"parent": _quote(f"node{lv - 1}") if lv else "0"},
                )
                for lv in range(4)
            ],
        ),
        DimRollup: (
            cube,
            [
                (
                    lv,
                    (f"node{lv}", dim),
                    {"dim": f"'{dim}'", "key": f"CAST({_quote(dim)} AS VARCHAR(32))"},
                )
                for lv in dim_levels
                for dim in DIMENSIONS
            ],
        ),
        Rollup: (
            cube,
            [
                (lv, (f"node{lv}", *DIMENSIONS), {d: _quote(d) for d in DIMENSIONS})
                for lv in rollup_levels
            ],
        ),
        PersonRollup: (
            person,
            [
                (
                    lv,
                    (f"node{lv}", "user", "role"),
                    {"user": _quote("user"), "role": _quote("role")},
                )
                for lv in rollup_levels
            ],
        ),
    }
    counts = {
        GridRollup: "grid_rows",
        DimRollup: "dim_rows",
        Rollup: "rollup_rows",
        PersonRollup: "person_rows",
    }
    # Each table's rows go into a fresh copy of it swapped in at the end when the span
    # holds most of its rows, else into the table itself once the span's rows are gone.
    fresh = {
        model: _fresh_table(model, days, months)
        for model, (stage, _rows_of) in kinds.items()
        if _swapped(model, stage, days, months)
    }
    for model in kinds:
        if model not in fresh:
            _delete_span(model, day_from, day_to)
    month = _quote("month")
    # The staged rows at a stage's deepest level are the day rows of that level when
    # they are grouped by every other column of the stage (and no grid moved).
    stage_nodes = {grid: list(range(4))}
    stage_extra: dict[str, tuple[str, ...]] = {grid: ()}
    if cube:
        stage_nodes[cube], stage_extra[cube] = nodes, DIMENSIONS
    if person:
        stage_nodes[person], stage_extra[person] = rollup_levels, ("user", "role")
    one_to_one = {stage: _one_to_one(stage, n) for stage, n in stage_nodes.items()}
    for model, (stage, rows_of) in kinds.items():
        into = fresh.get(model, model._meta.db_table)
        rows = 0
        few_days = model in (GridRollup, DimRollup)
        for level, group, exprs in rows_of:
            direct = (
                one_to_one[stage]
                and level == max(stage_nodes[stage])
                and set(stage_extra[stage]) <= set(group)
            )
            rows += _from_stage(
                model, stage, "d", level, group, exprs, days, into=into, direct=direct
            )
            if not few_days:
                # Their day rows are about as many as the facts: the months from the stage.
                rows += _from_stage(model, stage, "m", level, group, exprs, months, into=into)
            elif partial:
                marks = ", ".join(["%s"] * len(partial))
                where = f"{month} IN ({marks})"
                rows += _from_stage(
                    model, stage, "m", level, group, exprs, partial, where, into=into
                )
        if few_days and full_from <= full_to:
            rows += _months_from_days(model, full_from, full_to, into=into)
        setattr(result, counts[model], getattr(result, counts[model]) + rows)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {', '.join(_quote(s) for s in staged)}")
    if fresh:
        _swap_in(fresh, days, months)


# -- a whole-table rebuild on PostgreSQL: a fresh table, its indexes built once, swapped in --
#: A table is built afresh and swapped in (``_swapped``) when the planner expects the
#: span to hold at least this share of its rows and at least ``SWAP_MIN_ROWS`` rows
#: (an empty table: when its stage holds that many):
#: the rows kept are copied, the rebuilt ones inserted into a table without indexes,
#: which are built once at the end (a sort per index instead of an index lookup per
#: row, and no entries of just-deleted rows to walk past).
SWAP_SHARE = 0.3
SWAP_MIN_ROWS = 200_000
#: Attempts at the swap's ``ACCESS EXCLUSIVE`` locks, each waiting at most
#: ``SWAP_LOCK_WAIT`` (the readers queued behind it wait as long), a pause between two.
SWAP_LOCK_TRIES = 20
SWAP_LOCK_WAIT = "200ms"
SWAP_LOCK_PAUSE = 0.5
#: The suffix of the fresh table and of its indexes until the swap.
FRESH = "__rebuild"


def _delete_span(model: type[Model], day_from: date, day_to: date) -> None:
    """Delete ``model``'s day rows of the days and month rows of the months they touch."""
    month_from, month_to = day_from.replace(day=1), _month_end(day_to)
    for grain, start, end in (("d", day_from, day_to), ("m", month_from, month_to)):
        model._default_manager.filter(grain=grain, period__range=(start, end)).delete()


def _span_where() -> str:
    """The rows of the span: the days (first, last) and the months (first, last)."""
    grain, period = _quote("grain"), _quote("period")
    return (
        f"(({grain} = 'd' AND {period} >= %s AND {period} <= %s) "
        f"OR ({grain} = 'm' AND {period} >= %s AND {period} <= %s))"
    )


def _swapped(
    model: type[Model], stage: str, days: tuple[date, date], months: tuple[date, date]
) -> bool:
    """Whether ``model``'s table is rebuilt as a fresh table swapped in: the span holds
    most of its rows by the planner's estimate (a few days' rebuild never), or the table
    is empty and the ``stage`` its rows come from large, and nothing
    else depends on the table (no foreign key, view, trigger, rule, policy,
    publication, inheritance) and this role owns it (it drops and renames it)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relkind = 'r' AND NOT c.relispartition AND NOT c.relrowsecurity
                AND NOT c.relhastriggers AND NOT c.relhasrules
                AND pg_has_role(c.relowner, 'USAGE')
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f'
                                AND (k.conrelid = c.oid OR k.confrelid = c.oid))
                AND NOT EXISTS (SELECT 1 FROM pg_inherits h
                                WHERE h.inhrelid = c.oid OR h.inhparent = c.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_publication_rel p WHERE p.prrelid = c.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = c.oid
                                AND d.classid = 'pg_rewrite'::regclass)
            FROM pg_class c WHERE c.oid = %s::regclass
            """,
            [_quote(table)],
        )
        if not cursor.fetchone()[0]:
            return False
        q = _quote(table)
        cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {q})")  # noqa: S608
        if cursor.fetchone()[0]:
            # Empty (its estimates those of a table never analysed): as many rows as staged.
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [stage])
            return float(cursor.fetchone()[0]) >= SWAP_MIN_ROWS
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stats s JOIN pg_class c ON c.relname = "
            "s.tablename JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = "
            "s.schemaname WHERE c.oid = %s::regclass AND s.attname = 'period')",
            [q],
        )
        if cursor.fetchone()[0]:
            # Never analysed (a VACUUM counts the rows, not the periods): the estimates
            # below would be the planner's defaults.
            cursor.execute(f"ANALYZE {q} ({_quote('grain')}, {_quote('period')})")
        estimates = []
        for where, params in ((_span_where(), [*days, *months]), ("TRUE", [])):
            cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {q} WHERE {where}", params)  # noqa: S608
            plan = cursor.fetchone()[0]
            if isinstance(plan, str):
                plan = json.loads(plan)
            estimates.append(plan[0]["Plan"]["Plan Rows"])
    span, every = estimates
    return span >= SWAP_MIN_ROWS and span >= SWAP_SHARE * every


def _fresh_table(model: type[Model], days: tuple[date, date], months: tuple[date, date]) -> str:
    """A new table like ``model``'s (columns, defaults, checks, identity, owner and
    privileges; no index yet) holding its rows outside the span, its identity
    continuing the table's: the rows inserted into it get the ids the table would have
    given them."""
    q = _quote
    table = model._meta.db_table
    fresh = f"{table}{FRESH}"
    pk = model._meta.pk.column
    columns = ", ".join(q(str(f.column)) for f in model._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {q(fresh)} (LIKE {q(table)} INCLUDING DEFAULTS INCLUDING IDENTITY "
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)"
        )
        cursor.execute(
            "SELECT pg_get_serial_sequence(%s, %s), pg_get_serial_sequence(%s, %s)",
            [q(table), pk, q(fresh), pk],
        )
        old_seq, new_seq = cursor.fetchone()
        if old_seq and new_seq:
            cursor.execute(f"SELECT last_value, is_called FROM {old_seq}")  # noqa: S608
            last, called = cursor.fetchone()
            cursor.execute("SELECT setval(%s, %s, %s)", [new_seq, last, called])
        # The table's owner and privileges (a reporting role's SELECT, say).
        cursor.execute(
            "SELECT pg_get_userbyid(c.relowner), a.grantee, pg_get_userbyid(a.grantee), "
            "a.privilege_type, a.is_grantable FROM pg_class c "
            "LEFT JOIN LATERAL aclexplode(c.relacl) a ON a.grantee <> c.relowner "
            "WHERE c.oid = %s::regclass",
            [q(table)],
        )
        grants = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {q(fresh)} OWNER TO {q(grants[0][0])}")
        for _owner, grantee, name, privilege, grantable in grants:
            if privilege is None:
                continue
            to = "PUBLIC" if grantee == 0 else q(name)
            option = " WITH GRANT OPTION" if grantable else ""
            cursor.execute(f"GRANT {privilege} ON {q(fresh)} TO {to}{option}")
        cursor.execute(
            f"INSERT INTO {q(fresh)} ({columns}) SELECT {columns} FROM {q(table)} "  # noqa: S608
            f"WHERE NOT {_span_where()}",
            [*days, *months],
        )
    return fresh


def _index_definitions(table: str) -> list[tuple[str, str, str]]:
    """The table's constraints backed by an index (kind ``c``) and its other indexes
    (kind ``i``): name, kind, and the definition from ``USING`` (an index) or the
    constraint's (``UNIQUE (…)``, ``PRIMARY KEY (…)``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT k.conname, 'c', pg_get_constraintdef(k.oid)
            FROM pg_constraint k
            WHERE k.conrelid = %s::regclass AND k.contype IN ('p', 'u', 'x')
            UNION ALL
            SELECT ic.relname, 'i', pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE i.indrelid = %s::regclass AND NOT EXISTS (
                SELECT 1 FROM pg_constraint k
                WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
            ORDER BY 2, 1
            """,
            [_quote(table), _quote(table)],
        )
        rows = cursor.fetchall()
    definitions = []
    for name, kind, text in rows:
        if kind == "i":
            unique = "UNIQUE " if text.startswith("CREATE UNIQUE INDEX") else ""
            text = unique + text[text.index(" USING ") + 1 :]
        definitions.append((name, kind, text))
    return definitions


def _temporary_name(name: str) -> str:
    return f"{name[: 63 - len(FRESH)]}{FRESH}"


def _swap_in(
    fresh: dict[type[Model], str], days: tuple[date, date], months: tuple[date, date]
) -> None:
    """Give each fresh table its table's indexes and statistics, then take the
    ``ACCESS EXCLUSIVE`` locks (``_lock_briefly``), drop the tables and rename the
    fresh ones and their indexes and identity to the tables' names: the readers see
    the old rows until the transaction commits, and wait only for the drops and
    renames. If the locks cannot be had, the rows of the span move from the fresh
    tables into the tables instead (the delete and insert of a small rebuild)."""
    q = _quote
    plans = []
    with connection.cursor() as cursor:
        # The indexes' sorts in memory.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for model, new in fresh.items():
            table = model._meta.db_table
            definitions = _index_definitions(table)
            for name, kind, text in definitions:
                temporary = _temporary_name(name)
                if kind == "c":
                    cursor.execute(f"ALTER TABLE {q(new)} ADD CONSTRAINT {q(temporary)} {text}")
                else:
                    unique, _, using = text.partition("USING ")
                    cursor.execute(
                        f"CREATE {unique.strip() + ' ' if unique.strip() else ''}INDEX "
                        f"{q(temporary)} ON {q(new)} USING {using}"
                    )
            keys, extra, _counters = KEYS[model]
            # Plans of the reads by the new rows (the grouping and filter columns).
            cursor.execute(f"ANALYZE {q(new)} ({', '.join(q(c) for c in (*keys, *extra))})")
            pk = model._meta.pk.column
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [q(table), pk])
            (sequence,) = cursor.fetchone()
            plans.append((model, table, new, definitions, sequence))
    tables = [table for _model, table, *_ in plans]
    if not _lock_briefly(tables):
        logger.warning("rebuild: %s busy, rows moved instead of swapped", ", ".join(tables))
        for model, _table, new, _definitions, _sequence in plans:
            _move_span(model, new, days, months)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {', '.join(q(t) for t in tables)}")
        for model, table, new, definitions, sequence in plans:
            pk = model._meta.pk.column
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [q(new), pk])
            (new_sequence,) = cursor.fetchone()
            cursor.execute(f"ALTER TABLE {q(new)} RENAME TO {q(table)}")
            if sequence and new_sequence:
                name = sequence.rsplit(".", 1)[-1].strip('"')
                cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {q(name)}")
            for name, kind, _text in definitions:
                temporary = _temporary_name(name)
                if kind == "c":
                    cursor.execute(
                        f"ALTER TABLE {q(table)} RENAME CONSTRAINT {q(temporary)} TO {q(name)}"
                    )
                else:
                    cursor.execute(f"ALTER INDEX {q(temporary)} RENAME TO {q(name)}")


def _lock_briefly(tables: Sequence[str]) -> bool:
    """``ACCESS EXCLUSIVE`` on the tables, each attempt waiting at most
    ``SWAP_LOCK_WAIT`` (a reader arriving meanwhile waits behind it), up to
    ``SWAP_LOCK_TRIES`` attempts: False when they could not be had."""
    names = ", ".join(_quote(t) for t in tables)
    for attempt in range(SWAP_LOCK_TRIES):
        if attempt:
            clock.sleep(SWAP_LOCK_PAUSE)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_WAIT}'")
                cursor.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
                cursor.execute("SET LOCAL lock_timeout = DEFAULT")
            return True
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
    return False


def _move_span(
    model: type[Model], new: str, days: tuple[date, date], months: tuple[date, date]
) -> None:
    """The span's rows of the fresh table ``new`` into ``model``'s table in the order of
    its unique key (new ids from its identity), in place of its rows of the span."""
    q = _quote
    table = model._meta.db_table
    keys, extra, counters = KEYS[model]
    columns = ", ".join(q(c) for c in (*keys, *extra, *counters))
    _delete_span(model, days[0], days[1])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {q(table)} ({columns}) SELECT {columns} FROM {q(new)} "  # noqa: S608
            f"WHERE {_span_where()} ORDER BY {', '.join(q(k) for k in keys)}",
            [*days, *months],
        )
        cursor.execute(f"DROP TABLE {q(new)}")


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _stage(
    name: str,
    model: type[Model],
    nodes: Iterable[int],
    extra: tuple[str, ...],
    days: tuple[date, date],
    months: tuple[date, date],
) -> str:
    """A temporary table ``name`` of the sums of the facts ``model``'s rows are made
    of (the person facts for ``PersonRollup``, the case facts otherwise) that lie in
    the ``days`` or the ``months`` (first and last), by day, month, the nodes of the
    levels ``nodes`` and the columns ``extra``. The sums have the types of
    ``model``'s counters: a staged sum is part of a rollup row's, which fits them."""
    q = _quote
    _keys, _extra, counters = KEYS[model]
    facts = PersonFact if model is PersonRollup else CaseFact
    groups = ", ".join(q(c) for c in ("day", "month", *(f"node{i}" for i in nodes), *extra))
    sums = ", ".join(
        f"CAST(SUM({q(c)}) AS {model._meta.get_field(c).db_type(connection)}) AS {q(c)}"
        for c in counters
    )
    day, month = q("day"), q("month")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {q(name)} AS SELECT {groups}, {sums} "  # noqa: S608
            f"FROM {q(facts._meta.db_table)} "
            f"WHERE ({day} >= %s AND {day} <= %s) OR ({month} >= %s AND {month} <= %s) "
            f"GROUP BY {groups}",
            [*days, *months],
        )
        # Plans of the sums below by the stage's real number of rows and groups (the
        # statistics of the grouping columns only: those of 74 sums take seconds).
        cursor.execute(f"ANALYZE {q(name)} ({groups})")
    return name


def _from_stage(
    model: type[Model],
    stage: str,
    grain: str,
    level: int,
    group: tuple[str, ...],
    exprs: dict[str, str],
    params: Sequence[Any],
    where: str = "",
    *,
    into: str = "",
    direct: bool = False,
) -> int:
    """Insert ``model``'s rows of one level (and dimension) and grain from the staged
    sums: grouped by the period (the stage's day or month column) and ``group`` (the
    node first), the periods the first and last of ``params`` (or ``where``), the
    rows of a node 0 below level 0 (not located that deep) left out, as
    ``_insert_grid`` and the others do; inserted in the order of the unique key, into
    the table ``into`` (a fresh copy of ``model``'s) or ``model``'s. ``direct``: each
    staged row is one row (``_one_to_one``), copied without summing."""
    q = _quote
    keys, extra, counters = KEYS[model]
    period = q("day" if grain == "d" else "month")
    values = {"level": str(level), "node": q(group[0])} | exprs
    columns = [c for c in (*keys, *extra) if c not in ("grain", "period")]
    select = ", ".join(f"{values.get(c, q(c))} AS {q(c)}" for c in columns)
    located = f" AND {q(group[0])} <> 0" if level else ""
    where = where or f"{period} >= %s AND {period} <= %s"
    target = ", ".join(q(c) for c in ("grain", "period", *columns, *counters))
    order = ", ".join(q(k) for k in keys if k != "grain")
    sums = ", ".join(q(c) for c in counters) if direct else _sums(counters)
    grouped = "" if direct else f"GROUP BY {period}, {', '.join(q(c) for c in group)} "
    sql = (
        f"INSERT INTO {q(into or model._meta.db_table)} ({target}) "  # noqa: S608
        f"SELECT '{grain}', {period} AS {q('period')}, {select}, {sums} "
        f"FROM {q(stage)} WHERE ({where}){located} {grouped}ORDER BY {order}"
    )
    return _execute(sql, list(params))


def _one_to_one(stage: str, nodes: Sequence[int]) -> bool:
    """Whether each row of ``stage`` (by day, month, the nodes of the levels ``nodes``
    and other columns) located at the deepest of those levels is one row of that
    level by day and the other columns: its month is its day's, and its deepest node
    has one ancestor at each level above (the grids did not move within the tree
    among the facts of the span; otherwise the rows are summed)."""
    q = _quote
    deepest = q(f"node{max(nodes)}")
    moved = " OR ".join(f"min({q(f'node{n}')}) <> max({q(f'node{n}')})" for n in nodes[:-1])
    day, month = q("day"), q("month")
    sql = (
        f"SELECT NOT EXISTS (SELECT 1 FROM {q(stage)} "  # noqa: S608
        f"WHERE {month} <> CAST(date_trunc('month', {day}) AS date))"
    )
    if moved:
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM {q(stage)} WHERE {deepest} <> 0 "  # noqa: S608
            f"GROUP BY {deepest} HAVING {moved})"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return bool(cursor.fetchone()[0])


def _months_from_days(
    model: type[Model], month_from: date, month_to: date, *, into: str = ""
) -> int:
    """Insert ``model``'s month rows of the whole months ``month_from`` … ``month_to``
    as the sums of its day rows (just rebuilt from the facts), in the order of the
    unique key: a month row is the sum of the facts of its days, which the day rows
    already are. ``into``: the table read and written, a fresh copy of ``model``'s
    (or ``model``'s)."""
    q = _quote
    table = q(into or model._meta.db_table)
    keys, extra, counters = KEYS[model]
    columns = [c for c in (*keys, *extra) if c not in ("grain", "period")]
    cols = ", ".join(q(c) for c in columns)
    target = ", ".join(q(c) for c in ("grain", "period", *columns, *counters))
    month = f"CAST(date_trunc('month', {q('period')}) AS date)"
    order = ", ".join(f"{month}" if k == "period" else q(k) for k in keys if k != "grain")
    sql = (
        f"INSERT INTO {table} ({target}) "  # noqa: S608
        f"SELECT 'm', {month}, {cols}, {_sums(counters)} FROM {table} "
        f"WHERE {q('grain')} = 'd' AND {q('period')} >= %s AND {q('period')} <= %s "
        f"GROUP BY {month}, {cols} ORDER BY {order}"
    )
    return _execute(sql, [month_from, month_to])


def day_bounds(day_from: date, day_to: date) -> tuple[datetime, datetime]:
    """The local days ``day_from`` … ``day_to`` as a half-open range of aware datetimes."""
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(day_from, time.min), zone)
    end = timezone.make_aware(datetime.combine(day_to + timedelta(days=1), time.min), zone)
    return start, end


def _cases_touched(day_from: date, day_to: date) -> tuple[list[int], list[int]]:
    """Cases taken in or acted on in the days: those that live entirely within them
    (taken in, and every event, in the days), and the others."""
    start, end = day_bounds(day_from, day_to)
    received = set(
        Case.objects.filter(received_at__gte=start, received_at__lt=end).values_list(
            "pk", flat=True
        )
    )
    acted = set(
        CaseEvent.objects.filter(at__gte=start, at__lt=end)
        .values_list("case_id", flat=True)
        .distinct()
    )
    ids = sorted(received | acted)
    inside = []
    for begin in range(0, len(ids), CHUNK):
        chunk = [i for i in ids[begin : begin + CHUNK] if i in received]
        spans = (
            CaseEvent.objects.filter(case_id__in=chunk)
            .values("case_id")
            .annotate(first=Min("at"), last=Max("at"))
            .order_by()
        )
        inside += [s["case_id"] for s in spans if s["first"] >= start and s["last"] < end]
    within = set(inside)
    return sorted(within), [i for i in ids if i not in within]


def _sums(names: Sequence[str]) -> str:
    q = connection.ops.quote_name
    return ", ".join(f"SUM({q(n)})" for n in names)


def _execute(sql: str, params: Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def _insert_rollup(level: int, grain: str, period: str, start: date, end: date) -> int:
    q = connection.ops.quote_name
    node = q(f"node{level}")
    dims = ", ".join(q(c) for c in ("category", "unit", "channel", "request_type"))
    located = f" AND {node} <> 0" if level else ""
    keys = ("grain", "period", "level", "node", "category", "unit", "channel", "request_type")
    columns = ", ".join(q(c) for c in (*keys, *CASE_COUNTERS))
    sql = (
        f"INSERT INTO {q(Rollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT %s, {q(period)}, %s, {node}, {dims}, {_sums(CASE_COUNTERS)} "
        f"FROM {q(CaseFact._meta.db_table)} WHERE {q(period)} >= %s AND {q(period)} <= %s"
        f"{located} GROUP BY {q(period)}, {node}, {dims}"
    )
    return _execute(sql, [grain, level, start, end])


def _insert_grid(level: int, grain: str, period: str, start: date, end: date) -> int:
    q = connection.ops.quote_name
    node = q(f"node{level}")
    parent = q(f"node{level - 1}") if level else "0"
    located = f" AND {node} <> 0" if level else ""
    group = f"{q(period)}, {node}" + (f", {parent}" if level else "")
    keys = ("grain", "period", "level", "node", "parent")
    columns = ", ".join(q(c) for c in (*keys, *CASE_COUNTERS))
    sql = (
        f"INSERT INTO {q(GridRollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT %s, {q(period)}, %s, {node}, {parent}, {_sums(CASE_COUNTERS)} "
        f"FROM {q(CaseFact._meta.db_table)} WHERE {q(period)} >= %s AND {q(period)} <= %s"
        f"{located} GROUP BY {group}"
    )
    return _execute(sql, [grain, level, start, end])


def _insert_dim(level: int, dim: str, grain: str, period: str, start: date, end: date) -> int:
    q = connection.ops.quote_name
    node = q(f"node{level}")
    located = f" AND {node} <> 0" if level else ""
    value = f"CAST({q(dim)} AS VARCHAR(32))"
    keys = ("grain", "period", "level", "node", "dim", "key")
    columns = ", ".join(q(c) for c in (*keys, *CASE_COUNTERS))
    sql = (
        f"INSERT INTO {q(DimRollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT %s, {q(period)}, %s, {node}, %s, {value}, {_sums(CASE_COUNTERS)} "
        f"FROM {q(CaseFact._meta.db_table)} WHERE {q(period)} >= %s AND {q(period)} <= %s"
        f"{located} GROUP BY {q(period)}, {node}, {q(dim)}"
    )
    return _execute(sql, [grain, level, dim, start, end])


def _insert_person(level: int, grain: str, period: str, start: date, end: date) -> int:
    q = connection.ops.quote_name
    node = q(f"node{level}")
    located = f" AND {node} <> 0" if level else ""
    keys = ("grain", "period", "level", "node", "user", "role")
    columns = ", ".join(q(c) for c in (*keys, *PERSON_COUNTERS))
    sql = (
        f"INSERT INTO {q(PersonRollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT %s, {q(period)}, %s, {node}, {q('user')}, {q('role')}, "
        f"{_sums(PERSON_COUNTERS)} FROM {q(PersonFact._meta.db_table)} "
        f"WHERE {q(period)} >= %s AND {q(period)} <= %s{located} "
        f"GROUP BY {q(period)}, {node}, {q('user')}, {q('role')}"
    )
    return _execute(sql, [grain, level, start, end])


def forget_cases(case_ids: Iterable[int]) -> None:
    """Take cases out of the rollups and drop their facts (before deleting cases, which
    the workflow never does; tests and data repairs may)."""
    ids = sorted(set(case_ids))
    with transaction.atomic():
        _lock("ROW EXCLUSIVE", (CaseFact,))
        deltas = Deltas()
        for fact in stored_facts(ids).values():
            deltas.add(fact, -1)
        CaseFact.objects.filter(case_id__in=ids).delete()
        PersonFact.objects.filter(case_id__in=ids).delete()
        deltas.apply()


__all__ = [
    "Deltas",
    "PreparedFacts",
    "RebuildResult",
    "add_stored_facts",
    "day_bounds",
    "forget_cases",
    "insert_rows",
    "load_facts",
    "prepare_bulk_intake",
    "rebuild_rollups",
    "record_intake",
    "record_overdue",
    "record_prepared_intake",
    "record_transition",
    "refresh_cases",
    "stored_facts",
    "write_facts",
]
