"""Bulk import of a 12345 export (``civicgrid import-cases``) against PostgreSQL ``COPY``.

Runs ``bench/importcases.py`` in a civicgrid database of its own (``bench.pg``): it
writes a GB18030 CSV in the shipped 12345 layout, imports it in historical mode (the
bulk path: cases, their events, deadlines and statistics), imports the same file again
(every row skipped by its external id), imports other rows in live mode (each through
the intake service), and COPYs the file into a table of text columns as the baseline.
The sample is 1,000,000 rows (5,000 with ``--quick``, any size with
``--import-rows``); the same file again, and 1,000 live rows (200 with ``--quick``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Baseline, Context, Figure, run_on_pg, say
from bench.pg import CivicgridDB

#: Rows of the full run: the million issue 7 names.
ROWS = 1_000_000


def run(ctx: Context) -> list[Figure]:
    return run_on_pg(ctx, "bulkimport", _run)


def _run(ctx: Context, db: CivicgridDB) -> list[Figure]:
    rows = ctx.import_rows or ctx.pick(ROWS, 5_000)
    live = ctx.pick(1_000, 200)
    out = Path(tempfile.mkdtemp(prefix="civicgrid-bench-import-")) / "figures.json"
    say(f"  import-cases: {rows:,} rows historical, {live:,} live")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "importcases.py"),
            "--rows",
            str(rows),
            "--live-rows",
            str(live),
            "--json",
            str(out),
        ],
        env=db.env,
        check=True,
        cwd=ROOT,
        timeout=4 * 3600,
    )
    got = json.loads(out.read_text(encoding="utf-8"))
    ctx.details["bulkimport"] = got
    copy = Baseline("COPY of the same file", got["copy"]["rows_per_s"], "rows/s, text columns")
    history, again, online = got["historical"], got["historical, again"], got["live"]
    return [
        Figure(
            "bulkimport.historical",
            f"import-cases historical, {rows:,} rows",
            history["rows_per_s"],
            "rows/s",
            baselines=[copy],
            note=(
                f"{history['seconds']:,.0f} s; "
                f"{history['events'] / max(history['imported'], 1):.1f} events a case "
                f"({history['events']:,} written); "
                f"{history['cpu_ms_per_row']:.2f} ms of importer CPU a row"
            ),
        ),
        Figure(
            "bulkimport.again",
            f"the same {rows:,} rows again (all skipped)",
            again["rows_per_s"],
            "rows/s",
            baselines=[copy],
            note=f"{again['seconds']:,.0f} s",
        ),
        Figure(
            "bulkimport.live",
            f"import-cases live, {live:,} rows (intake service each)",
            online["rows_per_s"],
            "rows/s",
            baselines=[copy],
        ),
    ]
