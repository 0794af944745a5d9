"""Statistics facts of generated cases, in SQL on the server, as the rollup hooks would write them.

    .venv/bin/python bench/casestats.py --dsn "dbname=civicgrid_casegen_1000000"

``bench/casegen.py`` writes cases, events and deadlines with COPY, and with
``facts=True`` (what the benchmarks use) their statistics facts too. For cases
without facts (casegen without ``facts``, a database made before),
``write_facts(conn)`` fills ``stats_casefact`` and ``stats_personfact`` for every case
that has no fact yet with ``INSERT … SELECT`` over ``cases_case``, ``cases_caseevent``
and ``cases_deadline``, one range of case ids at a time, computing each counter the
way ``civicgrid.stats.facts.compute`` does:

- what depends on the order of a case's events (was a dispatch's round sent back or
  reworked) with a window: the round of an event is the number of dispatches,
  re-dispatches and reopens up to it (``facts._rounds``);
- office time from intake to closing on the work calendar of the database
  (``casegen.Calendar``, checked against ``cases.workcalendar``) as a temporary
  table of days: office seconds before the day and the day's two office periods;
- the stage an event finished (``facts.stage_finishers``): the deadline of the case
  finished at the moment of an event that moves the case (a status change or a
  passed verification; not intake, park or resume).

The rollups are then rebuilt from the facts by civicgrid itself (``civicgrid stats
rebuild``, ``stats.rollups.rebuild_rollups``). ``bench/dashboards.py`` does both;
``stats/tests``'s property test and the dashboards benchmark check the result
against ``stats/direct.py``. Two checks of stored facts (casegen's or these):

    .venv/bin/python bench/casestats.py --dsn "dbname=…" --compute 20000
    .venv/bin/python bench/casestats.py --dsn "dbname=…" --against-sql 3273:203272

``--compute N``: ``compare_with_compute``, N cases' stored facts against
``facts.compute`` of their rows (Django on that database); ``--against-sql LO:HI``:
``compare_with_sql``, the stored facts of those cases against this module's SQL for
them, row by row. Both exit with status 1 on a difference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import say  # noqa: E402

#: Cases per INSERT … SELECT (a range of ids).
CHUNK = 500_000


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(values: Sequence[str]) -> str:
    """A SQL list of string literals (values come from civicgrid's own constants)."""
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


class _Names:
    """Table and column names from the models' ``_meta``."""

    def __init__(self) -> None:
        from civicgrid.cases.models import Case, CaseEvent, Deadline
        from civicgrid.stats.models import CaseFact, PersonFact

        self.models = {
            "c": Case,
            "e": CaseEvent,
            "d": Deadline,
            "cf": CaseFact,
            "pf": PersonFact,
        }

    def table(self, key: str) -> str:
        return q(self.models[key]._meta.db_table)

    def col(self, key: str, name: str) -> str:
        return q(self.models[key]._meta.get_field(name).column)


def calendar_table(conn: Any, first: dt.date, last: dt.date) -> None:
    """``sg_cal``: per local day its midnight (Unix seconds), office seconds of the
    calendar before it, whether it is a workday and its two office periods."""
    from django.conf import settings

    from bench import casegen

    t = casegen.tables()
    cal = casegen.Calendar.load(conn, t, settings.TIME_ZONE, first, last)
    conn.execute("DROP TABLE IF EXISTS sg_cal")
    conn.execute(
        "CREATE TEMP TABLE sg_cal (day date PRIMARY KEY, midnight bigint, cum bigint, "
        "work boolean, p0 int, p1 int, p2 int, p3 int)"
    )
    with conn.cursor().copy("COPY sg_cal FROM STDIN") as copy:
        for i in range(len(cal.work)):
            copy.write_row(
                (
                    first + dt.timedelta(days=i),
                    int(cal.midnight[i]),
                    int(cal.cum[i]),
                    bool(cal.work[i]),
                    *(int(x) for x in cal.p[i]),
                )
            )
    conn.execute("ANALYZE sg_cal")


def _office(ts: str, tz: str) -> str:
    """SQL: office seconds of the calendar up to the moment ``ts`` (numeric)."""
    day = f"({ts} AT TIME ZONE '{tz}')::date"
    sod = f"(extract(epoch FROM {ts}) - k.midnight)"
    return (
        f"(SELECT k.cum + CASE WHEN k.work THEN "
        f"least(greatest({sod} - k.p0, 0), k.p1 - k.p0) + "
        f"least(greatest({sod} - k.p2, 0), k.p3 - k.p2) ELSE 0 END "
        f"FROM sg_cal k WHERE k.day = {day})"
    )


def _events_cte(n: _Names, cases: str) -> str:
    """Events of the cases ``cases`` (a condition on their id, SQL), with the dispatch
    round each belongs to, and the rounds."""
    from civicgrid.stats.facts import ROUND_START

    e = n
    return (
        f"ev AS (SELECT {e.col('e', 'case')} AS case_id, id, {e.col('e', 'action')} AS action, "
        f"{e.col('e', 'at')} AS at, {e.col('e', 'actor')} AS actor_id, "
        f"coalesce({e.col('e', 'actor_role')}, '') AS actor_role, "
        f"{e.col('e', 'from_status')} AS from_status, {e.col('e', 'to_status')} AS to_status, "
        f"count(*) FILTER (WHERE {e.col('e', 'action')} IN {_lit(sorted(ROUND_START))}) "
        f"OVER (PARTITION BY {e.col('e', 'case')} ORDER BY id) AS rnd "
        f"FROM {e.table('e')} WHERE {cases.format(id=e.col('e', 'case'))}), "
        # One row per round: was it a dispatch's, sent back, reworked.
        f"rounds AS (SELECT case_id, rnd, bool_or(action IN {_lit(sorted(_dispatching()))}) "
        "AS dispatch, bool_or(action = %(send_back)s) AS back, "
        "bool_or(action = %(verify_fail)s) AS rework FROM ev WHERE rnd > 0 "
        "GROUP BY case_id, rnd)"
    )


def _dispatching() -> frozenset[str]:
    from civicgrid.stats.facts import DISPATCHING

    return frozenset(str(a) for a in DISPATCHING)


def _params(lo: int, hi: int) -> dict[str, Any]:
    from civicgrid.cases.models import Action, Status

    return {
        "lo": lo,
        "hi": hi,
        "send_back": Action.SEND_BACK.value,
        "verify_fail": Action.VERIFY_FAIL.value,
        "verify_pass": Action.VERIFY_PASS.value,
        "create": Action.CREATE.value,
        "closed": Status.CLOSED.value,
        "filed": Status.FILED.value,
    }


#: The cases of a fact chunk (ids %(lo)s … %(hi)s) and of a direct question (taken in
#: from %(start)s to %(end)s, excluded, with a grid path starting with %(scope)s).
CHUNK_CASES = "{id} BETWEEN %(lo)s AND %(hi)s"
PERIOD_CASES = (
    "{id} IN (SELECT c.id FROM {cases} c WHERE c.{received} >= %(start)s "
    "AND c.{received} < %(end)s AND c.{path} LIKE %(scope)s)"
)


def _period_cases(n: _Names) -> str:
    return (
        PERIOD_CASES.replace("{cases}", n.table("c"))
        .replace("{received}", n.col("c", "received_at"))
        .replace("{path}", n.col("c", "grid_path"))
    )


def _case_parts(n: _Names, tz: str, cases: str) -> tuple[str, dict[str, str], str]:
    """The CTEs, the columns (dimensions then counters) and the FROM of the case facts
    of the cases ``cases`` (a condition on an id column named ``{id}``)."""
    from civicgrid.cases.models import OPEN_STATUSES, Action, Status
    from civicgrid.stats import conf
    from civicgrid.stats.counters import (
        CASE_COUNTERS,
        DURATION_BOUNDS_HOURS,
        DURATION_BUCKETS,
        STAGES,
    )

    c = n
    public = [str(x) for x in conf.get("public_channels")]
    status = f"x.{c.col('c', 'status')}"
    is_open = f"{status} IN {_lit(sorted(str(s) for s in OPEN_STATUSES))}"
    closed = f"{status} = %(closed)s"
    counts = {
        "return_count": f"x.{c.col('c', 'return_count')}",
        "rework_count": f"x.{c.col('c', 'rework_count')}",
        "reopen_count": f"x.{c.col('c', 'reopen_count')}",
        "urge_count": f"x.{c.col('c', 'urge_count')}",
    }
    sat = f"x.{c.col('c', 'satisfaction')}"
    received_at, closed_at = f"x.{c.col('c', 'received_at')}", f"x.{c.col('c', 'closed_at')}"
    done = f"{closed} AND {closed_at} IS NOT NULL"
    seconds = f"greatest(0, trunc(extract(epoch FROM {closed_at} - {received_at})))::bigint"
    ext = "coalesce(a.extensions, 0)"

    def b(cond: str) -> str:
        return f"CASE WHEN {cond} THEN 1 ELSE 0 END"

    v: dict[str, str] = {
        "received": "1",
        "open": b(is_open),
        "closed": b(closed),
        "rejected": b(f"{status} = '{Status.REJECTED.value}'"),
        "voided": b(f"{status} = '{Status.VOIDED.value}'"),
        "merged": b(f"{status} = '{Status.MERGED.value}'"),
        "parked": b(f"{status} = '{Status.PARKED.value}'"),
        "deferred": b(f"{is_open} AND {ext} > 0 AND {status} <> '{Status.PARKED.value}'"),
        "filed": b("coalesce(a.filed, false)"),
        "filed_public": b(
            f"coalesce(a.filed, false) AND x.{c.col('c', 'channel')} IN {_lit(public)}"
        ),
        "dispatches": "coalesce(r.dispatches, 0)",
        "dispatched": b("coalesce(r.dispatches, 0) > 0"),
        "accurate_dispatches": "coalesce(r.accurate, 0)",
        "reworked_dispatches": "coalesce(r.reworked, 0)",
        "handled": "coalesce(a.handled, 0)",
        "extension_requests": "coalesce(a.extension_requests, 0)",
        "extensions": ext,
        "extended_cases": b(f"{ext} > 0"),
        "sent_back": counts["return_count"],
        "reworked": counts["rework_count"],
        "reworked_cases": b(f"{counts['rework_count']} > 0"),
        "reopened": counts["reopen_count"],
        "reopened_cases": b(f"{counts['reopen_count']} > 0"),
        "ever_closed": b(f"{closed} OR {counts['reopen_count']} > 0"),
        "urged": counts["urge_count"],
        "urged_cases": b(f"{counts['urge_count']} > 0"),
        "overdue": b("coalesce(dl.late, false)"),
        "overdue_open": b(f"{is_open} AND coalesce(dl.late_open, false)"),
        "closed_ontime": b(f"{closed} AND NOT coalesce(dl.late, false)"),
        "followed_up": b(f"{sat} IS NOT NULL"),
        "handle_seconds": f"CASE WHEN {done} THEN {seconds} ELSE 0 END",
        "work_seconds": (
            f"CASE WHEN {done} THEN greatest(0, trunc("
            f"{_office(closed_at, tz)} - {_office(received_at, tz)}))::bigint ELSE 0 END"
        ),
    }
    for level in range(1, 6):
        v[f"sat_{level}"] = b(f"{sat} = {level}")
    for stage in STAGES:
        for what in ("done", "ontime", "overdue_open"):
            v[f"{stage}_{what}"] = f"coalesce(dl.{stage}_{what}, 0)"
    hours = f"({seconds} / 3600.0)"
    lower = None
    for index, bucket in enumerate(DURATION_BUCKETS):
        cond = done
        if index < len(DURATION_BOUNDS_HOURS):
            cond += f" AND {hours} <= {DURATION_BOUNDS_HOURS[index]}"
        if lower is not None:
            cond += f" AND {hours} > {lower}"
        lower = DURATION_BOUNDS_HOURS[index] if index < len(DURATION_BOUNDS_HOURS) else None
        v[bucket] = b(cond)
    missing = set(CASE_COUNTERS) - set(v)
    if missing:
        raise RuntimeError(f"casestats: no SQL for the case counters {sorted(missing)}")

    dl_cols = []
    stage_list = _lit(STAGES)
    for stage in STAGES:
        s = f"stage = '{stage}'"
        dl_cols += [
            f"count(*) FILTER (WHERE {s} AND finished_at IS NOT NULL) AS {stage}_done",
            f"count(*) FILTER (WHERE {s} AND finished_at <= due_at) AS {stage}_ontime",
            f"count(*) FILTER (WHERE {s} AND finished_at IS NULL AND overdue_at IS NOT NULL) "
            f"AS {stage}_overdue_open",
        ]
    d = n
    deadlines = (
        f"dl AS (SELECT {d.col('d', 'case')} AS case_id, "
        + ", ".join(dl_cols)
        + ", bool_or(overdue_at IS NOT NULL OR finished_at > due_at) AS late, "
        "bool_or(finished_at IS NULL AND overdue_at IS NOT NULL) AS late_open "
        f"FROM (SELECT {d.col('d', 'case')}, {d.col('d', 'stage')} AS stage, "
        f"{d.col('d', 'due_at')} AS due_at, {d.col('d', 'finished_at')} AS finished_at, "
        f"{d.col('d', 'overdue_at')} AS overdue_at FROM {d.table('d')} "
        f"WHERE {cases.format(id=d.col('d', 'case'))} "
        f"AND {d.col('d', 'stage')} IN {stage_list}) s GROUP BY 1)"
    )
    handles = _lit([Action.HANDLE.value, Action.SELF_HANDLE.value])
    aggregates = (
        "agg AS (SELECT case_id, bool_or(to_status = %(filed)s) AS filed, "
        f"count(*) FILTER (WHERE action IN {handles}) AS handled, "
        f"count(*) FILTER (WHERE action = '{Action.REQUEST_EXTENSION.value}') "
        "AS extension_requests, "
        f"count(*) FILTER (WHERE action = '{Action.APPROVE_EXTENSION.value}') AS extensions "
        "FROM ev GROUP BY case_id), "
        "rc AS (SELECT case_id, count(*) FILTER (WHERE dispatch) AS dispatches, "
        "count(*) FILTER (WHERE dispatch AND NOT back) AS accurate, "
        "count(*) FILTER (WHERE dispatch AND rework) AS reworked FROM rounds GROUP BY case_id)"
    )
    path = f"x.{c.col('c', 'grid_path')}"
    nodes = [
        f"coalesce(nullif(split_part(trim(both '/' FROM {path}), '/', {i + 1}), '')::int, 0)"
        for i in range(4)
    ]
    day = f"({received_at} AT TIME ZONE '{tz}')::date"
    dims = {
        "case_id": "x.id",
        "day": day,
        "month": f"date_trunc('month', {day})::date",
        "node0": nodes[0],
        "node1": nodes[1],
        "node2": nodes[2],
        "node3": nodes[3],
        "grid_path": path,
        "category": f"x.{c.col('c', 'category')}",
        "unit": f"coalesce(x.{c.col('c', 'lead_unit')}, 0)",
        "channel": f"x.{c.col('c', 'channel')}",
        "request_type": f"x.{c.col('c', 'request_type')}",
    }
    columns = {**dims, **{name: v[name] for name in CASE_COUNTERS}}
    ctes = f"WITH {_events_cte(n, cases)}, {aggregates}, {deadlines} "
    source = (
        f" FROM {n.table('c')} x LEFT JOIN agg a ON a.case_id = x.id "
        "LEFT JOIN rc r ON r.case_id = x.id LEFT JOIN dl ON dl.case_id = x.id "
        f"WHERE {cases.format(id='x.id')}"
    )
    return ctes, columns, source


def case_fact_sql(n: _Names, tz: str) -> str:
    """``INSERT INTO stats_casefact … SELECT`` for the cases with ids in %(lo)s … %(hi)s."""
    ctes, columns, source = _case_parts(n, tz, CHUNK_CASES)
    cf = n.models["cf"]
    target = ", ".join(
        q(cf._meta.get_field(name).column if name != "case_id" else "case_id") for name in columns
    )
    return (
        f"{ctes}INSERT INTO {n.table('cf')} ({target}) SELECT "
        + ", ".join(columns.values())
        + source
        + f" AND NOT EXISTS (SELECT 1 FROM {n.table('cf')} f WHERE f.case_id = x.id)"
    )


#: Dimensions a direct question can group by.
DIRECT_DIMS = ("day", "node1", "node3", "category", "unit", "channel")


def direct_case_sql(n: _Names, tz: str, by: Sequence[str]) -> str:
    """The case counters of the cases taken in from %(start)s to %(end)s (excluded) in
    the subtree %(scope)s, grouped by ``by`` (of ``DIRECT_DIMS``): one ``GROUP BY``
    over the cases, events and deadlines, nothing precomputed."""
    from civicgrid.stats.counters import CASE_COUNTERS

    ctes, columns, source = _case_parts(n, tz, _period_cases(n))
    keys = [f"{columns[name]} AS {q(name)}" for name in by]
    sums = [f"sum({columns[name]})::bigint AS {q(name)}" for name in CASE_COUNTERS]
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(by)))}" if by else ""
    return f"{ctes}SELECT " + ", ".join(keys + sums) + source + group


