"""Ten times the cases of a year, from the year itself: shifted copies, set-based on the server.

``grow(dsn, copies=9)`` adds ``copies`` copies of every case of a database that
``bench/casegen.py`` filled and ``bench/casestats.py`` gave its facts (a year of
cases before now), with their statistics facts, in ``INSERT … SELECT`` statements on
two connections. Copy ``k`` of case ``id`` is case ``id + k × M`` (``M`` the largest
id), taken in ``35 × k`` days later, cyclically within the last 364 days of the
year (five weeks per copy: the weekday, and so the weekly rhythm, stays; a case
shifted past the newest day wraps to the start of the window), its timestamps
(intake, closing, due, created, updated) moved by the same whole days, with its own
number, tracking code, external id and idempotency key (the original's with
``-k``). Its case fact and person facts are the original's with the new id and the
days (and months) moved by the same number of days: what the hooks would have
stored for such a case, so the facts of the copies stay equal to the counters of
their stories, and every day, grid and dimension of the year gets about ten times
the cases in a different mix of days (each copy lands on other days).

Not copied: the events, deadlines and approvals of the copies (63 million more rows
that nothing measured at that size reads: the dashboards and evaluations read the
rollups, their baseline the facts). A copy's actions that were weeks after its
intake can fall after the newest day once it is shifted (the last weeks of the
window): they lie outside every figure's period.

During the load the secondary indexes and the unique and foreign-key constraints of
``cases_case``, ``stats_casefact`` and ``stats_personfact`` are dropped and the two
fact tables are made ``UNLOGGED`` (no WAL: the database is the bench's and is
dropped afterwards); the foreign keys come back ``NOT VALID`` (not re-checked), the
indexes and unique constraints do not (the figures at that size do not read these
tables through them: the rollups are rebuilt by a full scan, the baselines scan).
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import say  # noqa: E402

#: Days of the window the copies are shifted within (52 whole weeks), and of each shift.
WINDOW_DAYS = 364
SHIFT_DAYS = 35
SHIFT_TABLE = "bench_grow_shift"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(conn: Any, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()


def _session(conn: Any) -> None:
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET jit = off")


def grow(
    dsn: str, copies: int = 9, *, jobs: int = 2, progress: Callable[[str], None] = say
) -> dict[str, Any]:
    """Add ``copies`` shifted copies of every case and its facts (see the module);
    returns what was written and the seconds of each part."""
    import psycopg
    from django.conf import settings

    from bench import casegen
    from civicgrid.cases.models import Case
    from civicgrid.stats.models import CaseFact, PersonFact

    t0 = time.perf_counter()
    cases, cf, pf = Case._meta.db_table, CaseFact._meta.db_table, PersonFact._meta.db_table
    out: dict[str, Any] = {"copies": copies, "seconds": {}}
    with psycopg.connect(dsn, autocommit=True) as conn:
        _session(conn)
        top, newest = conn.execute(f"SELECT max(id), max(received_at) FROM {q(cases)}").fetchone()
        top_pf = conn.execute(f"SELECT coalesce(max(id), 0) FROM {q(pf)}").fetchone()[0]
        end = newest.astimezone(__import__("zoneinfo").ZoneInfo(settings.TIME_ZONE)).date()
        low = end - dt.timedelta(days=WINDOW_DAYS - 1)
        out.update(max_id=top, window=[low.isoformat(), end.isoformat()])
        conn.execute(f"DROP TABLE IF EXISTS {SHIFT_TABLE}")
        # Each original case's day in the window (-1: before it, not shifted).
        conn.execute(
            f"CREATE UNLOGGED TABLE {SHIFT_TABLE} AS SELECT case_id, "
            f"CASE WHEN day >= %s THEN day - %s ELSE -1 END AS off FROM {q(cf)}",
            (low, low),
        )
        conn.execute(f"ALTER TABLE {SHIFT_TABLE} ADD PRIMARY KEY (case_id)")
        originals = conn.execute(f"SELECT count(*) FROM {SHIFT_TABLE}").fetchone()[0]
        out["original_cases"] = originals
        t1 = time.perf_counter()
        remake: list[str] = []
        for table in (cases, cf, pf):
            remake += casegen.drop_secondary(conn, table)
        for table in (cf, pf):
            conn.execute(f"ALTER TABLE {q(table)} SET UNLOGGED")
        out["seconds"]["prepare"] = time.perf_counter() - t1
        case_cols = _columns(conn, cases)
        cf_cols = [c for c, _ in _columns(conn, cf)]
        pf_cols = [c for c, _ in _columns(conn, pf)]

    def delta(k: int) -> str:
        shift = (SHIFT_DAYS * k) % WINDOW_DAYS
        return f"(CASE WHEN s.off >= 0 THEN (s.off + {shift}) % {WINDOW_DAYS} - s.off ELSE 0 END)"

    def case_sql(k: int) -> str:
        m = f"{k} * {top}"
        special = {
            "id": f"x.id + {m}",
            "number": f"x.number || '-{k}'",
            "tracking_code": f"x.tracking_code || '-{k}'",
            "external_id": f"CASE WHEN x.external_id = '' THEN '' ELSE x.external_id || '-{k}' END",
            "idempotency_key": f"x.idempotency_key || '-{k}'",
            "merged_into_id": f"x.merged_into_id + {m}",
        }
        exprs = []
        for name, kind in case_cols:
            if name in special:
                exprs.append(special[name])
            elif kind == "timestamp with time zone":
                exprs.append(f"x.{q(name)} + {delta(k)} * interval '1 day'")
            else:
                exprs.append(f"x.{q(name)}")
        return (
            f"INSERT INTO {q(cases)} ({', '.join(q(c) for c, _ in case_cols)}) "
            f"SELECT {', '.join(exprs)} FROM {q(cases)} x "
            f"JOIN {SHIFT_TABLE} s ON s.case_id = x.id WHERE x.id <= {top}"
        )

    def fact_sql(table: str, cols: list[str], k: int) -> str:
        special = {
            # The person facts' ids too, rather than the identity's nextval for each
            # of 46 million rows.
            "id": f"x.id + {k} * {top_pf}",
            "case_id": f"x.case_id + {k} * {top}",
            "day": f"x.day + {delta(k)}",
            "month": f"CAST(date_trunc('month', x.day + {delta(k)}) AS date)",
        }
        exprs = [special.get(c, f"x.{q(c)}") for c in cols]
        return (
            f"INSERT INTO {q(table)} ({', '.join(q(c) for c in cols)}) "
            f"SELECT {', '.join(exprs)} FROM {q(table)} x "
            f"JOIN {SHIFT_TABLE} s ON s.case_id = x.case_id WHERE x.case_id <= {top}"
        )

    tasks: list[tuple[str, int, str]] = []
    for k in range(1, copies + 1):  # the biggest first: the person facts
        tasks.append(("person facts", k, fact_sql(pf, pf_cols, k)))
    for k in range(1, copies + 1):
        tasks.append(("cases", k, case_sql(k)))
        tasks.append(("case facts", k, fact_sql(cf, cf_cols, k)))
    spent: dict[str, float] = {}
    written: dict[str, int] = {}
    lock = threading.Lock()
    t1 = time.perf_counter()

    def work(task: tuple[str, int, str]) -> None:
        what, k, sql = task
        with psycopg.connect(dsn, autocommit=True) as conn:
            _session(conn)
            s0 = time.perf_counter()
            rows = conn.execute(sql).rowcount
            s = time.perf_counter() - s0
        with lock:
            spent[what] = spent.get(what, 0.0) + s
            written[what] = written.get(what, 0) + rows
        if k == copies:
            progress(
                f"    grow: {what} of copy {k} in {s:.0f} s ({time.perf_counter() - t1:.0f} s)"
            )

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for future in [pool.submit(work, t) for t in tasks]:
            future.result()
    out["seconds"]["copy"] = time.perf_counter() - t1
    out["seconds_by_table"] = {k: round(v, 1) for k, v in spent.items()}
    out["rows"] = written

    with psycopg.connect(dsn, autocommit=True) as conn:
        t1 = time.perf_counter()
        skipped = []
        for statement in remake:
            if " FOREIGN KEY " in statement:
                conn.execute(statement + " NOT VALID")
            else:
                skipped.append(statement)
        out["not_rebuilt"] = skipped
        conn.execute(f"DROP TABLE IF EXISTS {SHIFT_TABLE}")
        for table in (cases, pf):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {q(table)}))"
            )
        for table in (cases, cf, pf):
            conn.execute(f"ANALYZE {q(table)}")
        out["seconds"]["finish"] = time.perf_counter() - t1
    out["seconds"]["total"] = time.perf_counter() - t0
    return out
