"""A year's leader dashboard and every evaluation at 1 and 10 million cases, against
a direct ``GROUP BY`` of the per-case facts.

At the first size (1,000,000; ``--quick`` 20,000) the run's database of generated
cases (``pg.cases_db``: casegen, a year before now; made by the case list when it
ran first, which only reads it) has its statistics facts from casegen
(``generate(…, facts=True)``; ``bench/casestats.py``'s SQL, as the rollup hooks
would compute them, for any case without one) and gets its rollups from
civicgrid's own rebuild (``civicgrid stats rebuild``, timed). For a next size
(10,000,000 in the default run, see ``SIZES``; ``--quick`` 200,000) the same database is grown by shifted copies of
the cases and their facts (``bench/grow.py``: no events or deadlines for the
copies) and civicgrid rebuilds the rollups over all of them (timed). Each phase's
wall time is printed. At each size a child process runs Django on the database and
times, in-process (server time: the Python call the page makes, its queries
included, no HTTP), the calls of the district's leader dashboard over the last 365
days of intake:

- KPI totals (``selectors.totals``), by category, by channel, by handling unit
  (``selectors.breakdown``), the trend by day (``selectors.trend``), the value of
  every level-3 grid (``selectors.grid_values``: the choropleth), and the six in a
  row (the whole dashboard);
- every evaluation: areas (the subdistricts, ``area_evaluation``), handling units
  (``unit_evaluation``), each position (``position_evaluation`` for call-takers,
  dispatchers, unit handlers, grid workers, supervisors) and the 12345 KPIs
  (``hotline_kpis``).

The baseline of each, at both sizes, is the same figure summed straight from the
per-case facts in one SQL statement (``casestats.fact_case_sql`` /
``fact_person_sql``: what a system without rollups would sum), then the same
formulas (``measures.measures``, ``evaluations.composite``). Every figure must be
equal to its baseline, measure by measure and row by row: the run fails otherwise.
At the first size the facts are in turn checked against the counters computed
straight from the cases, events and deadlines (``casestats.direct_case_sql`` by
unit, ``direct_person_sql`` by person: the former baseline, 35-55 s a statement at
1,000,000; above 200,000 cases over the period's last ``EVENTS_CHECK_DAYS`` days), and
up to 200,000 cases against ``stats/direct.py``. Ours is run
``RUNS`` times (p50 and p95), the baseline ``BASE_RUNS`` times, interleaved.

``--keep-db`` keeps a copy of the first size's database (facts and rollups done) as
``civicgrid_dashbench_<cases>`` and starts later runs from a copy of it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Baseline, Context, Figure, run_child, say  # noqa: E402

TARGET_MS = 200.0
#: The sizes: the first is generated (casegen), each later one grown from it by shifted
#: copies (``bench/grow.py``), so it must be a multiple of the first.
#: Growing to 10,000,000, rebuilding its rollups and measuring took 12 minutes of the
#: whole run's 25 on a quiet machine (docs/performance.md, "The 30-minute budget");
#: ``--dashboard-cases 1000000`` leaves it out.
SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (20_000, 200_000)
#: Runs of ours at the first size and at the grown ones (and with ``--quick``); passes
#: of the baseline at the first size and at the grown ones.
RUNS = (30, 10)
BASE_RUNS = (3, 1)
#: Up to this many cases the facts' baseline is also checked against stats/direct.py.
REFERENCE_MAX = 200_000
#: Above ``REFERENCE_MAX`` cases the events check covers the period's last days only
#: (eight weeks: the cases taken in then, open ones included, and every action on any
#: case in those days): about 15 % of the year's events, so about 25 s at 1,000,000
#: instead of 160 s for the whole year (still about 150,000 cases and 800,000 events).
EVENTS_CHECK_DAYS = 56
KEEP_PREFIX = "civicgrid_dashbench_"
#: casegen's phases that write the statistics facts (``generate(…, facts=True)``).
FACT_PHASES = ("copy casefacts", "copy personfacts")
ROLES = ("call_taker", "dispatcher", "unit_handler", "grid_worker", "supervisor")


def run(ctx: Context) -> list[Figure]:
    from bench import casegen

    casegen.setup_django_once()
    sizes = list(ctx.dashboard_cases or (QUICK_SIZES if ctx.quick else SIZES))
    first = sizes[0]
    bad = [n for n in sizes[1:] if n % first or n <= first]
    if bad:
        raise ValueError(
            f"dashboards: every size after the first must be a larger multiple of it "
            f"(grown by copies): {', '.join(map(str, bad))}"
        )
    details: dict[str, Any] = {"phases_seconds": {}}
    ctx.details["dashboards"] = details
    db, reused = _base_db(ctx, first, details)
    if db is None:
        return []
    figures: list[Figure] = []
    try:
        current = first
        for n in sizes:
            info: dict[str, Any] = {}
            details[str(n)] = info
            if n == first:
                figures += _prepare_first(ctx, db, n, info, details, reused)
            else:
                try:
                    figures += _grow_to(ctx, db, current, n, info, details)
                except RuntimeError as exc:
                    if "not attempted" not in str(exc):
                        raise
                    # Not enough disk: the figures of the smaller sizes stand, said so.
                    ctx.note(str(exc))
                    details["skipped"] = str(exc)
                    break
            current = n
            figures += _measure(ctx, db, n, info, first=n == first)
    finally:
        db.close()
    return figures


def _phase(details: dict[str, Any], n: int, name: str, seconds: float) -> None:
    details["phases_seconds"][f"{n:,} {name}"] = round(seconds, 1)
    say(f"  [{n:,}] {name}: {seconds:.0f} s")


def _base_db(ctx: Context, n: int, details: dict[str, Any]) -> tuple[Any, bool]:
    """The database with ``n`` generated cases: with ``--keep-db`` a copy of the kept
    one when there is one (facts and rollups done); otherwise the run's shared one
    (``pg.cases_db``: made by caselist at the same size, or now), which this module
    takes over (it grows it) and drops."""
    from bench.pg import CivicgridDB, admin_connect, cases_db

    kept = f"{KEEP_PREFIX}{n}"
    if ctx.keep_db:
        with admin_connect() as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (kept,))
            found = exists.fetchone() is not None
        if found:
            t0 = time.perf_counter()
            db = CivicgridDB.open(ctx, f"dashboards{n}", template=kept)
            _phase(details, n, f"copy of the kept database {kept}", time.perf_counter() - t0)
            return db, True
    shared = cases_db(ctx, n, take=True)
    if shared is None:
        return None, False
    db, made = shared
    details["casegen"] = made
    if made.get("made_by") != "dashboards":
        say(f"  {n:,} cases: the run's database of {made.get('made_by')} (casegen not repeated)")
    else:
        _phase(details, n, "casegen", made["seconds"])
    return db, False


def _prepare_first(
    ctx: Context, db: Any, n: int, info: dict[str, Any], details: dict[str, Any], reused: bool
) -> list[Figure]:
    from bench import casestats
    from bench.pg import copy_database

    made = details.get("casegen") or {}
    if made.get("case_facts"):
        # casegen wrote the facts with the cases (``generate(…, facts=True)``).
        copy = sum(v for k, v in made.get("phases", {}).items() if k in FACT_PHASES)
        info["facts_by_casegen"] = {
            "cases": made["case_facts"],
            "person_rows": made["person_facts"],
            "copy_seconds": round(copy, 1),
        }
        _phase(
            details, n, f"statistics facts of {made['case_facts']:,} cases (casegen's COPY)", copy
        )
    t0 = time.perf_counter()
    with db.connect() as conn:
        # Those of the cases without one (all, unless casegen wrote them). Two
        # connections on two cores: the SQL is CPU-bound.
        facts = casestats.write_facts(conn, jobs=2 if n >= 1_000_000 else 1, progress=say)
    info["facts"] = facts
    figures = []
    if facts["cases"]:
        _phase(
            details,
            n,
            f"statistics facts of {facts['cases']:,} cases (SQL from the events)",
            time.perf_counter() - t0,
        )
        figures.append(
            Figure(
                f"dashboards.{n}.facts_seconds",
                f"dashboards at {n:,}: case and person facts from the events (bench SQL, 2 connections)",
                facts["seconds"],
                "s",
                better="lower",
                note=f"{facts['cases']:,} case facts, {facts['person_rows']:,} person facts",
            )
        )
    with db.connect() as conn:
        has_rollups = conn.execute("SELECT EXISTS (SELECT 1 FROM stats_gridrollup)").fetchone()[0]
    if facts["cases"] or made.get("case_facts") or not has_rollups:
        figures.append(_rebuild(db, n, info, details))
    info["sizes_mb"] = _sizes(db)
    if ctx.keep_db and not reused:
        kept = f"{KEEP_PREFIX}{n}"
        copy_database(db.name, kept)
        say(f"  kept a copy as {kept} (--keep-db)")
    return figures


def _rebuild(db: Any, n: int, info: dict[str, Any], details: dict[str, Any]) -> Figure:
    """civicgrid's own rebuild of every rollup row of the facts' days, timed."""
    t0 = time.perf_counter()
    first, last = _fact_days(db)
    out = db.manage("stats", "rebuild", "--from", first, "--to", last, timeout=7200)
    seconds = time.perf_counter() - t0
    info["rollups_seconds"] = seconds
    info["rollups_output"] = out.strip()[-500:]
    _phase(details, n, f"civicgrid stats rebuild {first} … {last}", seconds)
    return Figure(
        f"dashboards.{n}.rebuild_seconds",
        f"dashboards at {n:,}: rollup rebuild of a year (civicgrid stats rebuild)",
        seconds,
        "s",
        better="lower",
        note=f"{first} … {last}: {out.strip().splitlines()[-1] if out.strip() else ''}",
    )


def _grow_to(
    ctx: Context, db: Any, current: int, n: int, info: dict[str, Any], details: dict[str, Any]
) -> list[Figure]:
    from bench import grow

    free = shutil.disk_usage("/").free / 2**30
    copies = n // current - 1
    with db.connect() as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**30
        copied = (  # a numeric: Decimal
            conn.execute(
                "SELECT sum(pg_relation_size(oid)) FROM pg_class WHERE relname IN "
                "('cases_case', 'stats_casefact', 'stats_personfact')"
            ).fetchone()[0]
        )
    copied = float(copied) / 2**30
    # The copies (the cases with their WAL), the rollups rebuilt (with theirs), a margin.
    need = copies * copied * 1.6 + 10
    say(
        f"  growing {current:,} to {n:,} cases: database {size:.1f} GB, {free:.0f} GB free "
        f"on /, about {need:.0f} GB needed"
    )
    if free < need:
        raise RuntimeError(
            f"dashboards: {free:.0f} GB free on / but growing to {n:,} cases needs about "
            f"{need:.0f} GB: not attempted"
        )
    grown = grow.grow(db.dsn, copies, progress=say)
    info["grow"] = grown
    _phase(
        details,
        n,
        f"{copies} shifted copies of the cases and their facts",
        grown["seconds"]["total"],
    )
    figures = [
        Figure(
            f"dashboards.{n}.grow_seconds",
            f"dashboards at {n:,}: {copies} shifted copies of the {current:,} cases and their facts (SQL)",
            grown["seconds"]["total"],
            "s",
            better="lower",
            note=(
                f"cases and facts only (no events, deadlines); by table {grown['seconds_by_table']}"
            ),
        ),
        _rebuild(db, n, info, details),
    ]
    info["sizes_mb"] = _sizes(db)
    return figures


def _measure(ctx: Context, db: Any, n: int, info: dict[str, Any], *, first: bool) -> list[Figure]:
    window = ctx.details["dashboards"].get("window")
    spec = {
        "window": window,
        "runs": RUNS[0] if first and not ctx.quick else RUNS[1],
        "base_runs": BASE_RUNS[0] if first else BASE_RUNS[1],
        "reference": first and n <= REFERENCE_MAX,  # direct.py reads the events
        # The events-based baseline (the counters straight from the events), once, at
        # the generated size: the facts it is checked against are those of every size.
        "events_check": first,
        "events_check_days": None if n <= REFERENCE_MAX else EVENTS_CHECK_DAYS,
    }
    t0 = time.perf_counter()
    result = _child(db, spec)
    info["child_seconds"] = time.perf_counter() - t0
    _phase(
        ctx.details["dashboards"],
        n,
        "measuring (ours, the baselines, the checks)",
        info["child_seconds"],
    )
    info.update({k: v for k, v in result.items() if k != "figures"})
    info["figures"] = result["figures"]
    ctx.details["dashboards"].setdefault("window", [result["start"], result["end"]])
    grown = (
        "" if first else "grown by shifted copies: cases and facts, events of the first size only"
    )
    return _figures(ctx, result, n, grown)


def _fact_days(db: Any) -> tuple[str, str]:
    with db.connect() as conn:
        first, last = conn.execute(
            "SELECT least(min(f.day), (SELECT min(p.day) FROM stats_personfact p)), "
            "greatest(max(f.day), (SELECT max(p.day) FROM stats_personfact p)) "
            "FROM stats_casefact f"
        ).fetchone()
    return first.isoformat(), last.isoformat()


def _sizes(db: Any) -> dict[str, float]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname IN ('cases_case', 'cases_caseevent', 'cases_deadline', "
            "'stats_casefact', 'stats_personfact', 'stats_gridrollup', 'stats_dimrollup', "
            "'stats_rollup', 'stats_personrollup')"
        ).fetchall()
    return {name: round(size / 2**20, 1) for name, size in rows}


def _child(db: Any, spec: dict[str, Any]) -> dict[str, Any]:
    return run_child(
        "bench.dashboards", spec, dict(db.env, CIVICGRID_BENCH_DSN=db.dsn), timeout=7200, echo=True
    )


def _figures(ctx: Context, result: dict[str, Any], n: int, grown: str = "") -> list[Figure]:
    import numpy as np

    figures = []
    period = f"{result['start']} … {result['end']}"
    for name, r in result["figures"].items():
        ours, base = np.array(r["ours_ms"]), np.array(r["baseline_ms"])
        p50, p95 = float(np.percentile(ours, 50)), float(np.percentile(ours, 95))
        b50 = float(np.percentile(base, 50))
        label = f"dashboards at {n:,}: {r['label']}"
        cpu = float(np.median(r.get("ours_cpu_ms") or [0.0]))
        note = (
            f"{len(ours)} runs, {r['queries']} queries, {r['rows']} rows, "
            f"Python CPU median {cpu:.1f} ms; baseline "
            f"{len(base)} runs{' (' + r['baseline_note'] + ')' if r['baseline_note'] else ''}; "
            f"period {period}" + (f"; {grown}" if grown else "")
        )
        if p95 > TARGET_MS:
            ctx.note(
                f"dashboards at {n:,}: {r['label']}: p95 {p95:.0f} ms (> {TARGET_MS:.0f} ms); "
                f"slowest statement {r['slowest_ms']:.0f} ms, plan in the JSON"
            )
        figures += [
            Figure(
                f"dashboards.{n}.{name}.p50",
                f"{label} p50",
                p50,
                "ms",
                better="lower",
                baselines=[Baseline("direct GROUP BY of the facts (SQL)", b50)],
                target=TARGET_MS,
                note=note,
            ),
            Figure(
                f"dashboards.{n}.{name}.p95",
                f"{label} p95",
                p95,
                "ms",
                better="lower",
                target=TARGET_MS,
            ),
        ]
        say(
            f"  {r['label']}: p50 {p50:.1f} ms, p95 {p95:.1f} ms; facts GROUP BY {b50:,.0f} ms "
            f"({b50 / p50 if p50 else 0:,.0f}×); {r['queries']} queries, equal: {r['equal']}"
        )
    check = result.get("events_check") or {}
    if check.get("ms"):
        equal = not check["differences"]
        figures.append(
            Figure(
                f"dashboards.{n}.events_equal",
                f"dashboards at {n:,}: facts equal to the counters straight from the events "
                f"(by unit; by person and role; days {' … '.join(check['days'])})",
                100.0 if equal else 0.0,
                "%",
                better="higher",
                target=100.0,
                baselines=[
                    Baseline(
                        "events-based direct GROUP BY (SQL), by unit + by person",
                        sum(check["ms"].values()),
                    )
                ],
                note=f"ms {check['ms']}, rows {check['rows']} (the baseline's value is its ms)",
            )
        )
        say(
            f"  events-based direct GROUP BY (by unit {check['ms']['unit']:,.0f} ms, by person "
            f"{check['ms']['people']:,.0f} ms; days {' … '.join(check['days'])}): "
            f"{'equal to' if equal else 'DIFFERENT from'} the facts' GROUP BY"
        )
    unequal = [r["label"] for r in result["figures"].values() if not r["equal"]]
    if result.get("reference_differences"):
        unequal.append("the SQL baseline against stats/direct.py")
    if check.get("differences"):
        unequal.append("the facts against the events-based counters")
    if unequal:
        raise RuntimeError(
            f"dashboards at {n:,}: figures differ from the direct GROUP BY: {', '.join(unequal)}; "
            f"first differences: {result['differences'][:5]}"
        )
    return figures


# -- the child: Django on the bench database ----------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _diff(
    label: str, ours: dict[Any, dict[str, Any]], base: dict[Any, dict[str, Any]]
) -> list[str]:
    """Differences between two tables of rows by key, over the baseline's columns."""
    out = []
    for key in sorted(set(ours) | set(base), key=str):
        a, b = ours.get(key), base.get(key)
        if a is None or b is None:
            out.append(f"{label}: row {key!r} only in {'the baseline' if a is None else 'ours'}")
            continue
        for column, value in b.items():
            if not _same(a.get(column), value):
                out.append(f"{label}: {key!r}.{column}: ours {a.get(column)!r}, direct {value!r}")
    return out