def fact_case_sql(n: _Names, by: Sequence[str]) -> str:
    """``direct_case_sql`` over the per-case facts (``stats_casefact``, one row per
    case): the case counters of the cases taken in on the local days %(start_day)s …
    %(end_day)s in the subtree %(scope)s, grouped by ``by``, with the same columns.
    What a system without rollups would sum for a dashboard."""
    from civicgrid.stats.counters import CASE_COUNTERS

    cf = n.models["cf"]

    def col(name: str) -> str:
        return "f." + q(cf._meta.get_field(name).column)

    keys = [f"{col(name)} AS {q(name)}" for name in by]
    sums = [f"sum({col(name)})::bigint AS {q(name)}" for name in CASE_COUNTERS]
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(by)))}" if by else ""
    return (
        "SELECT "
        + ", ".join(keys + sums)
        + f" FROM {n.table('cf')} f WHERE {col('day')} >= %(start_day)s "
        f"AND {col('day')} <= %(end_day)s AND {col('grid_path')} LIKE %(scope)s" + group
    )


def fact_person_sql(n: _Names) -> str:
    """``direct_person_sql`` over the person facts (``stats_personfact``, one row per
    case, day, person and role): person counters by (user, role) of the local days
    %(start_day)s … %(end_day)s on the cases of the subtree %(scope)s."""
    from civicgrid.stats.counters import PERSON_COUNTERS

    pf = n.models["pf"]

    def col(name: str) -> str:
        return "p." + q(pf._meta.get_field(name).column)

    select = [f"{col('user')} AS {q('user')}", f"{col('role')} AS {q('role')}"]
    select += [f"sum({col(name)})::bigint AS {q(name)}" for name in PERSON_COUNTERS]
    return (
        "SELECT "
        + ", ".join(select)
        + f" FROM {n.table('pf')} p WHERE {col('day')} >= %(start_day)s "
        f"AND {col('day')} <= %(end_day)s AND {col('grid_path')} LIKE %(scope)s GROUP BY 1, 2"
    )


