"""civicgrid benchmarks: one command, its own data, a baseline beside every figure.

    .venv/bin/python bench/run.py [--quick] [--only locator[,...]] [--no-postgis] [--strict]
        [--keep-db] [--dashboard-cases 1000000,10000000] [--import-rows 1000000]

Prints a table and writes every figure, with the machine it ran on, to
bench/results/<timestamp>.json and bench/results/latest.json (the table in
Markdown: latest.md).

A benchmark is a module with ``run(ctx: Context) -> list[Figure]``; add it to
``BENCHMARKS`` below. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Context, Figure, calibration_ms, machine_info, markdown, say, table  # noqa: E402

#: name -> (module, what it measures)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "locator": ("bench.locator", "point locator: demo district and 100,000 synthetic grids"),
    "intake": ("bench.intake", "POST /api/v1/cases on PostgreSQL, 2 gunicorn workers"),
    "transitions": ("bench.transitions", "dispatch through the API on PostgreSQL"),
    "caselist": ("bench.caselist", "case list and search at 1,000,000 cases"),
    "bulkimport": ("bench.bulkimport", "import-cases of a 12345 export against COPY"),
    "dashboards": (
        "bench.dashboards",
        "a year's dashboard and every evaluation at 1 and 10 million cases",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller samples: under a minute")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated benchmarks to run (of: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS baselines")
    parser.add_argument(
        "--seed", type=int, default=20240601, help="seed of the random points and grids"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="directory for the JSON results",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a figure misses its target"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="seconds of load in the intake and transitions benchmarks (default 15; --quick 5)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="concurrent client connections of the load benchmarks (default 8)",
    )
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="dashboards: keep a copy of the first size's database with its facts and rollups "
        "(civicgrid_dashbench_<cases>) and start from a copy of it in later runs",
    )
    parser.add_argument(
        "--dashboard-cases",
        default="",
        help="dashboards: comma-separated case counts, the first generated, the others "
        "multiples of it grown by shifted copies (default 1000000,10000000; 1000000 leaves "
        "out the ten million, about 12 minutes on a quiet 2-core machine; --quick "
        "20000,200000)",
    )
    parser.add_argument(
        "--import-rows",
        type=int,
        default=None,
        help="bulkimport: rows of the export (default 100000; 1000000 takes about 25 "
        "minutes here, docs/performance.md; --quick 5000)",
    )
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    ctx = Context(
        quick=args.quick,
        seed=args.seed,
        use_postgis=not args.no_postgis,
        load_seconds=args.seconds,
        connections=max(1, args.connections),
        keep_db=args.keep_db,
        dashboard_cases=tuple(
            int(x.replace("_", "")) for x in args.dashboard_cases.split(",") if x.strip()
        )
        or None,
        import_rows=args.import_rows,
    )
    machine = machine_info()
    started = dt.datetime.now(dt.UTC)
    say(
        f"civicgrid bench{' --quick' if args.quick else ''}: {machine['cpu_model']}, "
        f"{machine['cores_usable']} of {machine['cores']} cores, Python {machine['python']}, "
        f"shapely {machine['shapely']} / GEOS {machine['geos']}; load {machine['load_average'][0]}, "
        f"calibration loop {machine['calibration_ms']} ms"
    )

    if machine["load_average"][0] > 0.5 * (machine["cores_usable"] or 1):
        ctx.note(
            f"load average {machine['load_average'][0]} at start: other work is running, "
            "figures will be noisy"
        )

    figures: list[Figure] = []
    runs: dict[str, dict[str, object]] = {}
    try:
        for name in names:
            module_name, about = BENCHMARKS[name]
            say(f"\n== {name}: {about}")
            t0 = time.perf_counter()
            try:
                produced = importlib.import_module(module_name).run(ctx)
            except Exception:
                traceback.print_exc()
                runs[name] = {"error": traceback.format_exc(), "seconds": time.perf_counter() - t0}
                continue
            figures += produced
            runs[name] = {"seconds": time.perf_counter() - t0, "figures": len(produced)}
            say(f"== {name} done in {runs[name]['seconds']:.0f} s")
    finally:
        if any(n in ("caselist", "dashboards") for n in names):
            from bench.pg import close_shared

            close_shared()  # the shared case databases no module took over

    say("")
    say(table(figures))
    if ctx.notes:
        say("\nnotes:")
        for note in ctx.notes:
            say(f"- {note}")
    for f in figures:
        if f.note:
            ctx.details.setdefault("figure_notes", {})[f.key] = f.note

    result = {
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": (dt.datetime.now(dt.UTC) - started).total_seconds(),
        "options": {
            "quick": args.quick,
            "only": names,
            "postgis": not args.no_postgis,
            "seed": args.seed,
            "seconds": args.seconds,
            "connections": args.connections,
            "keep_db": args.keep_db,
            "dashboard_cases": args.dashboard_cases,
        },
        "machine": machine,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "calibration_ms_at_end": calibration_ms(),
        "benchmarks": runs,
        "figures": [f.as_dict() for f in figures],
        "notes": ctx.notes,
        "details": ctx.details,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")
    (args.out / "latest.json").write_text(text + "\n", encoding="utf-8")
    (args.out / "latest.md").write_text(markdown(figures) + "\n", encoding="utf-8")
    say(
        f"\nwritten: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} (and latest.json, latest.md)"
    )

    failed = any("error" in r for r in runs.values())
    missed = [f.key for f in figures if f.passed is False]
    if missed:
        say(f"missed targets: {', '.join(missed)}")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
