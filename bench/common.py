"""What every benchmark module shares: figures, the run context, timers, machine info.

A benchmark module exposes ``run(ctx: Context) -> list[Figure]``. Every figure
carries the baselines measured in the same run; the ratio is always a speed-up
(> 1 means ours is faster), whichever way the unit points.
"""

from __future__ import annotations

import atexit
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Baseline:
    name: str
    value: float
    note: str = ""


@dataclass
class Figure:
    key: str
    name: str
    value: float
    unit: str
    #: "higher" (a rate) or "lower" (a time) is better.
    better: str = "higher"
    baselines: list[Baseline] = field(default_factory=list)
    target: float | None = None
    note: str = ""

    def ratio(self, baseline: Baseline) -> float | None:
        """Speed-up of ours over ``baseline`` (> 1: ours is faster)."""
        if not baseline.value or not self.value:
            return None
        if self.better == "higher":
            return self.value / baseline.value
        return baseline.value / self.value

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        if self.better == "higher":
            return self.value >= self.target
        return self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "better": self.better,
            "target": self.target,
            "passed": self.passed,
            "note": self.note,
            "baselines": [
                {"name": b.name, "value": b.value, "ratio": self.ratio(b), "note": b.note}
                for b in self.baselines
            ],
        }


@dataclass
class Context:
    quick: bool = False
    seed: int = 20240601
    use_postgis: bool = True
    #: Load benchmarks (intake, transitions): seconds of load (None: their default) and
    #: concurrent client connections.
    load_seconds: float | None = None
    connections: int = 8
    #: Keep the databases of the dashboards benchmark between runs and reuse them.
    keep_db: bool = False
    #: The case counts of the dashboards benchmark (None: its default).
    dashboard_cases: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)
    #: JSON-able details a module wants kept (sizes, setup times, checks).
    details: dict[str, Any] = field(default_factory=dict)

    def pick(self, default: int, quick: int) -> int:
        return quick if self.quick else default

    def note(self, message: str) -> None:
        print(f"  note: {message}", flush=True)
        self.notes.append(message)

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])


def say(message: str) -> None:
    print(message, flush=True)


# -- timers -----------------------------------------------------------------------
def per_call_ns(
    fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]], warmup: int = 200, rounds: int = 1
) -> np.ndarray:
    """Wall time of each call in nanoseconds (timer overhead, ~50 ns, included).

    With ``rounds`` > 1 the calls are all made that many times and the round
    with the lowest median is kept: on a shared machine the other rounds
    measure the neighbours as much as the code.
    """
    calls = list(calls)
    for args in calls[:warmup]:  # warm caches and lazy paths
        fn(*args)
    best: np.ndarray | None = None
    clock = time.perf_counter_ns
    for _ in range(max(1, rounds)):
        gc.collect()
        out = np.empty(len(calls), dtype=np.int64)
        for i, args in enumerate(calls):
            t0 = clock()
            fn(*args)
            out[i] = clock() - t0
        if best is None or np.median(out) < np.median(best):
            best = out
    assert best is not None
    return best


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Best wall time in seconds of ``repeats`` runs, and the last result.

    The best run is the one least disturbed by whatever else the machine does
    (as ``timeit`` advises); every run's time goes to the JSON where it matters.
    """
    times = []
    result = None
    for _ in range(max(1, repeats)):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def us(ns: np.ndarray, q: float) -> float:
    return float(np.percentile(ns, q)) / 1000.0


def rss_mb() -> float | None:
    """Resident memory of this process in MB (Linux), or None."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024, 1)


# -- Django, on a throwaway SQLite database ----------------------------------------
_django_dir: str | None = None
_migrated = False


def setup_django() -> Path:
    """Configure civicgrid on a temporary var dir (SQLite), once per run."""
    global _django_dir
    if _django_dir is None:
        _django_dir = tempfile.mkdtemp(prefix="civicgrid-bench-")
        atexit.register(shutil.rmtree, _django_dir, True)
        os.environ["CIVICGRID_VAR_DIR"] = _django_dir
        os.environ["DJANGO_SETTINGS_MODULE"] = "civicgrid.settings"
        # Measure the shipped defaults, not whatever this shell exports.
        for name in ("DATABASE_URL", "DEBUG", "CIVICGRID_LOCATOR_RECHECK_SECONDS"):
            os.environ.pop(name, None)
        import django

        django.setup()
    return Path(_django_dir)


def migrate() -> None:
    global _migrated
    setup_django()
    if not _migrated:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        _migrated = True


# -- machine ------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def calibration_ms() -> float:
    """Best of five runs of a fixed pure-Python loop, in ms: compare it between
    runs to tell a slower machine (or busier neighbours) from slower code."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i & 7
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 2)


def machine_info() -> dict[str, Any]:
    import shapely

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": _mem_total_gb(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "pyproj": _version("pyproj"),
        "django": _version("Django"),
        "psycopg": _version("psycopg"),
        "prcoords": _version("prcoords"),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "calibration_ms": calibration_ms(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


# -- output -------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    v = abs(value)
    if v >= 1000:
        return f"{value:,.0f}"
    if v >= 100:
        return f"{value:.0f}"
    if v >= 10:
        return f"{value:.1f}"
    if v >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.3g}×"


HEAD = ["figure", "value", "unit", "baseline", "baseline value", "ratio", "target", "pass"]


def _rows(figures: list[Figure]) -> list[list[str]]:
    rows: list[list[str]] = []
    for f in figures:
        target = "—"
        if f.target is not None:
            target = ("≥ " if f.better == "higher" else "≤ ") + fmt(f.target)
        verdict = {None: "", True: "PASS", False: "FAIL"}[f.passed]
        baselines: list[Baseline | None] = [*f.baselines] or [None]
        for i, b in enumerate(baselines):
            first = i == 0
            rows.append(
                [
                    f.name if first else "",
                    fmt(f.value) if first else "",
                    f.unit if first else "",
                    b.name if b else "—",
                    fmt(b.value) if b else "",
                    fmt_ratio(f.ratio(b)) if b else "",
                    target if first else "",
                    verdict if first else "",
                ]
            )
    return rows


def table(figures: list[Figure]) -> str:
    """The figures as a plain-text table, one row per baseline."""
    head, rows = HEAD, _rows(figures)
    widths = [
        max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(head)
    ]
    right = {1, 4, 5}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def markdown(figures: list[Figure]) -> str:
    """The same table in Markdown (for docs/performance.md)."""
    rows = _rows(figures)
    out = [
        "| " + " | ".join(HEAD) + " |",
        "|" + "|".join(["---", "--:", "---", "---", "--:", "--:", "---", "---"]) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