def child() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicgrid.settings")
    django.setup()
    import psycopg
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench import casestats
    from civicgrid.grids.models import Grid
    from civicgrid.stats import conf, evaluations, selectors
    from civicgrid.stats.counters import CASE_COUNTERS, PERSON_COUNTERS, zero_case
    from civicgrid.stats.measures import MEASURES, measures, ratio
    from civicgrid.stats.query import categories
    from civicgrid.stats.rollups import day_bounds

    spec = json.loads(sys.stdin.read())
    tz = settings.TIME_ZONE
    names = casestats._Names()
    base = psycopg.connect(os.environ["CIVICGRID_BENCH_DSN"], autocommit=True)
    scope = Grid.objects.filter(level=0).order_by("pk").first()
    assert scope is not None
    if spec.get("window"):  # the first size's (the copies of the grown ones stay within it)
        start, end = (dt.date.fromisoformat(d) for d in spec["window"])
    else:
        last = base.execute(
            "SELECT max(received_at) FROM cases_case"  # the newest case's local day
        ).fetchone()[0]
        end = last.astimezone(__import__("zoneinfo").ZoneInfo(tz)).date()
        start = end - dt.timedelta(days=364)
    low, high = day_bounds(start, end)
    if spec.get("events_check"):
        cal_last = base.execute(
            "SELECT greatest(max(closed_at), max(received_at)) FROM cases_case"
        ).fetchone()[0]
        casestats.calendar_table(
            base,
            start - dt.timedelta(days=2),
            cal_last.astimezone(__import__("zoneinfo").ZoneInfo(tz)).date() + dt.timedelta(days=2),
        )
    params = casestats._params(0, 0) | {
        "start": low,
        "end": high,
        "start_day": start,
        "end_day": end,
        "scope": scope.path + "%",
    }
    levels = dict(Grid.objects.values_list("pk", "path"))
    cats = categories()
    hotline = set(conf.get("hotline_channels"))
    measure_names = list(MEASURES)

    # Within one pass of the baselines a statement runs once; a figure that needs a
    # statement another already ran (units: by unit; 12345: by channel; each role: the
    # people) is charged its time, so every baseline costs what it would alone.
    cache: dict[tuple[str, ...], tuple[list[dict[str, Any]], float]] = {}
    charged: list[float] = []
    executed: list[float] = []

    def fetch(sql: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        cur = base.execute(sql, values)
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def statement(key: tuple[str, ...], sql: str) -> list[dict[str, Any]]:
        if key not in cache:
            t0 = time.perf_counter()
            rows = fetch(sql, params)
            ms = (time.perf_counter() - t0) * 1000
            executed.append(ms)
            cache[key] = (rows, ms)
        rows, ms = cache[key]
        charged.append(ms)
        return rows

    def direct_cases(by: list[str]) -> list[dict[str, Any]]:
        return statement(tuple(by), casestats.fact_case_sql(names, by))

    def timed_baseline(call: Callable[[], Any]) -> tuple[float, Any]:
        charged.clear()
        executed.clear()
        t0 = time.perf_counter()
        result = call()
        python_ms = (time.perf_counter() - t0) * 1000 - sum(executed)
        return sum(charged) + python_ms, result

    def summed(
        rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]
    ) -> dict[Any, dict[str, int]]:
        out: dict[Any, dict[str, int]] = {}
        for row in rows:
            k = key(row)
            if k is None:
                continue
            slot = out.setdefault(k, zero_case())
            for c in CASE_COUNTERS:
                slot[c] += int(row[c] or 0)
        return out

    def measured(table: dict[Any, dict[str, int]]) -> dict[Any, dict[str, Any]]:
        return {k: measures(c) for k, c in table.items()}

    def keyed(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
        return {r[key]: {m: r[m] for m in measure_names if m in r} for r in rows}

    # -- ours: the calls of the pages -------------------------------------------------------
    kw = {"scope": scope, "start": start, "end": end}
    ours_calls: dict[str, Callable[[], Any]] = {
        "totals": lambda: selectors.totals(**kw),
        "by_category": lambda: selectors.breakdown(**kw, by="category"),
        "by_channel": lambda: selectors.breakdown(**kw, by="channel"),
        "by_unit": lambda: selectors.breakdown(**kw, by="unit"),
        "trend_day": lambda: selectors.trend(**kw, grain="day"),
        "grid_values": lambda: selectors.grid_values(parent=scope, start=start, end=end, level=3),
    }
    dashboard_parts = list(ours_calls)
    ours_calls["dashboard"] = lambda: [ours_calls[p]() for p in dashboard_parts]
    ours_calls["eval_areas"] = lambda: evaluations.area_evaluation(
        parent=scope, start=start, end=end
    )
    ours_calls["eval_units"] = lambda: evaluations.unit_evaluation(**kw)
    for role in ROLES:
        ours_calls[f"eval_{role}"] = lambda role=role: evaluations.position_evaluation(
            **kw, role=role
        )
    ours_calls["eval_hotline"] = lambda: evaluations.hotline_kpis(**kw)

    # -- the baselines: the same figures from one direct GROUP BY each ----------------------------
    def node_of(level: int) -> Callable[[dict[str, Any]], Any]:
        return lambda r: r[f"node{level}"] or None

    def b_totals() -> Any:
        return measures(summed(direct_cases([]), lambda r: 0).get(0, zero_case()))

    def b_by(dim: str) -> Callable[[], Any]:
        def run_() -> Any:
            rows = direct_cases([dim])
            if dim == "category":
                return measured(summed(rows, lambda r: cats[r["category"]].code))
            return measured(summed(rows, lambda r: r[dim]))

        return run_

    def b_trend() -> Any:
        return measured(summed(direct_cases(["day"]), lambda r: r["day"]))

    def b_grids(level: int) -> Callable[[], Any]:
        return lambda: measured(summed(direct_cases([f"node{level}"]), node_of(level)))

    def scored(rows: dict[Any, dict[str, Any]], weights: dict[str, float]) -> Any:
        for row in rows.values():
            row["score"] = evaluations.composite(row, weights)
        return rows

    def b_areas() -> Any:
        rows = b_grids(1)()
        for row in rows.values():
            row["inspector_found_rate"] = (
                None if row["supervision_rate"] is None else 1 - row["supervision_rate"]
            )
        return scored(rows, conf.get("area_weights"))

    def b_units() -> Any:
        rows = {k: v for k, v in b_by("unit")().items() if k}
        busiest = max((r["received"] for r in rows.values()), default=0)
        for row in rows.values():
            row["volume"] = ratio(row["received"], busiest)
            row["ontime_handle_rate"] = row["handle_ontime_rate"]
            row["no_rework_rate"] = None if row["rework_rate"] is None else 1 - row["rework_rate"]
        return scored(rows, conf.get("unit_weights"))

    def b_people() -> Any:
        out: dict[str, dict[int, dict[str, Any]]] = {}
        for r in statement(("people",), casestats.fact_person_sql(names)):
            counters = {c: int(r[c] or 0) for c in PERSON_COUNTERS}
            if not any(counters.values()):
                continue
            slot = out.setdefault(r["role"], {}).setdefault(
                r["user"], dict.fromkeys(PERSON_COUNTERS, 0)
            )
            for c in PERSON_COUNTERS:
                slot[c] += counters[c]
        for role, people in out.items():
            weights = conf.get("position_weights").get(role, {})
            for user, c in people.items():
                people[user] = {**c, **evaluations.person_rates(c)}
                people[user]["score"] = evaluations.composite(people[user], weights)
        return out

    def b_hotline() -> Any:
        table = summed(direct_cases(["channel"]), lambda r: 0 if r["channel"] in hotline else None)
        m = measures(table.get(0, zero_case()))
        return {k: m[k] for k in evaluations.HOTLINE_KPIS}

    base_calls: dict[str, Callable[[], Any]] = {
        "totals": b_totals,
        "by_category": b_by("category"),
        "by_channel": b_by("channel"),
        "by_unit": b_by("unit"),
        "trend_day": b_trend,
        "grid_values": b_grids(3),
        "eval_areas": b_areas,
        "eval_units": b_units,
        "eval_people": b_people,
        "eval_hotline": b_hotline,
    }
    # Figures whose baseline is another's (the same statement): its times are reused.
    same_baseline = {f"eval_{role}": "eval_people" for role in ROLES}
    notes = {f"eval_{role}": "one statement for every role" for role in ROLES}
    notes["eval_units"] = "the statement by unit"
    notes["eval_hotline"] = "the statement by channel"
    notes["dashboard"] = "the sum of its six baselines"
    labels = {
        "totals": "KPI totals (totals)",
        "by_category": "by category (breakdown)",
        "by_channel": "by channel (breakdown)",
        "by_unit": "by handling unit (breakdown)",
        "trend_day": "trend by day, 365 days (trend)",
        "grid_values": "every level-3 grid (grid_values, choropleth)",
        "dashboard": "leader dashboard: the six above in a row",
        "eval_areas": "evaluation: areas (subdistricts)",
        "eval_units": "evaluation: handling units",
        "eval_call_taker": "evaluation: positions, call-takers",
        "eval_dispatcher": "evaluation: positions, dispatchers",
        "eval_unit_handler": "evaluation: positions, unit handlers",
        "eval_grid_worker": "evaluation: positions, grid workers",
        "eval_supervisor": "evaluation: positions, supervisors",
        "eval_hotline": "evaluation: 12345 KPIs",
    }

    def log(message: str) -> None:
        print("  " + message, file=sys.stderr, flush=True)

    # First runs: warm the caches, keep the statements, check the figures.
    captured: dict[str, list[tuple[float, str]]] = {}
    first: dict[str, Any] = {}
    for name, call in ours_calls.items():
        with CaptureQueriesContext(connection) as cq:
            first[name] = call()
        captured[name] = [(float(x["time"]) * 1000, x["sql"]) for x in cq.captured_queries]
    base_ms: dict[str, list[float]] = {k: [] for k in base_calls}
    base_first: dict[str, Any] = {}
    base_started = time.perf_counter()
    for name, call in base_calls.items():
        ms, base_first[name] = timed_baseline(call)
        base_ms[name].append(ms)
        log(f"direct GROUP BY {name}: {ms:,.0f} ms")
    events_check: dict[str, Any] = {}
    if spec.get("events_check"):
        # The facts against the events: the same counters computed straight from the
        # cases, events and deadlines (the SQL that wrote the facts, grouped), by unit
        # (every case counter of every case of the year) and by person and role.
        checks = {
            "unit": (casestats.direct_case_sql(names, tz, ["unit"]), ("unit",), ["unit"]),
            "people": (casestats.direct_person_sql(names, tz), ("people",), ["user", "role"]),
        }
        events_check = {"ms": {}, "rows": {}, "differences": [], "days": [start, end]}
        check_params = params
        if spec.get("events_check_days"):
            # The period's last days only (EVENTS_CHECK_DAYS): the facts' side is then
            # summed again over those days.
            first_day = max(start, end - dt.timedelta(days=spec["events_check_days"] - 1))
            check_low, _high = day_bounds(first_day, end)
            check_params = params | {"start": check_low, "start_day": first_day}
            events_check["days"] = [first_day, end]
            facts_sql = {
                "unit": casestats.fact_case_sql(names, ["unit"]),
                "people": casestats.fact_person_sql(names),
            }
        log(f"events check over {events_check['days'][0]} … {end}")

        def by_key(
            found: list[dict[str, Any]], keys: list[str], counters: list[str]
        ) -> dict[Any, dict[str, int]]:
            out = {}
            for r in found:
                values = {c: int(r[c] or 0) for c in counters if c not in keys}
                if any(values.values()):
                    out[tuple(r[c] for c in keys)] = values
            return out

        for what, (sql, key, columns) in checks.items():
            if check_params is params:
                facts_rows = cache[key][0]
            else:
                facts_rows = fetch(facts_sql[what], check_params)
            t0 = time.perf_counter()
            ev_rows = fetch(sql, check_params)
            events_check["ms"][what] = (time.perf_counter() - t0) * 1000
            ev_cols = list(ev_rows[0]) if ev_rows else []  # no rows: failed below
            from_events = by_key(ev_rows, columns, ev_cols)
            from_facts = by_key(facts_rows, columns, ev_cols)
            events_check["rows"][what] = len(from_events)
            events_check["differences"] += _diff(f"events {what}", from_facts, from_events)
            log(
                f"events-based direct GROUP BY by {what}: {events_check['ms'][what]:,.0f} ms, "
                f"{len(from_events)} rows, {len(events_check['differences'])} differences"
            )
        if not events_check["rows"]["unit"] or not events_check["rows"]["people"]:
            events_check["differences"].append("events check: no rows")
    cache.clear()
    # More passes only while the baselines stay within their time budget.
    base_passes = spec["base_runs"]
    if time.perf_counter() - base_started > spec.get("base_cap_seconds", 300):
        base_passes = 1

    differences: dict[str, list[str]] = {}
    differences["totals"] = _diff("totals", {0: first["totals"]}, {0: base_first["totals"]})
    for name, key in (("by_category", "key"), ("by_channel", "key"), ("by_unit", "key")):
        differences[name] = _diff(name, keyed(first[name], key), base_first[name])
    differences["trend_day"] = _diff(
        "trend_day",
        {k: v for k, v in keyed(first["trend_day"], "period").items() if v["received"]},
        base_first["trend_day"],
    )
    differences["grid_values"] = _diff(
        "grid_values",
        {k: v for k, v in keyed(first["grid_values"], "grid_id").items() if v["received"]},
        base_first["grid_values"],
    )
    differences["dashboard"] = [d for p in dashboard_parts for d in differences[p]]
    areas = {
        r["grid_id"]: {
            **{m: r[m] for m in measure_names},
            "inspector_found_rate": r["inspector_found_rate"],
            "score": r["score"],
        }
        for r in first["eval_areas"]
        if r["received"]
    }
    differences["eval_areas"] = _diff("eval_areas", areas, base_first["eval_areas"])
    units = {r["unit_id"]: dict(r) for r in first["eval_units"]}
    differences["eval_units"] = _diff("eval_units", units, base_first["eval_units"])
    for role in ROLES:
        people = {r["user_id"]: dict(r) for r in first[f"eval_{role}"]}
        differences[f"eval_{role}"] = _diff(
            f"eval_{role}", people, base_first["eval_people"].get(role, {})
        )
    differences["eval_hotline"] = _diff(
        "eval_hotline", {0: first["eval_hotline"]}, {0: base_first["eval_hotline"]}
    )
    if spec.get("reference"):
        # The SQL baseline against civicgrid's own reference, stats/direct.py (whose
        # per-case Python does not scale to millions of cases): small sizes only.
        from civicgrid.stats import direct

        ref = {k: measures(c) for k, c in direct.case_counters(**kw, by=("unit",)).items()}
        differences["reference"] = _diff(
            "reference by unit", {k[0]: v for k, v in ref.items()}, base_first["by_unit"]
        )
        total = direct.case_counters(**kw).get((), zero_case())
        differences["reference"] += _diff(
            "reference totals", {0: measures(total)}, {0: base_first["totals"]}
        )
        people: dict[tuple[str, int], dict[str, int]] = {}
        for (_day, user, role), c in direct.person_counters(**kw).items():
            slot = people.setdefault((role, user), dict.fromkeys(PERSON_COUNTERS, 0))
            for counter in PERSON_COUNTERS:
                slot[counter] += c[counter]
        mine = {
            (role, user): {c: row[c] for c in PERSON_COUNTERS}
            for role, rows in base_first["eval_people"].items()
            for user, row in rows.items()
        }
        differences["reference"] += _diff("reference people", people, mine)
        log(f"reference (stats/direct.py): {len(differences['reference'])} differences")
    # Nothing compared is no check: every table must have rows.
    empty = [n for n in ("by_category", "by_unit", "trend_day", "grid_values") if not first[n]]
    empty += [f"eval_{r}" for r in ROLES if not first[f"eval_{r}"]]
    for n in empty:
        differences.setdefault(n, []).append(f"{n}: no rows")

    # Timed runs: ours RUNS times, the baselines BASE_RUNS times in between.
    ours_ms: dict[str, list[float]] = {k: [] for k in ours_calls}
    # This process's CPU (Python, psycopg; not the server's): less sensitive to load.
    ours_cpu: dict[str, list[float]] = {k: [] for k in ours_calls}
    for i in range(spec["runs"]):
        for name, call in ours_calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            ours_ms[name].append((time.perf_counter() - t0) * 1000)
            ours_cpu[name].append((time.process_time() - c0) * 1000)
        if i % max(1, spec["runs"] // max(1, base_passes - 1)) == 0:
            for name, call in base_calls.items():
                if len(base_ms[name]) < base_passes:
                    base_ms[name].append(timed_baseline(call)[0])
            cache.clear()
    for name in base_calls:
        while len(base_ms[name]) < base_passes:
            base_ms[name].append(timed_baseline(base_calls[name])[0])
        cache.clear()

    out: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "figures": {}}
    out["scope"] = {"id": scope.pk, "path": scope.path, "name": scope.name}
    out["grids"] = len(levels)
    all_differences: list[str] = []
    for name in ours_calls:
        statements = captured[name]
        slowest_ms, slowest = max(statements) if statements else (0.0, "")
        plan = ""
        if slowest and name != "dashboard":
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest)
                plan = "\n".join(r[0] for r in cur.fetchall())
        if name == "dashboard":
            baseline = [
                sum(values) for values in zip(*(base_ms[p] for p in dashboard_parts), strict=False)
            ]
        else:
            baseline = base_ms[same_baseline.get(name, name)]
        result = first[name]
        rows = len(result) if isinstance(result, list) else 1
        diffs = differences.get(name, [])
        all_differences += diffs
        out["figures"][name] = {
            "label": labels[name],
            "ours_ms": [round(x, 3) for x in ours_ms[name]],
            "ours_cpu_ms": [round(x, 3) for x in ours_cpu[name]],
            "baseline_ms": [round(x, 1) for x in baseline],
            "baseline_note": notes.get(name, ""),
            "rows": rows,
            "queries": len(statements),
            "statements_ms": [round(ms, 2) for ms, _ in statements],
            "slowest_ms": slowest_ms,
            "slowest_sql": slowest[:4000],
            "plan": plan,
            "equal": not diffs,
            "differences": diffs[:20],
        }
    all_differences += differences.get("reference", [])
    all_differences += events_check.get("differences", [])
    if events_check:
        out["events_check"] = events_check | {
            "differences": events_check["differences"][:20],
            "days": [d.isoformat() for d in events_check["days"]],
        }
    out["reference_checked"] = bool(spec.get("reference"))
    out["reference_differences"] = differences.get("reference", [])[:20]
    out["differences"] = all_differences[:50]
    print("RESULT " + json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(child())
    print(__doc__)