def _person_parts(
    n: _Names, tz: str, cases: str
) -> tuple[str, dict[str, str], dict[str, str], dict[str, str], str]:
    """The CTEs, keys, dimensions, counters and FROM of the person facts of ``cases``."""
    from civicgrid.cases.models import Action, Status
    from civicgrid.stats.counters import PERSON_COUNTERS, STAGES
    from civicgrid.stats.facts import INTAKE_ROLE, NOT_WORK, PERSON_ACTION

    c = n
    intake_role = (
        "CASE x."
        + c.col("c", "channel")
        + " "
        + " ".join(f"WHEN '{ch}' THEN '{role}'" for ch, role in INTAKE_ROLE.items())
        + " ELSE '' END"
    )
    role = f"CASE WHEN e.action = %(create)s AND e.actor_role = '' THEN {intake_role} ELSE e.actor_role END"
    day = f"(e.at AT TIME ZONE '{tz}')::date"
    invalid = _lit([Status.VOIDED.value, Status.MERGED.value, Status.REJECTED.value])
    valid = f"coalesce(v.filed, false) AND x.{c.col('c', 'status')} NOT IN {invalid}"

    def cnt(cond: str) -> str:
        return f"count(*) FILTER (WHERE {cond})"

    by_counter: dict[str, list[str]] = {}
    for action, counter in PERSON_ACTION.items():
        by_counter.setdefault(counter, []).append(str(action))
    v: dict[str, str] = {"events": "count(*)"}
    for counter, actions in by_counter.items():
        cond = f"e.action IN {_lit(sorted(actions))}"
        if counter == "closes":
            cond = f"({cond} OR (e.action = %(verify_pass)s AND e.to_status = %(closed)s))"
        v[counter] = cnt(cond)
    v["valid_reports"] = cnt(f"e.action = %(create)s AND {valid}")
    dispatching = f"e.action IN {_lit(sorted(_dispatching()))}"
    v["accurate_dispatches"] = cnt(f"{dispatching} AND NOT r.back")
    v["reworked_dispatches"] = cnt(f"{dispatching} AND r.rework")
    v["verify_fails"] = cnt(f"e.action = '{Action.VERIFY_FAIL.value}'")
    for stage in STAGES:
        v[f"{stage}_timed"] = cnt(f"fin.stage = '{stage}'")
        v[f"{stage}_ontime"] = cnt(f"fin.stage = '{stage}' AND fin.ontime")
    missing = set(PERSON_COUNTERS) - set(v)
    if missing:
        raise RuntimeError(f"casestats: no SQL for the person counters {sorted(missing)}")

    path = f"x.{c.col('c', 'grid_path')}"
    nodes = [
        f"coalesce(nullif(split_part(trim(both '/' FROM {path}), '/', {i + 1}), '')::int, 0)"
        for i in range(4)
    ]
    not_moving = _lit(
        [Action.CREATE.value, Action.PARK.value, Action.RESUME.value, *(str(a) for a in NOT_WORK)]
    )
    d = n
    finishers = (
        f"fin AS (SELECT DISTINCT ON (e.id) e.id AS event_id, dd.{d.col('d', 'stage')} AS stage, "
        f"dd.{d.col('d', 'finished_at')} <= dd.{d.col('d', 'due_at')} AS ontime "
        f"FROM ev e JOIN {d.table('d')} dd ON dd.{d.col('d', 'case')} = e.case_id "
        f"AND dd.{d.col('d', 'finished_at')} = e.at "
        f"AND dd.{d.col('d', 'stage')} IN {_lit(STAGES)} "
        f"WHERE e.action NOT IN {not_moving} "
        "AND (e.from_status IS DISTINCT FROM e.to_status OR e.action = %(verify_pass)s) "
        f"ORDER BY e.id, dd.id DESC), "
        "filed AS (SELECT case_id, bool_or(to_status = %(filed)s) AS filed FROM ev GROUP BY case_id)"
    )
    keys = {
        "case_id": "e.case_id",
        "day": day,
        "month": f"date_trunc('month', {day})::date",
        "user": "e.actor_id",
        "role": role,
    }
    dims = {
        "node0": nodes[0],
        "node1": nodes[1],
        "node2": nodes[2],
        "node3": nodes[3],
        "grid_path": path,
    }
    not_work = _lit([str(a) for a in NOT_WORK])
    ctes = f"WITH {_events_cte(n, cases)}, {finishers} "
    source = (
        f" FROM ev e JOIN {n.table('c')} x ON x.id = e.case_id "
        "LEFT JOIN filed v ON v.case_id = e.case_id "
        "LEFT JOIN rounds r ON r.case_id = e.case_id AND r.rnd = e.rnd "
        "LEFT JOIN fin ON fin.event_id = e.id "
        f"WHERE e.actor_id IS NOT NULL AND e.action NOT IN {not_work}"
    )
    return ctes, keys, dims, {name: v[name] for name in PERSON_COUNTERS}, source


