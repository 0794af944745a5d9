"""A case transition through the API: dispatch, on PostgreSQL, against its raw writes.

The same set-up as the intake benchmark (``bench/intake.py``; shared in ``bench/common.py``): a fresh database with
the demo district and 100,000 generated cases of history, ``gunicorn --workers 2``,
the same load generator and connections. A pool of cases waiting for dispatch
(status ``filed``, accepted in the last hours, with their accept and dispatch
deadlines) is generated with ``bench/casegen.py``; a dispatcher with a bearer token
posts ``POST /api/v1/cases/{id}/dispatch`` with the suggested unit, each case once.
Every response must be 200.

Baseline, same run, same database, as many client threads as connections: what a
dispatch writes, by hand with psycopg, one transaction per case, on the other half of
the pool: the conditional UPDATE of the case (status, lead unit, version, due date;
``WHERE version = … AND status = 'filed'``), the INSERT of the dispatch event, the
UPDATE finishing the running deadline and the INSERT of the acknowledge deadline
(due by the category's time limit on the work calendar, computed beforehand).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np

from bench import casegen
from bench.common import (
    HISTORY,
    WORKERS,
    Baseline,
    Context,
    Figure,
    Job,
    Request,
    count_queries,
    history,
    load_figures,
    make_users,
    rows_written,
    run_on_pg,
    run_transactions,
    say,
    serve_and_load,
    table_counters,
)
from bench.pg import CivicgridDB

#: Filed cases for the API and as many for the baseline.
POOL = (15_000, 4_000)
RAW_MIN = 1000


def run(ctx: Context) -> list[Figure]:
    return run_on_pg(ctx, "transitions", _run)


def _pool(ctx: Context, db: CivicgridDB, n: int) -> list[tuple[int, int, int, int, str, int]]:
    """``n`` filed cases: (id, version, suggested unit, category, urgency, grid) each."""
    with db.connect() as conn:
        made = casegen.generate(
            conn, n, seed=ctx.seed + 1, days=0.25, flow="filed", progress=lambda _: None
        )
    t = casegen.tables()
    c = "Case"
    with db.connect() as conn:
        rows = conn.execute(
            f"SELECT id, {t.col(c, 'version')}, {t.col(c, 'suggested_unit')}, "
            f"{t.col(c, 'category')}, {t.col(c, 'urgency')}, {t.col(c, 'grid')} "
            f"FROM {t.table(c)} WHERE id BETWEEN %s AND %s AND {t.col(c, 'status')} = 'filed' "
            "ORDER BY id",
            (made.first_id, made.last_id),
        ).fetchall()
    return [tuple(r) for r in rows]


def _raw_jobs(
    db: CivicgridDB, cases: list[tuple[int, int, int, int, str, int]], actor: int
) -> list[Job]:
    """The writes of ``dispatch_case`` for each case, as plain SQL."""
    t = casegen.tables()
    with db.connect() as conn:
        world = casegen.load_world(conn, t, 0)
        now = dt.datetime.now(dt.UTC)
        cal = casegen.Calendar.load(
            conn,
            t,
            world.tz,
            (now - dt.timedelta(days=2)).date(),
            (now + dt.timedelta(days=90)).date(),
        )
    cat_index = {int(c): i for i, c in enumerate(world.cat_ids.tolist())}
    stage = casegen.STAGES.index("acknowledge")
    cats = np.array([cat_index[c[3]] for c in cases])
    urg = np.array([casegen.URGENCIES.index(c[4]) for c in cases])
    amount = world.limit_amount[cats, urg, stage]
    unit = world.limit_unit[cats, urg, stage]
    start = np.full(len(cases), int(now.timestamp()), dtype=np.int64)
    due = cal.due(start, amount, unit)
    unit_names = ["work_hours", "work_days", "natural_hours"]
    c, e, d = "Case", "CaseEvent", "Deadline"
    update_case = (
        f"UPDATE {t.table(c)} SET {t.col(c, 'status')} = 'dispatched', "
        f"{t.col(c, 'lead_unit')} = %s, {t.col(c, 'version')} = {t.col(c, 'version')} + 1, "
        f"{t.col(c, 'updated_at')} = now(), {t.col(c, 'due_at')} = %s "
        f"WHERE id = %s AND {t.col(c, 'version')} = %s AND {t.col(c, 'status')} = 'filed'"
    )
    ev_fields = ["case", "action", "actor", "actor_role", "actor_unit", "at", "from_status"]
    ev_fields += ["to_status", "reason", "is_public", "payload"]
    insert_event = (
        f"INSERT INTO {t.table(e)} ({', '.join(t.col(e, f) for f in ev_fields)}) VALUES "
        "(%s, 'dispatch', %s, 'dispatcher', %s, now(), 'filed', 'dispatched', '', true, %s)"
    )
    finish = (
        f"UPDATE {t.table(d)} SET {t.col(d, 'finished_at')} = now() "
        f"WHERE {t.col(d, 'case')} = %s AND {t.col(d, 'finished_at')} IS NULL"
    )
    dl_fields = ["case", "stage", "started_at", "due_at", "amount", "unit"]
    insert_deadline = (
        f"INSERT INTO {t.table(d)} ({', '.join(t.col(d, f) for f in dl_fields)}) VALUES "
        "(%s, 'acknowledge', now(), %s, %s, %s)"
    )
    from psycopg.types.json import Jsonb

    jobs: list[Job] = []
    for i, (case_id, version, suggested, _, _, _) in enumerate(cases):
        due_at = dt.datetime.fromtimestamp(int(due[i]), dt.UTC)
        payload = Jsonb(
            {
                "lead_unit": suggested,
                "assisting_units": [],
                "suggested_unit": suggested,
                "followed_suggestion": True,
            }
        )
        jobs.append(
            [
                (update_case, [suggested, due_at, case_id, version]),
                (insert_event, [case_id, actor, suggested, payload]),
                (finish, [case_id]),
                (insert_deadline, [case_id, due_at, f"{amount[i]:.2f}", unit_names[unit[i]]]),
            ]
        )
    return jobs


def _run(ctx: Context, db: CivicgridDB) -> list[Figure]:
    details: dict[str, Any] = {"database": db.server_info()}
    ctx.details["transitions"] = details
    details["history"] = history(ctx, db, ctx.pick(*HISTORY))
    per_side = ctx.pick(*POOL)
    cases = _pool(ctx, db, 2 * per_side + 40)
    api_cases, raw_cases, spare = cases[:per_side], cases[per_side : 2 * per_side], cases[-40:]
    details["pool"] = {"api": len(api_cases), "raw": len(raw_cases)}
    users = make_users(db, {"bench-dispatcher": "dispatcher"})
    token, actor = users["bench-dispatcher"]["token"], users["bench-dispatcher"]["id"]

    def dispatch(case: tuple[int, int, int, int, str, int]) -> Request:
        body = json.dumps({"unit": case[2], "note": ""}).encode()
        return Request(f"/api/v1/cases/{case[0]}/dispatch", body)

    requests = [dispatch(c) for c in api_cases]
    warm = [dispatch(c) for c in spare[: 8 * WORKERS]]
    connections = ctx.connections
    before_rows = table_counters(db)
    served = serve_and_load(ctx, db, token, requests, warm, "transitions")
    load, cpu = served.load, served.cpu
    after_rows = table_counters(db)
    t = casegen.tables()
    with db.connect() as conn:
        moved = conn.execute(
            f"SELECT count(*) FROM {t.table('Case')} WHERE id = ANY(%s) "
            f"AND {t.col('Case', 'status')} = 'dispatched'",
            ([c[0] for c in api_cases],),
        ).fetchone()[0]
    done = load.count(200)
    details["load"] = load.as_dict()
    details["dispatched_in_db"] = moved
    details["cpu_seconds"] = {k: round(v, 3) for k, v in cpu.items()}
    details["cpu_ms_per_dispatch"] = {
        k: round(1000 * cpu[k] / done, 2) for k in ("gunicorn", "postgres") if done
    }
    details["rows_per_dispatch"] = rows_written(before_rows, after_rows, moved + len(warm))
    if load.errors:
        ctx.note(
            f"transitions: {load.errors} responses were not 2xx (first: {load.sample_error[:200]})"
        )
    if load.exhausted:
        ctx.note("transitions: the pool of filed cases ran out; raise POOL")

    # As many as the API dispatched, but at least RAW_MIN: a run of a tenth of a second
    # measures the scheduler more than the database.
    jobs = _raw_jobs(db, raw_cases[: max(moved, min(RAW_MIN, len(raw_cases)))], actor)
    raw = run_transactions(db, jobs, connections)
    details["raw"] = raw.as_dict()
    if raw.errors:
        ctx.note(f"transitions: {raw.errors} raw dispatch transactions failed")
    details["queries"] = count_queries(db, token, dispatch(spare[-2]), dispatch(spare[-1]))
    api_rate = done / load.seconds if load.seconds else 0.0
    say(
        f"  API: {done:,} dispatches in {load.seconds:.1f} s = {api_rate:.0f}/s "
        f"(p50 {load.p50_ms:.0f} ms, p95 {load.p95_ms:.0f} ms, {load.errors} errors); "
        f"raw: {raw.transactions:,} in {raw.seconds:.2f} s = {raw.rate:.0f}/s; "
        f"queries per dispatch: {details['queries'].get('queries')}"
    )
    label = f"dispatch API ({WORKERS} workers, {connections} conns)"
    raw_name = f"raw UPDATE+INSERTs, {connections} threads"
    figures = [
        Figure(
            "transitions.dispatch_rate",
            f"{label}: dispatches/s",
            api_rate,
            "cases/s",
            baselines=[
                Baseline(
                    raw_name,
                    raw.rate,
                    note="conditional case UPDATE, event INSERT, deadline UPDATE + INSERT",
                )
            ],
            note=f"{load.tool}; {done:,} dispatches in {load.seconds:.1f} s",
        ),
    ]
    return figures + load_figures("transitions", label, "dispatch", load, raw, raw_name, cpu, done)
