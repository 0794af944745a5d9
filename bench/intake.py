"""Intake through the API on PostgreSQL, against the raw insert rate of the same rows.

A fresh PostgreSQL database (migrate + ``civicgrid demo`` + 100,000 generated cases
as history, so indexes have a realistic size) is served by ``gunicorn
civicgrid.wsgi:application --workers 2`` as ``civicgrid serve`` runs it (sync
workers, access log on, ``DEBUG=0``, persistent database connections). A call-taker
with a bearer token posts 12345 hotline cases to ``POST /api/v1/cases``: random
subcategories of the catalogue with its frequencies, a random point inside a random
level-3 grid, requester, address, the hotline's order number as external id and a
unique ``Idempotency-Key`` each, from ``ctx.connections`` concurrent connections
(wrk, installed with apt when missing; else a bounded Python load generator) for
``ctx.load_seconds`` (15 s; ``--quick`` 5 s), after a warm-up of both workers.
Every response must be 201; anything else counts as an error.

Baseline, in the same run on the same database: the rows those intakes wrote (the
case, its create event, its deadline), read back and inserted again with plain
psycopg INSERTs, one transaction per case, from as many client threads as the load
had connections. Both are transactional writes on the same server; the ratio says
what the platform costs on top of the rows themselves.

Besides the figures, the JSON gets what limits them: the CPU seconds the gunicorn
workers and the database backends used per case (from /proc), the share of the
machine other processes used meanwhile, the rows an intake writes per table and its
queries (one intake through Django's test client, counted).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import casegen
from bench.common import (
    HISTORY,
    NEW_ID,
    WORKERS,
    Baseline,
    Context,
    Figure,
    Job,
    Request,
    commits,
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

#: The issue's aim: at least a quarter of the raw insert rate.
SHARE_TARGET = 0.25
#: The raw baseline makes as many cases as the API did, but at least this many: a run
#: of a tenth of a second measures the scheduler more than the database.
RAW_MIN = 1000


def _insert_sql(table: str, columns: Sequence[str], returning: bool = False) -> str:
    cols = ", ".join(casegen.q(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    tail = " RETURNING id" if returning else ""
    return f"INSERT INTO {casegen.q(table)} ({cols}) VALUES ({marks}){tail}"


def _adapt(value: Any) -> Any:
    if isinstance(value, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value


def replay_jobs(
    db: CivicgridDB, where: str, params: Sequence[Any], tag: str, *, at_least: int = 0
) -> list[Job]:
    """For each case matching ``where``: INSERT of the case row (new number, tracking
    code, idempotency key and external id), of its create event and of its deadlines,
    as the intake wrote them; the cases again in turn until there are ``at_least``."""
    t = casegen.tables()
    case_cols = [f.column for f in t.models["Case"]._meta.concrete_fields if not f.primary_key]
    ev_cols = [f.column for f in t.models["CaseEvent"]._meta.concrete_fields if not f.primary_key]
    dl_cols = [f.column for f in t.models["Deadline"]._meta.concrete_fields if not f.primary_key]
    ev_case, dl_case = t.column("CaseEvent", "case"), t.column("Deadline", "case")
    with db.connect() as conn:
        cases = conn.execute(
            f"SELECT id, {', '.join(casegen.q(c) for c in case_cols)} FROM {t.table('Case')} "
            f"WHERE {where} ORDER BY id",
            params,
        ).fetchall()
        ids = [r[0] for r in cases]
        events: dict[int, list[Any]] = {}
        for r in conn.execute(
            f"SELECT {', '.join(casegen.q(c) for c in ev_cols)} FROM {t.table('CaseEvent')} "
            f"WHERE {casegen.q(ev_case)} = ANY(%s) AND {t.col('CaseEvent', 'action')} = 'create'",
            (ids,),
        ).fetchall():
            events.setdefault(r[ev_cols.index(ev_case)], []).append(r)
        deadlines: dict[int, list[Any]] = {}
        for r in conn.execute(
            f"SELECT {', '.join(casegen.q(c) for c in dl_cols)} FROM {t.table('Deadline')} "
            f"WHERE {casegen.q(dl_case)} = ANY(%s)",
            (ids,),
        ).fetchall():
            deadlines.setdefault(r[dl_cols.index(dl_case)], []).append(r)
    unique = {
        t.column("Case", "number"): lambda i: f"R{tag}{i:09d}"[:32],
        t.column("Case", "tracking_code"): lambda i: f"R{i:09d}",
        t.column("Case", "idempotency_key"): lambda i: f"raw-{tag}-{i}",
    }
    external = t.column("Case", "external_id")
    case_sql = _insert_sql(t.raw_table("Case"), case_cols, returning=True)
    ev_sql = _insert_sql(t.raw_table("CaseEvent"), ev_cols)
    dl_sql = _insert_sql(t.raw_table("Deadline"), dl_cols)
    jobs: list[Job] = []
    total = max(len(cases), at_least) if cases else 0
    for i in range(total):
        row = cases[i % len(cases)]
        values = []
        for col, v in zip(case_cols, row[1:], strict=True):
            if col in unique:
                v = unique[col](i)
            elif col == external and v:
                v = f"RAW{tag}{i}"
            values.append(_adapt(v))
        job: Job = [(case_sql, values)]
        for ev in events.get(row[0], []):
            job.append(
                (
                    ev_sql,
                    [
                        NEW_ID if c == ev_case else _adapt(v)
                        for c, v in zip(ev_cols, ev, strict=True)
                    ],
                )
            )
        for dl in deadlines.get(row[0], []):
            job.append(
                (
                    dl_sql,
                    [
                        NEW_ID if c == dl_case else _adapt(v)
                        for c, v in zip(dl_cols, dl, strict=True)
                    ],
                )
            )
        jobs.append(job)
    return jobs


# -- the benchmark -----------------------------------------------------------------------------
DETAIL = "{p}附近{what}，来电人要求尽快处理"
WHATS = ["问题突出，影响居民生活", "情况已持续数日", "存在安全隐患", "反复出现", "夜间尤其严重"]


def intake_requests(
    world: casegen.World, rng: np.random.Generator, n: int, nonce: str
) -> list[Request]:
    """``n`` hotline intakes as a 12345 integration posts them."""
    grid = rng.integers(0, len(world.grid_ids), n)
    points = casegen.points_in(rng, world, grid)
    cat = rng.choice(len(world.cat_ids), n, p=world.cat_weights)
    urgency = rng.choice(len(casegen.URGENCIES), n, p=casegen.URGENCY_WEIGHTS)
    rtype = rng.choice(len(casegen.REQUEST_TYPES), n, p=casegen.REQUEST_WEIGHTS)
    surname = rng.integers(0, len(casegen.SURNAMES), n)
    phone = 13_000_000_000 + rng.integers(0, 7_000_000_000, n)
    what = rng.integers(0, len(WHATS), n)
    building = rng.integers(1, 60, n)
    out = []
    for i in range(n):
        place = world.grid_places[grid[i]]
        body = {
            "channel": "hotline",
            "category": world.cat_codes[cat[i]],
            "description": world.cat_names[cat[i]]
            + "："
            + DETAIL.format(p=place, what=WHATS[what[i]]),
            "urgency": casegen.URGENCIES[urgency[i]],
            "request_type": casegen.REQUEST_TYPES[rtype[i]],
            "address": f"{place}{building[i]}号楼附近",
            "lon": round(float(points[i, 0]), 7),
            "lat": round(float(points[i, 1]), 7),
            "crs": "wgs84",
            "requester_name": casegen.SURNAMES[surname[i]] + ("女士" if i % 2 else "先生"),
            "requester_phone": str(phone[i]),
            "external_id": f"GD{nonce}{i:07d}",
        }
        out.append(
            Request(
                "/api/v1/cases",
                json.dumps(body, ensure_ascii=False).encode(),
                key=f"bench-{nonce}-{i}",
            )
        )
    return out


def run(ctx: Context) -> list[Figure]:
    return run_on_pg(ctx, "intake", _run)


def _run(ctx: Context, db: CivicgridDB) -> list[Figure]:
    details: dict[str, Any] = {"database": db.server_info()}
    ctx.details["intake"] = details
    details["history"] = history(ctx, db, ctx.pick(*HISTORY))
    users = make_users(db, {"bench-calltaker": "call_taker"})
    token = users["bench-calltaker"]["token"]
    with db.connect() as conn:
        world = casegen.load_world(conn, casegen.tables(), ctx.seed)
    nonce = secrets.token_hex(3)
    connections = ctx.connections
    rng = ctx.rng(31)
    pool = intake_requests(world, rng, ctx.pick(60_000, 20_000), nonce)
    warm = intake_requests(world, rng, 8 * WORKERS, "w" + nonce)

    before_rows, before_commits = table_counters(db), commits(db)
    served = serve_and_load(ctx, db, token, pool, warm, "intake")
    load, cpu = served.load, served.cpu
    details["csrf_workaround"] = served.csrf_workaround
    after_rows, after_commits = table_counters(db), commits(db)

    like = f"bench-{nonce}-%"
    t = casegen.tables()
    with db.connect() as conn:
        stored = conn.execute(
            f"SELECT count(*) FROM {t.table('Case')} WHERE {t.col('Case', 'idempotency_key')} "
            "LIKE %s",
            (like,),
        ).fetchone()[0]
    created = load.count(201)
    total_intakes = stored + len(warm)
    details["load"] = load.as_dict()
    details["stored_cases"] = stored
    details["cpu_seconds"] = {k: round(v, 3) for k, v in cpu.items()}
    details["cpu_ms_per_case"] = {
        k: round(1000 * cpu[k] / created, 2) for k in ("gunicorn", "postgres") if created
    }
    details["rows_per_intake"] = rows_written(before_rows, after_rows, total_intakes)
    details["transactions_per_intake"] = (
        round((after_commits - before_commits) / total_intakes, 2) if total_intakes else None
    )
    if load.errors:
        ctx.note(f"intake: {load.errors} responses were not 2xx (first: {load.sample_error[:200]})")
    if load.count(200):
        ctx.note(f"intake: {load.count(200)} responses were 200 (an idempotent replay), not 201")
    if load.exhausted:
        ctx.note("intake: the load generator ran out of prepared requests; raise the pool size")
    if stored < created:
        ctx.note(f"intake: {created} responses said 201 but {stored} cases are stored")

    # -- the baseline: the same rows, plain INSERTs
    jobs = replay_jobs(
        db, f"{t.col('Case', 'idempotency_key')} LIKE %s", (like,), nonce, at_least=RAW_MIN
    )
    raw = run_transactions(db, jobs, connections, returning_id=True)
    details["raw"] = raw.as_dict()
    details["raw_statements_per_case"] = (
        round(sum(len(j) for j in jobs) / len(jobs), 2) if jobs else 0
    )
    if raw.errors:
        ctx.note(f"intake: {raw.errors} raw insert transactions failed")
    details["queries"] = count_queries(db, token, pool[-2], pool[-1])
    api_rate = created / load.seconds if load.seconds else 0.0
    share = api_rate / raw.rate if raw.rate else 0.0
    busy = cpu["machine_busy"] / cpu["machine_total"] if cpu["machine_total"] else 0.0
    other = max(0.0, cpu["machine_busy"] - cpu["gunicorn"] - cpu["postgres"])
    details["machine_busy_share"] = round(busy, 3)
    details["other_processes_cpu_seconds"] = round(other, 2)
    say(
        f"  API: {created:,} cases in {load.seconds:.1f} s = {api_rate:.0f}/s "
        f"(p50 {load.p50_ms:.0f} ms, p95 {load.p95_ms:.0f} ms, {load.errors} errors); "
        f"raw: {raw.transactions:,} in {raw.seconds:.2f} s = {raw.rate:.0f}/s"
    )
    say(
        f"  CPU per case: gunicorn {details['cpu_ms_per_case'].get('gunicorn', 0):.1f} ms, "
        f"postgres {details['cpu_ms_per_case'].get('postgres', 0):.1f} ms; "
        f"machine {busy:.0%} busy, other processes {other:.1f} CPU-s; "
        f"queries per intake: {details['queries'].get('queries')}"
    )
    label = f"intake API ({WORKERS} workers, {connections} conns)"
    raw_name = f"raw INSERTs, {connections} threads"
    figures = [
        Figure(
            "intake.api_rate",
            f"{label}: cases/s",
            api_rate,
            "cases/s",
            baselines=[Baseline(raw_name, raw.rate, note="case + create event + deadline")],
            note=f"{load.tool}; {created:,} cases in {load.seconds:.1f} s",
        ),
        Figure(
            "intake.share_of_raw",
            f"{label}: share of the raw insert rate",
            share,
            "× raw",
            target=SHARE_TARGET,
            note="issue 3: at least a quarter of the raw insert rate",
        ),
    ]
    return figures + load_figures("intake", label, "case", load, raw, raw_name, cpu, created)