def person_fact_sql(n: _Names, tz: str) -> str:
    """``INSERT INTO stats_personfact … SELECT`` for the cases with ids in %(lo)s … %(hi)s."""
    ctes, keys, dims, counters, source = _person_parts(n, tz, CHUNK_CASES)
    pf = n.models["pf"]
    names = [*keys, *dims, *counters]
    target = ", ".join(
        q("case_id" if name == "case_id" else pf._meta.get_field(name).column) for name in names
    )
    select = [f"{expr} AS {q('k_' + name)}" for name, expr in keys.items()]
    select += [f"min({expr})" for expr in dims.values()]
    select += list(counters.values())
    return (
        f"{ctes}INSERT INTO {n.table('pf')} ({target}) SELECT "
        + ", ".join(select)
        + source
        + f" AND NOT EXISTS (SELECT 1 FROM {n.table('cf')} f WHERE f.case_id = e.case_id) "
        "GROUP BY 1, 2, 3, 4, 5"
    )


def direct_person_sql(n: _Names, tz: str) -> str:
    """Person counters by (user, role) of what people did from %(start)s to %(end)s
    (excluded) on the cases of the subtree %(scope)s: one ``GROUP BY`` over the events,
    deadlines and cases."""
    cases = (
        "{id} IN (SELECT c.id FROM "
        + n.table("c")
        + " c WHERE c."
        + n.col("c", "grid_path")
        + " LIKE %(scope)s AND c.id IN (SELECT "
        + n.col("e", "case")
        + " FROM "
        + n.table("e")
        + " WHERE "
        + n.col("e", "at")
        + " >= %(start)s AND "
        + n.col("e", "at")
        + " < %(end)s))"
    )
    ctes, keys, _dims, counters, source = _person_parts(n, tz, cases)
    select = [f"{keys['user']} AS {q('user')}", f"{keys['role']} AS {q('role')}"]
    select += [f"{expr} AS {q(name)}" for name, expr in counters.items()]
    return (
        f"{ctes}SELECT "
        + ", ".join(select)
        + source
        + " AND e.at >= %(start)s AND e.at < %(end)s GROUP BY 1, 2"
    )


