"""How fast ``civicgrid import-cases`` takes a 12345 export, beside a plain COPY of the file.

    DATABASE_URL=postgres://…/db .venv/bin/python bench/importcases.py --rows 1000000 --live-rows 1000

The database must be migrated and hold the demo district (``civicgrid demo``). The
script writes a CSV export in the shipped 12345 layout (GB18030, as the platforms
export it, in order of 受理时间): points inside the district's level-3 grids, the
shipped mapping's categories, mostly closed orders with their dispatch and closing
times and a satisfaction, some in progress, some waiting, received over 300 days. It then imports ``--rows`` of them in
historical mode, the same file again (everything skipped), ``--live-rows`` others in
live mode, and, as the baseline, COPYs the file into an unlogged table of text
columns (what ``COPY`` alone costs, without checking or placing anything). The cases
it imports stay in the database (external ids ``BENCH-<run>-…``).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicgrid.settings")

import django

django.setup()

from django.db import connection  # noqa: E402

from civicgrid.cases import routing  # noqa: E402
from civicgrid.cases.models import Category  # noqa: E402
from civicgrid.exchange.importer import BATCH, import_cases  # noqa: E402
from civicgrid.exchange.mapping import DEFAULT_MAPPING, Mapping, key, load_mapping  # noqa: E402
from civicgrid.grids.models import Grid, HandlingUnit, Level  # noqa: E402

HEADERS = [
    "工单编号",
    "受理时间",
    "诉求类型",
    "诉求内容",
    "问题分类",
    "事发地址",
    "经度",
    "纬度",
    "来电人",
    "联系电话",
    "承办单位",
    "派单时间",
    "办结时间",
    "工单状态",
    "答复内容",
    "满意度",
]
CATEGORIES = ["噪音扰民", "占道经营", "市容市貌", "停水", "物业管理", "暖气不热", "拖欠工资"]
TYPES = ["投诉", "求助", "咨询", "建议", "举报"]
SATISFACTION = ["非常满意", "满意", "满意", "基本满意", "不满意", ""]


#: Of the orders with a 承办单位, the share whose unit is not the one the dispatch
#: catalogue names for their category and place (re-dispatched by hand, say).
OTHER_UNIT = 0.1


def make_export(
    path: Path, rows: int, prefix: str, seed: int, mapping: Mapping, days: int = 300
) -> None:
    """``rows`` orders received over ``days`` days from 2025-01-02, in the order a
    platform exports them: by 受理时间 (and so by 工单编号). The 承办单位 of an order is
    the unit the dispatch catalogue (``routing.suggest``) names for its category and
    grid, except for a share ``OTHER_UNIT`` of them, drawn at random: as a real export,
    whose units follow category and place."""
    rng = random.Random(seed)
    grids = list(Grid.objects.filter(level=Level.GRID).order_by("pk"))
    units = list(HandlingUnit.objects.active().values_list("name", flat=True))
    categories = {c.pk: c for c in Category.objects.all()}
    names = dict(HandlingUnit.objects.values_list("pk", "name"))
    routed: dict[tuple[str, int], str] = {}

    def unit_of(category: str, grid: Grid) -> str:
        found_key = (category, grid.pk)
        if found_key not in routed:
            category_id = mapping.category_of(key(category))
            found = (
                routing.suggest(category=categories[category_id], grid=grid)
                if category_id is not None
                else None
            )
            routed[found_key] = names[found.lead.pk] if found else ""
        return routed[found_key]

    start = datetime(2025, 1, 2, 8, 0)
    minutes = sorted(rng.randrange(0, days * 24 * 60) for _n in range(rows))
    with path.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for n in range(rows):
            grid = rng.choice(grids)
            lon, lat, name = grid.centroid_lon, grid.centroid_lat, grid.name
            received = start + timedelta(minutes=minutes[n])
            state = rng.random()
            status, dispatched, closed = "待受理", "", ""
            if state < 0.85:
                status = "已办结"
                dispatched = received + timedelta(minutes=rng.randrange(5, 120))
                closed = dispatched + timedelta(hours=rng.randrange(2, 120))
            elif state < 0.95:
                status = "办理中"
                dispatched = received + timedelta(minutes=rng.randrange(5, 120))
            fmt = "%Y-%m-%d %H:%M:%S"
            category = rng.choice(CATEGORIES)
            unit = ""
            if status != "待受理":
                unit = unit_of(category, grid)
                if not unit or rng.random() < OTHER_UNIT:
                    unit = rng.choice(units)
            writer.writerow(
                [
                    f"{prefix}{n:08d}",
                    received.strftime(fmt),
                    rng.choice(TYPES),
                    f"{name}附近反映的问题，编号 {n}",
                    category,
                    f"{name}",
                    f"{lon + rng.uniform(-2e-4, 2e-4):.6f}",
                    f"{lat + rng.uniform(-2e-4, 2e-4):.6f}",
                    "张先生",
                    f"139{rng.randrange(10**8):08d}",
                    unit,
                    dispatched.strftime(fmt) if dispatched else "",
                    closed.strftime(fmt) if closed else "",
                    status,
                    "已处理完毕并答复来电人" if closed else "",
                    rng.choice(SATISFACTION) if closed else "",
                ]
            )


def copy_baseline(path: Path) -> float:
    columns = ", ".join(f"c{i} text" for i in range(len(HEADERS)))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE bench_import_copy ({columns})")
        try:
            with (
                path.open("rb") as handle,
                cursor.cursor.copy(
                    "COPY bench_import_copy FROM STDIN (FORMAT csv, HEADER true, ENCODING 'GB18030')"
                ) as copy,
            ):
                while data := handle.read(1 << 20):
                    copy.write(data)
            elapsed = time.perf_counter() - started
        finally:
            cursor.execute("DROP TABLE bench_import_copy")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--live-rows", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database holding the demo district")
    run = datetime.now().strftime("%H%M%S")
    mapping_path = Path(tempfile.mkdtemp()) / "wgs84.toml"
    mapping_path.write_text(
        DEFAULT_MAPPING.read_text(encoding="utf-8").replace('crs = "gcj02"', 'crs = "wgs84"'),
        encoding="utf-8",
    )
    mapping = load_mapping(mapping_path)
    folder = Path(tempfile.mkdtemp())
    history_file = folder / "history.csv"
    live_file = folder / "live.csv"
    started = time.perf_counter()
    make_export(history_file, args.rows, f"BENCH-{run}-H", 1, mapping)
    make_export(live_file, args.live_rows, f"BENCH-{run}-L", 2, mapping)
    write_seconds = time.perf_counter() - started
    print(f"writing the files:     {write_seconds:.1f} s")

    copy_seconds = copy_baseline(history_file)
    print(f"COPY of the file:      {args.rows / copy_seconds:10,.0f} rows/s ({copy_seconds:.2f} s)")
    figures: dict[str, Any] = {
        "rows": args.rows,
        "batch": args.batch,
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "write_seconds": write_seconds,
        "copy": {
            "rows": args.rows,
            "seconds": copy_seconds,
            "rows_per_s": args.rows / copy_seconds,
        },
    }
    for label, path, mode, count in (
        ("historical", history_file, "historical", args.rows),
        ("historical, again", history_file, "historical", args.rows),
        ("live", live_file, "live", args.live_rows),
    ):
        cpu = time.process_time()
        result = import_cases(path=path, mapping=mapping, mode=mode, batch=args.batch)
        cpu = time.process_time() - cpu
        print(
            f"{label + ':':22} {count / result.seconds:10,.0f} rows/s ({result.seconds:.2f} s; "
            f"{cpu / count * 1000:.3f} ms of CPU a row in this process; "
            f"imported {result.imported}, skipped {result.skipped}, refused {result.refused}, "
            f"events {result.events})"
        )
        figures[label] = {
            "rows": count,
            "seconds": result.seconds,
            "rows_per_s": count / result.seconds,
            "rows_per_cpu_s": count / cpu if cpu else 0.0,
            "cpu_ms_per_row": cpu / count * 1000,
            "vs_copy": (count / result.seconds) / figures["copy"]["rows_per_s"],
            "imported": result.imported,
            "skipped": result.skipped,
            "refused": result.refused,
            "events": result.events,
            "deadlines": result.deadlines,
        }
    figures["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        import json

        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
