"""Case list and search at 1,000,000 cases, through the code the API and pages use.

A PostgreSQL database with the demo district gets 1,000,000 cases from
``bench/casegen.py`` (``--quick``: 200,000): the run's database of that size
(``pg.cases_db``), which the dashboards then take over (they only read the cases
too, until they grow them), so a full run generates the million once. A child process runs Django on it and
times each request in-process through Django's test client: the whole middleware
stack, authentication, the view, the selectors' queries and the serialisation, but no
HTTP parsing and no network (server time). The user is a dispatcher scoped to the
district (a grid-scoped membership, the common case, not a superuser). Measured:

- ``GET /api/v1/cases``: the first page, newest first (50 cases);
- the same filtered by status (dispatched, in progress), a major category (all its
  subcategories) and a subdistrict (``grid=``);
- a text search (``q=``) for a community's name (in about 1 % of the cases), and one
  for a case number (one hit);
- a deep page: the cursor of the case half-way down the list;
- the dispatcher's queue page ``/cases/?sort=urgent&status=filed&status=returned``
  (the table as htmx swaps it in: 30 rows, the deadline colour of each), "most urgent
  and first due first"; and the same ordering over every case (no filter).

Each is run ``runs`` times (50; ``--quick`` 10, fewer when one takes so long that it
would pass its time cap), interleaved with its baseline: the equivalent hand-written
SQL (same rows, same joins, same order and page size) through psycopg on the same
database. The target (issue 4) is under 300 ms server time. For each figure the JSON
keeps the SQL statements of one request with their times and the ``EXPLAIN (ANALYZE,
BUFFERS)`` of the slowest, and of the baseline.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Baseline, Context, Figure, run_child, say  # noqa: E402

TARGET_MS = 300.0
CASES = (1_000_000, 200_000)
RUNS = (50, 10)
#: Seconds one figure (ours and its baseline together) may take before it stops early.
CAP_SECONDS = (60.0, 15.0)
MIN_RUNS = 3


def run(ctx: Context) -> list[Figure]:
    from bench import casegen
    from bench.common import make_users
    from bench.pg import cases_db

    casegen.setup_django_once()
    n = ctx.pick(*CASES)
    # The run's database of n generated cases, shared with the dashboards (which take
    # it over afterwards): this benchmark only reads the cases and adds a user.
    shared = cases_db(ctx, n, made_by="caselist")
    if shared is None:
        return []
    db, made = shared
    ctx.details["caselist"] = {"casegen": made | {"total_seconds": made["seconds"]}}
    users = make_users(db, {"bench-dispatcher": "dispatcher"})
    spec = _spec(db, users["bench-dispatcher"]["token"], n, ctx)
    ctx.details["caselist"]["spec"] = {k: v for k, v in spec.items() if k != "token"}
    result = _child(db, spec)
    ctx.details["caselist"].update(result)
    return _figures(ctx, result, n)


def _spec(db: Any, token: str, n: int, ctx: Context) -> dict[str, Any]:
    """What to ask for: a busy subdistrict, a common major category, a community name,
    a case number, the offset of the deep page."""
    from bench import casegen

    t = casegen.tables()
    g, c, k = "Grid", "Case", "Category"
    with db.connect() as conn:
        root = conn.execute(
            f"SELECT id, {t.col(g, 'path')} FROM {t.table(g)} WHERE {t.col(g, 'parent')} IS NULL "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        subs = conn.execute(
            f"SELECT id, {t.col(g, 'path')}, {t.col(g, 'name')} FROM {t.table(g)} "
            f"WHERE {t.col(g, 'level')} = 1 ORDER BY {t.col(g, 'path')}"
        ).fetchall()
        counts = {
            path: conn.execute(
                f"SELECT count(*) FROM {t.table(c)} WHERE {t.col(c, 'grid_path')} LIKE %s",
                (path + "%",),
            ).fetchone()[0]
            for _, path, _ in subs
        }
        sub = max(subs, key=lambda s: counts[s[1]])
        major = conn.execute(
            f"SELECT p.{t.col(k, 'code')}, count(*) FROM {t.table(c)} x "
            f"JOIN {t.table(k)} m ON m.id = x.{t.col(c, 'category')} "
            f"JOIN {t.table(k)} p ON p.id = m.{t.col(k, 'parent')} "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()[0]
        communities = conn.execute(
            f"SELECT {t.col(g, 'name')}, {t.col(g, 'path')} FROM {t.table(g)} "
            f"WHERE {t.col(g, 'level')} = 2 ORDER BY {t.col(g, 'path')}"
        ).fetchall()
        # A community of median size: its name is in about 1/141 of the addresses.
        sizes = sorted(
            (
                conn.execute(
                    f"SELECT count(*) FROM {t.table(c)} WHERE {t.col(c, 'grid_path')} LIKE %s",
                    (path + "%",),
                ).fetchone()[0],
                name,
            )
            for name, path in communities
        )
        community = sizes[len(sizes) // 2][1]
        number = conn.execute(
            f"SELECT {t.col(c, 'number')} FROM {t.table(c)} WHERE id = %s", (n // 3,)
        ).fetchone()[0]
    return {
        "token": token,
        "username": "bench-dispatcher",
        "root_path": root[1],
        "subdistrict": {"id": sub[0], "path": sub[1], "name": sub[2], "cases": counts[sub[1]]},
        "major": major,
        "statuses": ["dispatched", "in_progress"],
        "community": community,
        "number": number,
        "deep_offset": n // 2,
        "runs": ctx.pick(*RUNS),
        "cap_seconds": CAP_SECONDS[1] if ctx.quick else CAP_SECONDS[0],
    }


def _child(db: Any, spec: dict[str, Any]) -> dict[str, Any]:
    return run_child(
        "bench.caselist",
        spec,
        dict(db.env, CIVICGRID_PLAIN_STATIC="1", CIVICGRID_BENCH_DSN=db.dsn),
        timeout=3600,
    )


def _figures(ctx: Context, result: dict[str, Any], n: int) -> list[Figure]:
    import numpy as np

    figures = []
    for name, r in result["figures"].items():
        ours, base = np.array(r["ours_ms"]), np.array(r["baseline_ms"])
        p50, p95 = float(np.percentile(ours, 50)), float(np.percentile(ours, 95))
        b50, b95 = float(np.percentile(base, 50)), float(np.percentile(base, 95))
        label = f"list at {n:,}: {r['label']}"
        note = f"{len(ours)} runs, {r['rows']} rows, {r['queries']} queries"
        if p95 > TARGET_MS:
            ctx.note(
                f"caselist: {r['label']}: p95 {p95:.0f} ms (> {TARGET_MS:.0f} ms); slowest "
                f"statement {r['slowest_ms']:.0f} ms, plan in the JSON"
            )
        figures += [
            Figure(
                f"caselist.{name}.p50",
                f"{label} p50",
                p50,
                "ms",
                better="lower",
                baselines=[Baseline("hand-written SQL p50", b50)],
                target=TARGET_MS,
                note=note,
            ),
            Figure(
                f"caselist.{name}.p95",
                f"{label} p95",
                p95,
                "ms",
                better="lower",
                baselines=[Baseline("hand-written SQL p95", b95)],
                target=TARGET_MS,
            ),
        ]
        say(
            f"  {r['label']}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (SQL by hand p50 {b50:.1f} ms); "
            f"{r['queries']} queries, slowest {r['slowest_ms']:.1f} ms"
        )
    if result.get("deadline_check"):
        chk = result["deadline_check"]
        if chk["mismatches"]:
            ctx.note(
                f"caselist: {chk['mismatches']} of {chk['sampled']} generated deadlines differ "
                "from cases.workcalendar.due_at"
            )
    return figures


# -- the child: Django on the bench database ----------------------------------------------------
def _baseline_sql(spec: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """The hand-written SQL of each figure: the same rows, joins, order and page size."""
    from civicgrid.cases.models import Case, Category, Deadline
    from civicgrid.grids.models import Grid, HandlingUnit

    def tb(model: Any) -> str:
        return '"' + model._meta.db_table + '"'

    def col(model: Any, name: str) -> str:
        return '"' + model._meta.get_field(name).column + '"'

    C = Case
    select = (
        f"SELECT c.*, k.{col(Category, 'code')}, k.{col(Category, 'name')}, "
        f"p.{col(Category, 'name')}, g.{col(Grid, 'code')}, g.{col(Grid, 'name')}, "
        f"u.{col(HandlingUnit, 'code')}, u.{col(HandlingUnit, 'name')}, "
        f"s.{col(HandlingUnit, 'code')}, s.{col(HandlingUnit, 'name')} "
        f"FROM {tb(C)} c JOIN {tb(Category)} k ON k.id = c.{col(C, 'category')} "
        f"LEFT JOIN {tb(Category)} p ON p.id = k.{col(Category, 'parent')} "
        f"LEFT JOIN {tb(Grid)} g ON g.id = c.{col(C, 'grid')} "
        f"LEFT JOIN {tb(HandlingUnit)} u ON u.id = c.{col(C, 'lead_unit')} "
        f"LEFT JOIN {tb(HandlingUnit)} s ON s.id = c.{col(C, 'suggested_unit')} "
    )
    scope = f"(c.{col(C, 'grid_path')} LIKE %s OR c.{col(C, 'grid_path')} = '')"
    root = spec["root_path"] + "%"
    newest = f" ORDER BY c.{col(C, 'received_at')} DESC, c.id DESC LIMIT 51"
    cats = (
        f"c.{col(C, 'category')} IN (SELECT id FROM {tb(Category)} WHERE {col(Category, 'code')} "
        f"= %s OR {col(Category, 'parent')} = (SELECT id FROM {tb(Category)} "
        f"WHERE {col(Category, 'code')} = %s))"
    )
    like = "%" + spec["community"] + "%"
    # The same expressions as Django's icontains and the urgency annotation, so that an
    # index serves both alike.
    text = (
        f"(c.{col(C, 'number')} = %s OR c.{col(C, 'external_id')} = %s OR "
        f"upper(c.{col(C, 'description')}::text) LIKE upper(%s) OR "
        f"upper(c.{col(C, 'address')}::text) LIKE upper(%s) OR "
        f"upper(c.{col(C, 'title')}::text) LIKE upper(%s))"
    )
    started = (
        f"(SELECT d.{col(Deadline, 'started_at')} FROM {tb(Deadline)} d "
        f"WHERE d.{col(Deadline, 'case')} = c.id AND d.{col(Deadline, 'finished_at')} IS NULL "
        f"ORDER BY d.{col(Deadline, 'started_at')} DESC, d.id DESC LIMIT 1) AS stage_started_at "
    )
    urgent = (
        f" ORDER BY CASE WHEN c.{col(C, 'urgency')} = 'emergency' THEN 0 "
        f"WHEN c.{col(C, 'urgency')} = 'urgent' THEN 1 ELSE 2 END, "
        f"COALESCE(c.{col(C, 'due_at')}, '3000-01-01 00:00:00+00:00'::timestamptz), "
        f"c.{col(C, 'received_at')}, c.id LIMIT 31"
    )
    queue_select = select.replace("SELECT c.*,", "SELECT c.*, " + started + ",", 1)
    number = spec["number"]
    return {
        "newest": (select + f"WHERE {scope}" + newest, [root]),
        "filtered": (
            select + f"WHERE {scope} AND c.{col(C, 'status')} = ANY(%s) AND {cats} "
            f"AND c.{col(C, 'grid_path')} LIKE %s" + newest,
            [
                root,
                spec["statuses"],
                spec["major"],
                spec["major"],
                spec["subdistrict"]["path"] + "%",
            ],
        ),
        "text": (
            select + f"WHERE {scope} AND {text}" + newest,
            [root, spec["community"], spec["community"], like, like, like],
        ),
        "number": (
            select + f"WHERE {scope} AND {text}" + newest,
            [root, number, number, f"%{number}%", f"%{number}%", f"%{number}%"],
        ),
        "deep": (
            select + f"WHERE {scope} AND (c.{col(C, 'received_at')}, c.id) < (%s, %s)" + newest,
            [root, "DEEP_AT", "DEEP_ID"],
        ),
        "queue": (
            queue_select + f"WHERE {scope} AND c.{col(C, 'status')} = ANY(%s)" + urgent,
            [root, ["filed", "returned"]],
        ),
        "urgent_all": (queue_select + f"WHERE {scope}" + urgent, [root]),
    }


def child() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicgrid.settings")
    django.setup()
    import numpy as np
    import psycopg
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from civicgrid.accounts.models import User
    from civicgrid.cases import selectors, workcalendar
    from civicgrid.cases.models import Case, Deadline

    spec = json.loads(sys.stdin.read())
    user = User.objects.get(username=spec["username"])
    api = Client(HTTP_AUTHORIZATION="Bearer " + spec["token"])
    web = Client(HTTP_HX_REQUEST="true", HTTP_HX_TARGET="case-table")
    web.force_login(user)
    deep = Case.objects.order_by("-received_at", "-id")[spec["deep_offset"]]
    cursor = selectors.encode_cursor(deep)
    sub = spec["subdistrict"]
    status = "&".join(f"status={s}" for s in spec["statuses"])
    from urllib.parse import quote

    requests = {
        "newest": ("first page, newest first", api, "/api/v1/cases"),
        "filtered": (
            f"status+category+subdistrict ({sub['name']})",
            api,
            f"/api/v1/cases?{status}&category={spec['major']}&grid={sub['id']}",
        ),
        "text": (
            f"text search q={spec['community']}",
            api,
            f"/api/v1/cases?q={quote(spec['community'])}",
        ),
        "number": ("text search q=<case number>", api, f"/api/v1/cases?q={spec['number']}"),
        "deep": (
            f"deep cursor page (case {spec['deep_offset']:,} of the list)",
            api,
            f"/api/v1/cases?cursor={cursor}",
        ),
        "queue": (
            "dispatcher queue page, urgent first (filed+returned)",
            web,
            "/cases/?sort=urgent&status=filed&status=returned",
        ),
        "urgent_all": ("list page, urgent first, no filter", web, "/cases/?sort=urgent"),
    }
    sqls = _baseline_sql(spec)
    base = psycopg.connect(os.environ["CIVICGRID_BENCH_DSN"], autocommit=True)

    def bind(params: list[Any]) -> list[Any]:
        return [
            deep.received_at if p == "DEEP_AT" else deep.pk if p == "DEEP_ID" else p for p in params
        ]

    def ours(name: str) -> tuple[float, Any]:
        _, client, path = requests[name]
        t0 = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
        return elapsed, response

    def baseline(name: str) -> tuple[float, int]:
        sql, params = sqls[name]
        t0 = time.perf_counter()
        rows = base.execute(sql, bind(params)).fetchall()
        return (time.perf_counter() - t0) * 1000, len(rows)

    out: dict[str, Any] = {"figures": {}}
    # A first run of each warms caches, plans and buffers; its statements are kept
    # (their SQL and times), and its time sets how many runs fit in the time cap.
    runs, cap = spec["runs"], spec["cap_seconds"]
    captured_sql: dict[str, list[tuple[float, str]]] = {}
    allowed: dict[str, int] = {}
    responses: dict[str, Any] = {}
    for name in requests:
        with CaptureQueriesContext(connection) as captured:
            first, responses[name] = ours(name)
        captured_sql[name] = [
            (float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries
        ]
        second, _ = baseline(name)
        allowed[name] = max(MIN_RUNS, min(runs, int(cap * 1000 / max(first + second, 1.0))))
    timings: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in requests}
    for _ in range(runs):
        for name in requests:
            mine, theirs = timings[name]
            if len(mine) >= allowed[name]:
                continue
            a, _ = ours(name)
            b, _ = baseline(name)
            mine.append(a)
            theirs.append(b)
    for name, (label, _, path) in requests.items():
        statements = captured_sql[name]
        response = responses[name]
        slowest_ms, slowest = max(statements) if statements else (0.0, "")
        rows: Any
        if response["Content-Type"].startswith("application/json"):
            rows = len(response.json()["items"])
        else:
            rows = response.content.count(b"<tr") - 1
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest)
            plan = "\n".join(r[0] for r in cur.fetchall())
        sql, params = sqls[name]
        base_plan = "\n".join(
            r[0] for r in base.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, bind(params)).fetchall()
        )
        mine, theirs = timings[name]
        out["figures"][name] = {
            "label": label,
            "path": path,
            "ours_ms": [round(x, 3) for x in mine],
            "baseline_ms": [round(x, 3) for x in theirs],
            "rows": rows,
            "baseline_rows": baseline(name)[1],
            "queries": len(statements),
            "statements_ms": [round(ms, 2) for ms, _ in statements],
            "slowest_ms": slowest_ms,
            "slowest_sql": slowest[:4000],
            "plan": plan,
            "baseline_sql": sql,
            "baseline_plan": base_plan,
        }
    sample = list(Deadline.objects.order_by("?")[:1000])
    mismatches = sum(
        workcalendar.due_at(d.started_at, d.amount, d.unit) != d.due_at for d in sample
    )
    out["deadline_check"] = {"sampled": len(sample), "mismatches": mismatches}
    out["percentiles"] = {
        n: {
            "ours_p50": float(np.percentile(t[0], 50)),
            "baseline_p50": float(np.percentile(t[1], 50)),
        }
        for n, t in timings.items()
    }
    print("RESULT " + json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(child())
    print(__doc__)