def _session(conn: Any) -> None:
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET synchronous_commit = off")
    # JIT compiles the 100-odd expressions of each statement for seconds: no gain here.
    conn.execute("SET jit = off")


def write_facts(
    conn: Any,
    *,
    chunk: int = CHUNK,
    rebuild_indexes: bool | None = None,
    jobs: int = 1,
    progress: Callable[[str], None] = say,
) -> dict[str, Any]:
    """Facts for every case of the database of ``conn`` (autocommit) without one.
    Returns the days the cases were taken in and acted on (for the rollup rebuild),
    the rows written and the seconds taken. ``jobs`` > 1 writes ranges of cases on
    that many connections at once."""
    from django.conf import settings

    from bench import casegen

    t0 = time.perf_counter()
    n = _Names()
    tz = settings.TIME_ZONE
    _session(conn)
    case_t, ev_t = n.table("c"), n.table("e")
    lo, hi, first, last = conn.execute(
        f"SELECT min(x.id), max(x.id), min({n.col('c', 'received_at')}), "
        f"max({n.col('c', 'received_at')}) FROM {case_t} x "
        f"WHERE NOT EXISTS (SELECT 1 FROM {n.table('cf')} f WHERE f.case_id = x.id)"
    ).fetchone()
    out: dict[str, Any] = {"cases": 0, "person_rows": 0}
    if lo is None:
        out["seconds"] = time.perf_counter() - t0
        return out
    last_event = conn.execute(
        f"SELECT max({n.col('e', 'at')}) FROM {ev_t} WHERE {n.col('e', 'case')} >= %s", (lo,)
    ).fetchone()[0]
    last_closed = conn.execute(
        f"SELECT max({n.col('c', 'closed_at')}) FROM {case_t} WHERE id >= %s", (lo,)
    ).fetchone()[0]
    zone = ZoneInfo(tz)
    first_day = first.astimezone(zone).date()
    last_day = max(x for x in (last, last_event, last_closed) if x is not None).astimezone(zone)
    days = (first_day - dt.timedelta(days=1), last_day.date() + dt.timedelta(days=1))
    if rebuild_indexes is None:
        existing = conn.execute(f"SELECT count(*) FROM {n.table('cf')}").fetchone()[0]
        rebuild_indexes = (hi - lo) >= 50_000 and (hi - lo) >= existing
    remake: list[tuple[str, list[str]]] = []
    case_sql = case_fact_sql(n, tz)
    person_sql = person_fact_sql(n, tz)
    try:
        if rebuild_indexes:
            with conn.transaction():
                for key in ("pf", "cf"):
                    raw = n.models[key]._meta.db_table
                    remake.append((raw, casegen.drop_secondary(conn, raw)))
        ranges = [(s, min(hi, s + chunk - 1)) for s in range(lo, hi + 1, chunk)]
        lock = threading.Lock()

        def work(share: list[tuple[int, int]]) -> None:
            import psycopg

            with psycopg.connect(conn.info.dsn, autocommit=True) as mine:
                _session(mine)
                calendar_table(mine, *days)
                for start, stop in share:
                    params = _params(start, stop)
                    with mine.transaction():
                        # Person facts first: both skip the cases that have a case fact.
                        people = mine.execute(person_sql, params).rowcount
                        cases = mine.execute(case_sql, params).rowcount
                    with lock:
                        out["person_rows"] += people
                        out["cases"] += cases
                        progress(
                            f"    casestats: facts of {out['cases']:,} cases, "
                            f"{out['person_rows']:,} person rows ({time.perf_counter() - t0:.0f} s)"
                        )

        jobs = max(1, min(jobs, len(ranges)))
        with ThreadPoolExecutor(jobs) as pool:
            for done in [pool.submit(work, ranges[i::jobs]) for i in range(jobs)]:
                done.result()
    finally:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _raw, statements in remake:
            for sql in statements:
                conn.execute(sql)
        for key in ("cf", "pf"):
            conn.execute(f"ANALYZE {n.table(key)}")
    out["first_day"] = first_day.isoformat()
    out["last_day"] = last_day.date().isoformat()
    out["seconds"] = time.perf_counter() - t0
    return out


