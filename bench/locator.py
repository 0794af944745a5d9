"""Point locator: batch and single-call speed on the demo district and a 100,000-grid city.

Baselines, measured in the same run on the same polygons and points:
- PostGIS: ``ST_Contains`` against a GiST-indexed table, the deepest level per
  point; one join for the batch, one prepared query per call for single points.
- brute force: ``shapely.contains_xy`` of one point against every (prepared)
  polygon, timed on a sample and extrapolated.
The locator and PostGIS must agree on the deepest grid of every sampled point.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import shapely

from bench import grids
from bench.common import (
    Baseline,
    Context,
    Figure,
    migrate,
    per_call_ns,
    rss_mb,
    say,
    setup_django,
    timed,
    us,
)
from bench.pg import PostGIS

BATCH_TARGET = 200_000  # points/s (the target)
SINGLE_TARGET = 20.0  # µs per call
EDGE_TOLERANCE = 1e-9  # degrees (~0.1 mm): a point this close to a boundary is "on the edge"


def run(ctx: Context) -> list[Figure]:
    setup_django()
    figures: list[Figure] = []
    pg = PostGIS.open(ctx)
    if pg is not None:
        ctx.details["postgis"] = pg.info
    else:
        ctx.note("without PostGIS there is no agreement check; brute force checks a sample instead")
    try:
        try:
            t0 = time.perf_counter()
            demo = grids.demo()
            say(f"  demo district generated in {time.perf_counter() - t0:.1f} s")
        except ImportError as exc:
            demo = None
            ctx.note(f"demo district figures skipped: civicgrid.demo.district unavailable ({exc})")
        if demo is not None:
            figures += _bench_set(
                ctx, pg, demo, "demo", margin=0.0, brute_sample=ctx.pick(2000, 400)
            )
            figures += _bench_public_path(ctx, pg, demo)
        t0 = time.perf_counter()
        synth = grids.synthetic(seed=ctx.seed)
        say(f"  synthetic city generated in {time.perf_counter() - t0:.1f} s")
        figures += _bench_set(
            ctx, pg, synth, "synthetic", margin=0.05, brute_sample=ctx.pick(200, 40)
        )
        if not ctx.quick:
            figures.append(_bench_db_build(ctx, synth))
    finally:
        if pg is not None:
            pg.close()
    return figures


def _describe(gs: grids.GridSet) -> dict[str, Any]:
    return {
        "grids": len(gs),
        "levels": gs.level_counts(),
        "vertices": gs.vertices(),
        "bounds": gs.bounds,
    }


def _bench_set(
    ctx: Context,
    pg: PostGIS | None,
    gs: grids.GridSet,
    tag: str,
    *,
    margin: float,
    brute_sample: int,
) -> list[Figure]:
    label = f"{tag} ({gs.level_counts().get(3, 0):,} grids)"
    info = _describe(gs)
    details: dict[str, Any] = {"set": info}
    ctx.details[f"locator.{tag}"] = details
    say(
        f"\n[{label}] {info['grids']:,} polygons, levels {info['levels']}, vertices {info['vertices']}"
    )

    rss_before = rss_mb()
    build_s, loc = timed(gs.locator)
    rss_built = rss_mb()
    rng = ctx.rng(len(gs))
    n = ctx.pick(1_000_000, 200_000)
    xs, ys = gs.random_points(n, rng, margin=margin)

    # -- batch -------------------------------------------------------------------------
    # The first run also pays GEOS's lazy set-up of each prepared polygon it
    # touches; the best of three is the steady state a long-lived process sees.
    runs_s: list[float] = []

    def batch() -> np.ndarray:
        t0 = time.perf_counter()
        out = loc.indices_at(xs, ys)
        runs_s.append(time.perf_counter() - t0)
        return out

    batch_s, ours = timed(batch, repeats=ctx.pick(3, 2))
    batch_pps = n / batch_s
    inside = ours >= 0
    details["batch"] = {
        "points": n,
        "seconds": batch_s,
        "runs_s": runs_s,
        "inside_share": float(inside.mean()),
        "at_level_3_share": float((gs.levels[ours[inside]] == 3).mean()) if inside.any() else 0.0,
    }
    details["rss_mb"] = {"before_build": rss_before, "built": rss_built, "after_batch": rss_mb()}
    say(f"  batch: {n:,} points in {batch_s:.3f} s, {inside.mean():.1%} inside")

    # -- single calls --------------------------------------------------------------------
    m = ctx.pick(20_000, 5_000)
    calls = list(zip(xs[:m].tolist(), ys[:m].tolist(), strict=True))
    single_ns = per_call_ns(loc.locate_storage, calls, rounds=ctx.pick(3, 1))
    details["single"] = {"calls": m, "median_us": us(single_ns, 50), "p95_us": us(single_ns, 95)}

    # -- brute force ---------------------------------------------------------------------
    geoms, levels = loc.geoms, loc.levels  # the same prepared polygons

    def brute(x: float, y: float) -> int:
        hit = np.flatnonzero(shapely.contains_xy(geoms, x, y))
        return int(hit[levels[hit].argmax()]) if len(hit) else -1

    brute_ns = per_call_ns(
        brute, calls[:brute_sample], warmup=ctx.pick(20, 10), rounds=ctx.pick(3, 1)
    )
    brute_pps = 1e9 / float(brute_ns.mean())
    brute_agree = [brute(x, y) for x, y in calls[:brute_sample]] == ours[:brute_sample].tolist()
    details["brute_force"] = {"sample": brute_sample, "mean_us": float(brute_ns.mean()) / 1000}
    if not brute_agree:
        ctx.note(f"{tag}: brute force and the locator disagree on the sample")

    # -- PostGIS -------------------------------------------------------------------------
    pg_batch: list[Baseline] = []
    pg_median: list[Baseline] = []
    pg_p95: list[Baseline] = []
    agreement: Figure | None = None
    if pg is not None:
        polygons, points = f"{tag}_grid", f"{tag}_point"
        k = min(n, ctx.pick(100_000, 20_000))
        load = pg.load_polygons(polygons, gs.levels, gs.geoms, gs.leaf)
        load["points_copy_s"] = pg.load_points(points, xs[:k], ys[:k])
        # Two runs, the faster counts: generous to PostGIS (warm buffers).
        runs = [pg.deepest_batch(polygons, points, k) for _ in range(ctx.pick(2, 1))]
        pg_s = min(r[0] for r in runs)
        theirs = runs[-1][1]
        pg_batch.append(
            Baseline("PostGIS ST_Contains join", k / pg_s, note=f"{k:,} points preloaded, GiST")
        )
        p = ctx.pick(3000, 500)
        single = _pg_single(pg, polygons, calls[:p], ctx.pick(3, 1))
        pg_median.append(Baseline(single["name"], single["median_us"]))
        pg_p95.append(Baseline(single["name"], single["p95_us"]))
        details["postgis"] = {
            **load,
            "batch_points": k,
            "batch_s": pg_s,
            "single": single,
        }
        agreement = _agreement(ctx, tag, label, gs, xs[:k], ys[:k], ours[:k], theirs)
        details["agreement"] = agreement.value
        say(
            f"  PostGIS: COPY {load['copy_s']:.1f} s, GiST {load['index_s']:.1f} s; "
            f"join of {k:,} points {pg_s:.2f} s"
        )

    brute_name = f"brute force ({brute_sample} pts)"
    figures = [
        Figure(
            f"locator.{tag}.build",
            f"{label}: build index (Locator())",
            build_s,
            "s",
            better="lower",
        ),
        Figure(
            f"locator.{tag}.batch",
            f"{label}: batch indices_at",
            batch_pps,
            "points/s",
            baselines=[*pg_batch, Baseline(brute_name, brute_pps)],
            target=BATCH_TARGET,
            note=f"{n:,} uniform points over the bounding box; {inside.mean():.1%} inside",
        ),
        Figure(
            f"locator.{tag}.single_median",
            f"{label}: locate_storage median",
            us(single_ns, 50),
            "µs",
            better="lower",
            baselines=[*pg_median, Baseline(brute_name, us(brute_ns, 50))],
            target=SINGLE_TARGET,
        ),
        Figure(
            f"locator.{tag}.single_p95",
            f"{label}: locate_storage p95",
            us(single_ns, 95),
            "µs",
            better="lower",
            baselines=pg_p95,
        ),
    ]
    if agreement is not None:
        figures.append(agreement)
    return figures


def _pg_single(
    pg: PostGIS, polygons: str, calls: list[tuple[float, float]], rounds: int
) -> dict[str, Any]:
    """Per-call µs of the PostGIS single-point query: pinned to one core (the
    baseline), as scheduled by the OS, and the bare round trip of ``SELECT 1``."""
    query = pg.single_query(polygons)
    with pg.same_core() as pinned:
        ns = per_call_ns(query, calls, warmup=50, rounds=rounds)
        trip = per_call_ns(pg.round_trip(), [()] * len(calls), warmup=50, rounds=rounds)
    free = per_call_ns(query, calls, warmup=50, rounds=rounds)
    return {
        "name": "PostGIS query, same core" if pinned else "PostGIS query/call",
        "calls": len(calls),
        "pinned": pinned,
        "median_us": us(ns, 50),
        "p95_us": us(ns, 95),
        "round_trip_median_us": us(trip, 50),
        "os_scheduled_median_us": us(free, 50),
        "os_scheduled_p95_us": us(free, 95),
    }


def _agreement(
    ctx: Context,
    tag: str,
    label: str,
    gs: grids.GridSet,
    xs: np.ndarray,
    ys: np.ndarray,
    ours: np.ndarray,
    theirs: np.ndarray,
) -> Figure:
    """Share of points where both give the same deepest grid, edge points left out."""
    differ = np.flatnonzero(ours != theirs)
    on_edge = 0
    for i in differ.tolist():
        point = shapely.Point(xs[i], ys[i])
        near = [gs.geoms[j] for j in (ours[i], theirs[i]) if j >= 0]
        if any(shapely.distance(g.boundary, point) < EDGE_TOLERANCE for g in near):
            on_edge += 1
    counted = len(xs) - on_edge
    agree = (counted - (len(differ) - on_edge)) / counted if counted else 1.0
    if len(differ) - on_edge:
        ctx.note(
            f"{tag}: locator and PostGIS disagree on {len(differ) - on_edge} points "
            f"(first: {xs[differ[0]]:.9f}, {ys[differ[0]]:.9f})"
        )
    return Figure(
        f"locator.{tag}.agreement",
        f"{label}: same deepest grid as PostGIS",
        100.0 * agree,
        "%",
        target=100.0,
        note=f"{len(xs):,} points, {on_edge} on a shared edge left out",
    )


def _bench_public_path(ctx: Context, pg: PostGIS | None, gs: grids.GridSet) -> list[Figure]:
    """``locate()`` through the per-process cache, on grids saved with ``save_grids``."""
    from civicgrid.grids import crs, services
    from civicgrid.grids import locator as grid_locator

    migrate()
    t0 = time.perf_counter()
    services.save_grids(items=gs.items or [])
    saved_s = time.perf_counter() - t0
    grid_locator.invalidate()
    cold_s, loc = timed(grid_locator.get_locator)
    direct = gs.locator()
    label = f"demo ({gs.level_counts().get(3, 0):,} grids)"

    rng = ctx.rng(7)
    m = ctx.pick(20_000, 5_000)
    xs, ys = gs.random_points(m, rng)
    calls = [(x, y, "wgs84") for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]
    public_ns = per_call_ns(grid_locator.locate, calls, rounds=ctx.pick(3, 1))
    direct_ns = per_call_ns(direct.locate_storage, [c[:2] for c in calls], rounds=ctx.pick(3, 1))

    def code(where: Any) -> str | None:
        return where.grid.code if where.grid else None

    mismatched = sum(
        code(grid_locator.locate(x, y)) != code(direct.locate_storage(x, y))
        for x, y, _ in calls[:2000]
    )
    if mismatched:
        ctx.note(f"demo: locate() and the directly built Locator disagree on {mismatched} points")

    g = ctx.pick(5_000, 1_000)
    gcj = [crs.from_storage(x, y, "gcj02") for x, y, _ in calls[:g]]
    gcj_ns = per_call_ns(
        grid_locator.locate, [(x, y, "gcj02") for x, y in gcj], rounds=ctx.pick(3, 1)
    )

    k = ctx.pick(100_000, 20_000)
    bx, by = gs.random_points(k, ctx.rng(8))
    gcj_coords = np.array([crs.from_storage(x, y, "gcj02") for x, y in zip(bx, by, strict=True)])
    wgs_s, _ = timed(lambda: loc.grid_ids_at(bx, by), repeats=3)

    def gcj_batch() -> np.ndarray:
        storage = crs.array_to_storage(gcj_coords, "gcj02")
        return loc.grid_ids_at(storage[:, 0], storage[:, 1])

    gcj_s, _ = timed(gcj_batch, repeats=2)
    ctx.details["locator.demo.public"] = {
        "save_grids_s": saved_s,
        "recheck_seconds": _recheck(),
        "calls": m,
        "mismatched": mismatched,
        "gcj_calls": g,
        "gcj_batch_points": k,
    }
    pg_baseline = []
    if pg is not None:
        single = _pg_single(
            pg, "demo_grid", [c[:2] for c in calls[: ctx.pick(3000, 500)]], ctx.pick(3, 1)
        )
        pg_baseline.append(Baseline(single["name"], single["median_us"]))
    return [
        Figure(
            "locator.demo.build_from_db",
            f"{label}: build from DB (get_locator, cold)",
            cold_s,
            "s",
            better="lower",
        ),
        Figure(
            "locator.demo.locate_median",
            f"{label}: locate(wgs84) median",
            us(public_ns, 50),
            "µs",
            better="lower",
            baselines=[*pg_baseline, Baseline("Locator.locate_storage", us(direct_ns, 50))],
            target=SINGLE_TARGET,
            note="the public path: CRS check + per-process cache check + lookup",
        ),
        Figure(
            "locator.demo.locate_p95",
            f"{label}: locate(wgs84) p95",
            us(public_ns, 95),
            "µs",
            better="lower",
            baselines=[Baseline("Locator.locate_storage", us(direct_ns, 95))],
        ),
        Figure(
            "locator.demo.locate_gcj02_median",
            f"{label}: locate(gcj02) median",
            us(gcj_ns, 50),
            "µs",
            better="lower",
            baselines=[Baseline("locate(wgs84)", us(public_ns, 50))],
            note="GCJ-02 → storage by prcoords' iterative inverse, per point",
        ),
        Figure(
            "locator.demo.batch_gcj02",
            f"{label}: batch gcj02 (array_to_storage + grid_ids_at)",
            k / gcj_s,
            "points/s",
            baselines=[Baseline("same, wgs84 input", k / wgs_s)],
            note="crs.array_to_storage converts GCJ-02 one point at a time",
        ),
    ]


def _bench_db_build(ctx: Context, gs: grids.GridSet) -> Figure:
    """What a grid edit costs every process: ``get_locator()`` rebuilding from the DB.

    The synthetic rows are bulk-inserted (no validation: it is checked by
    construction) beside the demo district, so the index holds both.
    """
    from django.db import transaction

    from civicgrid.grids import locator as grid_locator
    from civicgrid.grids import services
    from civicgrid.grids.models import DEFAULT_KIND, Grid, Level

    migrate()
    t0 = time.perf_counter()
    first = 1_000_000
    geoms = shapely.normalize(gs.geoms)
    wkb = shapely.to_wkb(geoms)
    bounds = shapely.bounds(geoms)
    centres = shapely.get_coordinates(shapely.point_on_surface(geoms))
    paths: list[str] = []
    rows = []
    for i in range(len(gs)):
        parent = int(gs.parent_index[i])
        paths.append((paths[parent] if parent >= 0 else "/") + f"{first + i}/")
        level = int(gs.levels[i])
        rows.append(
            Grid(
                id=first + i,
                code=gs.codes[i],
                name=gs.names[i],
                level=level,
                kind=DEFAULT_KIND[Level(level)],
                parent_id=first + parent if parent >= 0 else None,
                path=paths[i],
                geom_wkb=wkb[i],
                area_m2=0.0,
                centroid_lon=centres[i, 0],
                centroid_lat=centres[i, 1],
                min_lon=bounds[i, 0],
                min_lat=bounds[i, 1],
                max_lon=bounds[i, 2],
                max_lat=bounds[i, 3],
            )
        )
    with transaction.atomic():
        Grid.objects.bulk_create(rows, batch_size=2000)
        services.bump_version()
    insert_s = time.perf_counter() - t0
    grid_locator.invalidate()
    cold_s, loc = timed(grid_locator.get_locator)
    ctx.details["locator.synthetic.db"] = {"insert_s": insert_s, "grids_in_index": len(loc)}
    say(f"  synthetic city inserted in {insert_s:.1f} s; cold get_locator {cold_s:.2f} s")
    return Figure(
        "locator.synthetic.build_from_db",
        f"synthetic ({gs.level_counts().get(3, 0):,} grids): build from DB (get_locator, cold)",
        cold_s,
        "s",
        better="lower",
        note=f"{len(loc):,} grids in the index (the demo district too)",
    )


def _recheck() -> float:
    from django.conf import settings

    return float(settings.CIVICGRID_LOCATOR_RECHECK_SECONDS)