def compare_with_compute(case_ids: Sequence[int]) -> list[str]:
    """Differences between the stored facts of ``case_ids`` and ``facts.compute`` of
    their rows (Django on the same database): empty when they agree."""
    from civicgrid.stats import rollups

    stored = rollups.stored_facts(case_ids)
    computed = rollups.load_facts(case_ids)
    problems = []
    for case_id in case_ids:
        a, b = stored.get(case_id), computed.get(case_id)
        if a is None or b is None:
            problems.append(f"case {case_id}: stored {a is not None}, computed {b is not None}")
            continue
        if a.columns() != b.columns():
            diff = {
                k: (a.columns()[k], b.columns()[k])
                for k in b.columns()
                if a.columns().get(k) != b.columns()[k]
            }
            problems.append(f"case {case_id}: case fact differs {diff}")
        if a.persons != b.persons:
            keys = set(a.persons) | set(b.persons)
            diff2 = {
                str(k): (a.persons.get(k), b.persons.get(k))
                for k in sorted(keys)
                if a.persons.get(k) != b.persons.get(k)
            }
            problems.append(f"case {case_id}: person facts differ {diff2}")
    return problems


def compare_with_sql(conn: Any, lo: int, hi: int, *, show: int = 5) -> dict[str, Any]:
    """The stored facts of the cases ``lo`` … ``hi`` (e.g. casegen's, ``generate(…,
    facts=True)``) against those ``write_facts`` computes in SQL from the same cases'
    rows: the stored ones are set aside, deleted, computed again, and the two sets
    compared row by row (``EXCEPT ALL`` both ways; the person facts without their id).
    Leaves the SQL's facts in place (equal when there are no differences)."""
    n = _Names()
    cf, pf = n.table("cf"), n.table("pf")
    pf_cols = ", ".join(
        q(str(f.column)) for f in n.models["pf"]._meta.concrete_fields if not f.primary_key
    )
    cf_cols = ", ".join(q(str(f.column)) for f in n.models["cf"]._meta.concrete_fields)
    where = f"case_id BETWEEN {int(lo)} AND {int(hi)}"
    out: dict[str, Any] = {"cases": 0, "person_rows": 0, "differences": [], "examples": []}
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS sg_old_cf, sg_old_pf")
        conn.execute(f"CREATE TEMP TABLE sg_old_cf AS SELECT {cf_cols} FROM {cf} WHERE {where}")
        conn.execute(f"CREATE TEMP TABLE sg_old_pf AS SELECT {pf_cols} FROM {pf} WHERE {where}")
        conn.execute(f"DELETE FROM {pf} WHERE {where}")
        conn.execute(f"DELETE FROM {cf} WHERE {where}")
    # Fresh statistics: with every case's fact counted the planner expects no case
    # without one, and nested loops over the events would take minutes.
    conn.execute(f"ANALYZE {cf}")
    conn.execute(f"ANALYZE {pf}")
    out["cases"] = conn.execute("SELECT count(*) FROM sg_old_cf").fetchone()[0]
    out["person_rows"] = conn.execute("SELECT count(*) FROM sg_old_pf").fetchone()[0]
    out["sql"] = write_facts(conn, progress=lambda _: None)
    for name, old, cols, table in (
        ("case facts", "sg_old_cf", cf_cols, cf),
        ("person facts", "sg_old_pf", pf_cols, pf),
    ):
        for label, a, b in (
            ("stored, not computed", f"SELECT {cols} FROM {old}", f"SELECT {cols} FROM {table}"),
            ("computed, not stored", f"SELECT {cols} FROM {table}", f"SELECT {cols} FROM {old}"),
        ):
            rows = conn.execute(
                f"SELECT * FROM ({a} WHERE {where} EXCEPT ALL {b} WHERE {where}) d ORDER BY case_id"
            ).fetchall()
            if rows:
                out["differences"].append(f"{name}: {len(rows)} rows {label}")
                out["examples"] += [f"{name} {label}: {r}" for r in rows[:show]]
    return out


def _django_on(dsn: str) -> None:
    """Django on the database of ``dsn`` (for ``compare_with_compute``)."""
    import os
    import tempfile

    from psycopg.conninfo import conninfo_to_dict

    from bench.pg import database_url

    os.environ["DATABASE_URL"] = database_url(str(conninfo_to_dict(dsn)["dbname"]))
    os.environ["CIVICGRID_VAR_DIR"] = tempfile.mkdtemp(prefix="civicgrid-casestats-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "civicgrid.settings"
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--jobs", type=int, default=1, help="connections writing at once")
    parser.add_argument(
        "--compute",
        type=int,
        default=0,
        metavar="N",
        help="check: the stored facts of N cases (evenly spread) against facts.compute "
        "of their rows, instead of writing facts",
    )
    parser.add_argument(
        "--against-sql",
        default="",
        metavar="LO:HI",
        help="check: the stored facts of the cases LO … HI (casegen's) against those "
        "this module computes in SQL for them (rewrites them), instead of writing facts",
    )
    args = parser.parse_args(argv)
    import psycopg

    from bench import casegen

    if args.compute:
        _django_on(args.dsn)
    casegen.setup_django_once()
    bad = 0
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        if args.compute:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT case_id FROM {_Names().table('cf')} ORDER BY case_id"
                ).fetchall()
            ]
            step = max(1, len(ids) // args.compute)
            sample = ids[::step][: args.compute]
            problems: list[str] = []
            for start in range(0, len(sample), 2000):
                problems += compare_with_compute(sample[start : start + 2000])
            say(f"facts.compute: {len(sample):,} cases, {len(problems)} differences")
            for line in problems[:10]:
                say("  " + line)
            bad += len(problems)
        if args.against_sql:
            lo, hi = (int(x) for x in args.against_sql.split(":"))
            result = compare_with_sql(conn, lo, hi)
            say(
                f"SQL facts: {result['cases']:,} cases, {result['person_rows']:,} person rows, "
                f"{len(result['differences'])} differences {result['differences']}"
            )
            for line in result["examples"]:
                say("  " + line)
            bad += len(result["differences"])
        if not args.compute and not args.against_sql:
            say(str(write_facts(conn, chunk=args.chunk, jobs=args.jobs)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
