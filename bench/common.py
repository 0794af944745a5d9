"""What every benchmark module shares: figures, the run context, timers, machine info.

A benchmark module exposes ``run(ctx: Context) -> list[Figure]``. Every figure
carries the baselines measured in the same run; the ratio is always a speed-up
(> 1 means ours is faster), whichever way the unit points.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bench.pg import CivicgridDB

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
    #: Rows of the bulk import benchmark's export (None: its default).
    import_rows: int | None = None
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


# -- load benchmarks on PostgreSQL: server, load generator, CPU meters, set-up ------------
#: Generated cases in the database before the load (history: realistic index sizes).
HISTORY = (100_000, 10_000)
WORKERS = 2


# -- the server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gunicorn:
    """``gunicorn civicgrid.wsgi:application`` on a free loopback port, with the flags
    ``civicgrid serve`` uses, against ``db``. Stopped by ``stop`` (and at exit)."""

    def __init__(self, db: CivicgridDB, workers: int = WORKERS) -> None:
        self.db = db
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(db.var_dir) / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> Gunicorn:
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "civicgrid.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--access-logfile",
            "-",
            "--timeout",
            "120",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.db.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        import atexit

        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout:.0f} s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- CPU accounting (Linux /proc) -----------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0, 0.0
    values = [int(v) for v in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


def backend_pids(db: CivicgridDB) -> list[int]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [r[0] for r in rows]


@dataclass
class CpuMeter:
    """CPU seconds of groups of processes, and of the machine, over a measurement."""

    groups: dict[str, Callable[[], list[int]]]
    start: dict[str, dict[int, float]] = field(default_factory=dict)
    machine_start: tuple[float, float] = (0.0, 0.0)
    wall_start: float = 0.0

    def begin(self) -> None:
        self.start = {name: {p: proc_cpu(p) for p in pids()} for name, pids in self.groups.items()}
        self.machine_start = machine_cpu()
        self.wall_start = time.perf_counter()

    def end(self) -> dict[str, float]:
        """CPU seconds per group, the machine's busy and total CPU seconds, wall seconds."""
        out: dict[str, float] = {}
        for name, pids in self.groups.items():
            before = self.start.get(name, {})
            now = {p: proc_cpu(p) for p in set(pids()) | set(before)}
            out[name] = sum(max(0.0, now[p] - before.get(p, 0.0)) for p in now)
        busy, total = machine_cpu()
        out["machine_busy"] = busy - self.machine_start[0]
        out["machine_total"] = total - self.machine_start[1]
        out["wall"] = time.perf_counter() - self.wall_start
        return out


def cpu_per_case(cpu: dict[str, float], n: int, app: str = "gunicorn") -> float:
    """Milliseconds of CPU per operation in the application processes and the database."""
    return 1000 * (cpu.get(app, 0.0) + cpu.get("postgres", 0.0)) / n if n else 0.0


def other_share(cpu: dict[str, float]) -> float:
    """The share of the machine's CPU that other processes used during a measurement."""
    total = cpu.get("machine_total", 0.0)
    ours = cpu.get("gunicorn", 0.0) + cpu.get("postgres", 0.0)
    return max(0.0, cpu.get("machine_busy", 0.0) - ours) / total if total else 0.0


def load_figures(
    prefix: str,
    label: str,
    noun: str,
    load: LoadResult,
    raw: RawResult,
    raw_name: str,
    cpu: dict[str, float],
    done: int,
) -> list[Figure]:
    """What every load benchmark reports beside its rate: latency p50 and p95 and CPU
    per ``noun`` against the raw transactions', and the non-2xx responses."""
    return [
        Figure(
            f"{prefix}.p50",
            f"{label}: latency p50",
            load.p50_ms,
            "ms",
            better="lower",
            baselines=[Baseline(f"{raw_name}: transaction p50", raw.p50_ms)],
        ),
        Figure(
            f"{prefix}.p95",
            f"{label}: latency p95",
            load.p95_ms,
            "ms",
            better="lower",
            baselines=[Baseline(f"{raw_name}: transaction p95", raw.p95_ms)],
        ),
        Figure(
            f"{prefix}.cpu_per_case",
            f"{label}: CPU per {noun} (workers + database)",
            cpu_per_case(cpu, done),
            "ms",
            better="lower",
            baselines=[
                Baseline(
                    f"{raw_name}: CPU per case", cpu_per_case(raw.cpu, raw.transactions, "client")
                )
            ],
            note=f"steadier than the rate on a shared machine: other processes used {other_share(cpu):.0%} of it",
        ),
        Figure(
            f"{prefix}.errors",
            f"{label}: non-2xx responses",
            float(load.errors),
            "responses",
            better="lower",
            target=0.0,
        ),
    ]


def run_child(
    module: str,
    spec: dict[str, Any],
    env: dict[str, str],
    *,
    timeout: float,
    echo: bool = False,
) -> dict[str, Any]:
    """Run ``python -m <module> --child`` with ``spec`` as JSON on its stdin and return
    the JSON of its ``RESULT `` line; ``echo`` passes on its indented stderr lines
    (progress). Fails with the last lines of its output when there is no result."""
    run = subprocess.run(
        [sys.executable, "-m", module, "--child"],
        input=json.dumps(spec),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if echo:
        for line in run.stderr.splitlines():
            if line.startswith("  "):
                say(line)
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            found: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return found
    tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-30:])
    raise RuntimeError(f"{module} --child failed ({run.returncode}):\n{tail}")


# -- the load generator ----------------------------------------------------------------------
@dataclass
class Request:
    path: str
    body: bytes
    key: str = ""  # Idempotency-Key ("" for none)


@dataclass
class LoadResult:
    tool: str
    connections: int
    seconds: float
    requests: int
    #: Count per HTTP status; 0 counts socket errors and timeouts.
    statuses: dict[int, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    exhausted: bool = False
    sample_error: str = ""

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "exhausted": self.exhausted,
            "sample_error": self.sample_error[:500],
        }


def wrk_path(ctx: Context) -> str | None:
    """wrk, installed from Debian when missing (as root); ``None``: use the Python one.
    ``CIVICGRID_BENCH_LOADGEN=python`` forces the Python load generator."""
    if os.environ.get("CIVICGRID_BENCH_LOADGEN", "") == "python":
        return None
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        from bench.pg import _apt_install

        ok, tail = _apt_install("wrk")
        found = shutil.which("wrk")
        if ok and found:
            return found
        ctx.note(f"could not install wrk ({tail}); the Python load generator is used")
    else:
        ctx.note("wrk is not installed (needs root for apt-get); the Python load generator is used")
    return None


WRK_SCRIPT = r"""
-- civicgrid bench: each thread sends its share of the prepared requests, once each.
local counter = 1
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local nthreads = tonumber(args[1])
  reqs = {}
  local i = 0
  for line in io.lines(args[2]) do
    if i % nthreads == tid - 1 then
      local path, key, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {}
      headers["Authorization"] = args[3]
      headers["Content-Type"] = "application/json"
      if args[4] ~= nil and args[4] ~= "" then
        headers["Cookie"] = "csrftoken=" .. args[4]
        headers["X-CSRFToken"] = args[4]
      end
      if key ~= "" then headers["Idempotency-Key"] = key end
      table.insert(reqs, wrk.format("POST", path, headers, body))
    end
    i = i + 1
  end
  pos = 0
  exhausted = 0
  s200 = 0; s201 = 0; s2xx = 0; s3xx = 0; s400 = 0; s404 = 0; s409 = 0; s4xx = 0; s5xx = 0
  sample = ""
end

function request()
  pos = pos + 1
  if pos > #reqs then
    exhausted = 1
    pos = 1
  end
  return reqs[pos]
end

function response(status, headers, body)
  if status == 201 then s201 = s201 + 1
  elseif status == 200 then s200 = s200 + 1
  elseif status < 300 then s2xx = s2xx + 1
  else
    if status < 400 then s3xx = s3xx + 1
    elseif status == 400 then s400 = s400 + 1
    elseif status == 404 then s404 = s404 + 1
    elseif status == 409 then s409 = s409 + 1
    elseif status < 500 then s4xx = s4xx + 1
    else s5xx = s5xx + 1 end
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local names = {"s200", "s201", "s2xx", "s3xx", "s400", "s404", "s409", "s4xx", "s5xx",
                 "exhausted"}
  local total = {}
  local sample = ""
  for _, name in ipairs(names) do total[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(names) do total[name] = total[name] + thread:get(name) end
    local s = thread:get("sample")
    if sample == "" and s ~= nil then sample = s end
  end
  local e = summary.errors
  local out = io.open(os.getenv("CIVICGRID_WRK_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
    '"s200": %d, "s201": %d, "s2xx": %d, "s3xx": %d, "s400": %d, "s404": %d, "s409": %d, ' ..
    '"s4xx": %d, "s5xx": %d, "exhausted": %d, "sample": %q}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    total.s200, total.s201, total.s2xx, total.s3xx, total.s400, total.s404, total.s409,
    total.s4xx, total.s5xx, total.exhausted, sample))
  out:close()
end
"""

STATUS_KEYS = {
    "s200": 200,
    "s201": 201,
    "s2xx": 299,
    "s3xx": 399,
    "s400": 400,
    "s404": 404,
    "s409": 409,
    "s4xx": 499,
    "s5xx": 599,
}


def run_load(
    ctx: Context,
    url: str,
    token: str,
    requests: Sequence[Request],
    *,
    seconds: float,
    connections: int,
    wrk: str | None,
    csrf: str = "",
) -> LoadResult:
    """POST ``requests`` (each once, in order, spread over the connections) to ``url``
    for ``seconds`` with wrk, or with the Python load generator when ``wrk`` is None.
    ``csrf``: send it as the ``csrftoken`` cookie and the ``X-CSRFToken`` header."""
    if wrk is None:
        return python_load(
            url, token, requests, seconds=seconds, connections=connections, csrf=csrf
        )
    with tempfile.TemporaryDirectory(prefix="civicgrid-bench-wrk-") as tmp:
        data = Path(tmp) / "requests.tsv"
        with open(data, "wb") as out:
            for r in requests:
                out.write(f"{r.path}\t{r.key}\t".encode() + r.body + b"\n")
        script = Path(tmp) / "load.lua"
        script.write_text(WRK_SCRIPT)
        result = Path(tmp) / "result.json"
        threads = max(1, min(2, connections))
        cmd = [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            url,
            "--",
            str(threads),
            str(data),
            f"Bearer {token}",
            csrf,
        ]
        env = dict(os.environ, CIVICGRID_WRK_OUT=str(result))
        run = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
        if run.returncode != 0 or not result.exists():
            raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout}\n{run.stderr}")
        r = json.loads(result.read_text())
    statuses = {code: int(r[key]) for key, code in STATUS_KEYS.items() if r[key]}
    if r["socket_errors"]:
        statuses[0] = int(r["socket_errors"])
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return LoadResult(
        tool=(version.stdout or version.stderr).split("[")[0].strip() or "wrk",
        connections=connections,
        seconds=r["duration_us"] / 1e6,
        requests=int(r["requests"]),
        statuses=statuses,
        p50_ms=r["p50_us"] / 1000,
        p95_ms=r["p95_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        mean_ms=r["mean_us"] / 1000,
        exhausted=bool(r["exhausted"]),
        sample_error=r["sample"],
    )


def python_load(
    url: str,
    token: str,
    requests: Sequence[Request],
    *,
    seconds: float,
    connections: int,
    csrf: str = "",
) -> LoadResult:
    """Threads with keep-alive ``http.client`` connections (reconnecting when the
    server closes), each request once, bounded by the list and by ``seconds``."""
    host, port = url.removeprefix("http://").split(":")
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the load generator only talks to loopback")
    lock = threading.Lock()
    upcoming = iter(range(len(requests)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sample: list[str] = []
    exhausted = threading.Event()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine: list[float] = []
        counts: dict[int, int] = {}
        while time.perf_counter() < stop_at:
            with lock:
                i = next(upcoming, None)
            if i is None:
                exhausted.set()
                break
            r = requests[i]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            if csrf:
                headers["Cookie"] = f"csrftoken={csrf}"
                headers["X-CSRFToken"] = csrf
            if r.key:
                headers["Idempotency-Key"] = r.key
            t0 = time.perf_counter()
            try:
                conn.request("POST", r.path, body=r.body, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, body = 0, str(exc).encode()
            mine.append(time.perf_counter() - t0)
            counts[status] = counts.get(status, 0) + 1
            if not 200 <= status < 300 and not sample:
                sample.append(f"{status} {body[:300].decode(errors='replace')}")
        conn.close()
        with lock:
            latencies.extend(mine)
            for s, n in counts.items():
                statuses[s] = statuses.get(s, 0) + n

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return LoadResult(
        tool=f"Python http.client, {connections} threads",
        connections=connections,
        seconds=elapsed,
        requests=len(latencies),
        statuses=statuses,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        exhausted=exhausted.is_set(),
        sample_error=sample[0] if sample else "",
    )


def csrf_workaround(ctx: Context, url: str, token: str, probe: Request, tag: str) -> str:
    """POST ``probe`` with the bearer token alone. When the API refuses it for CSRF
    (django-ninja's session auth, listed before the bearer token in
    ``civicgrid.api.auth.AUTH``, checks CSRF first and fails the request), note it and
    return a token to send as a matching csrftoken cookie and X-CSRFToken header,
    which gets past the check to the bearer token; else ""."""
    result = python_load(url, token, [probe], seconds=60, connections=1)
    if result.count(403) and "CSRF" in result.sample_error:
        if any("bearer token alone is refused" in n for n in ctx.notes):
            ctx.note(f"{tag}: the same CSRF refusal, and the same workaround")
            return secrets.token_hex(16)
        ctx.note(
            f"{tag}: a POST with a bearer token alone is refused (403 CSRF check Failed): "
            "civicgrid.api.auth.AUTH lists django_auth before BearerToken, and its CSRF "
            "check fails the request before the token is looked at. The bench sends a "
            "matching csrftoken cookie and X-CSRFToken header to get past it; see the "
            "proposed fix in docs/performance.md"
        )
        return secrets.token_hex(16)
    return ""


# -- set-up ---------------------------------------------------------------------------------
TOKENS_CODE = """
import json
from civicgrid.accounts.models import Membership, User
from civicgrid.accounts.services import create_api_token
from civicgrid.grids.models import Grid
root = Grid.objects.filter(parent__isnull=True).order_by("id").first()
out = {}
for username, role in SPEC:
    user, _ = User.objects.get_or_create(username=username, defaults={"display_name": username})
    Membership.objects.get_or_create(user=user, role=role, grid=root, defaults={"title": "bench"})
    out[username] = {"id": user.pk, "token": create_api_token(user=user, name="bench")[1]}
print("TOKENS " + json.dumps(out))
"""


def make_users(db: CivicgridDB, spec: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Users with a district-wide membership of the given role and a bearer token each,
    through the accounts services: {username: {"id": .., "token": ..}}."""
    code = f"SPEC = {sorted(spec.items())!r}\n" + TOKENS_CODE
    out = db.shell(code)
    for line in out.splitlines():
        if line.startswith("TOKENS "):
            found: dict[str, dict[str, Any]] = json.loads(line[len("TOKENS ") :])
            return found
    raise RuntimeError(f"no tokens in: {out[-500:]}")


def history(ctx: Context, db: CivicgridDB, n: int) -> dict[str, Any]:
    """``n`` generated cases over the past year (the database a server meets)."""
    from bench import casegen

    t0 = time.perf_counter()
    with db.connect() as conn:
        result = casegen.generate(conn, n, seed=ctx.seed, progress=lambda _: None)
    say(f"  {n:,} cases of history generated in {time.perf_counter() - t0:.1f} s")
    return result.as_dict()


def table_counters(db: CivicgridDB) -> dict[str, tuple[int, int, int]]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def commits(db: CivicgridDB) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def rows_written(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]], per: int
) -> dict[str, dict[str, float]]:
    """Rows inserted, updated, deleted per operation and table (tables that changed)."""
    out = {}
    for table, (ins, upd, dele) in sorted(after.items()):
        b = before.get(table, (0, 0, 0))
        delta = (ins - b[0], upd - b[1], dele - b[2])
        if any(delta) and per:
            out[table] = {
                "inserted": round(delta[0] / per, 2),
                "updated": round(delta[1] / per, 2),
                "deleted": round(delta[2] / per, 2),
            }
    return out


QUERIES_CODE = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client()
def post(path, body, key):
    headers = {"HTTP_AUTHORIZATION": "Bearer " + TOKEN}
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, data=body, content_type="application/json", **headers)
post(WARM_PATH, WARM, WARM_KEY)  # warm the per-process caches
with CaptureQueriesContext(connection) as ctx:
    response = post(PATH, BODY, KEY)
kinds = {}
for q in ctx.captured_queries:
    word = q["sql"].lstrip("( ").split(None, 1)[0].upper()
    kinds[word] = kinds.get(word, 0) + 1
print("QUERIES " + json.dumps({"status": response.status_code, "queries": len(ctx), "by_kind": kinds}))
"""


def count_queries(db: CivicgridDB, token: str, warm: Request, counted: Request) -> dict[str, Any]:
    """The SQL statements one request makes (after one to warm the caches), in-process
    through Django's test client."""
    code = (
        f"TOKEN = {token!r}\n"
        f"WARM_PATH, WARM, WARM_KEY = {warm.path!r}, {warm.body.decode()!r}, {warm.key!r}\n"
        f"PATH, BODY, KEY = {counted.path!r}, {counted.body.decode()!r}, {counted.key!r}\n"
        + QUERIES_CODE
    )
    try:
        out = db.shell(code)
    except RuntimeError as exc:
        return {"error": str(exc)[-500:]}
    for line in out.splitlines():
        if line.startswith("QUERIES "):
            found: dict[str, Any] = json.loads(line[len("QUERIES ") :])
            return found
    return {"error": out[-500:]}


# -- the raw baseline --------------------------------------------------------------------------
@dataclass
class RawResult:
    threads: int
    transactions: int
    seconds: float
    p50_ms: float
    p95_ms: float
    errors: int
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "transactions": self.transactions,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "errors": self.errors,
            "cpu_seconds": {k: round(v, 3) for k, v in self.cpu.items()},
        }


Job = list[tuple[str, Sequence[Any]]]


def run_transactions(
    db: CivicgridDB, jobs: Sequence[Job], threads: int, *, returning_id: bool = False
) -> RawResult:
    """Run each job (a list of (sql, params)) as one transaction, ``threads`` at a time
    on their own connections. With ``returning_id`` the first statement's returned id
    replaces the parameter ``NEW_ID`` in the statements after it."""
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    conns = [db.connect(autocommit=False) for _ in range(threads)]
    for c in conns:  # set up outside the timing
        c.execute("SELECT 1")
        c.commit()
    ready = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        conn = conns[k]
        ready.wait()
        for job in jobs[k::threads]:
            t0 = time.perf_counter()
            try:
                with conn.cursor() as cur:
                    new_id = None
                    for i, (sql, params) in enumerate(job):
                        if new_id is not None:
                            params = [new_id if p is NEW_ID else p for p in params]
                        cur.execute(sql, params, prepare=True)
                        if i == 0 and returning_id:
                            row = cur.fetchone()
                            new_id = row[0] if row else None
                        elif cur.rowcount == 0 and sql.lstrip().upper().startswith("UPDATE"):
                            raise RuntimeError("conditional update matched no row")
                conn.commit()
            except Exception:
                conn.rollback()
                errors[k] += 1
            per_thread[k].append(time.perf_counter() - t0)

    meter = CpuMeter({"client": lambda: [os.getpid()], "postgres": lambda: backend_pids(db)})
    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    meter.begin()
    t0 = time.perf_counter()
    ready.wait()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    cpu = meter.end()
    for c in conns:
        c.close()
    ms = np.array([x for xs in per_thread for x in xs]) * 1000 if jobs else np.zeros(1)
    return RawResult(
        threads=threads,
        transactions=len(jobs),
        seconds=elapsed,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        errors=sum(errors),
        cpu=cpu,
    )


class _NewId:
    def __repr__(self) -> str:
        return "NEW_ID"


NEW_ID: Any = _NewId()


def load_seconds(ctx: Context) -> float:
    return ctx.load_seconds if ctx.load_seconds is not None else (5.0 if ctx.quick else 15.0)


# -- what the load benchmarks (intake, transitions) share ------------------------------------
def run_on_pg(
    ctx: Context, name: str, body: Callable[[Context, CivicgridDB], list[Figure]]
) -> list[Figure]:
    """``body(ctx, db)`` on a fresh civicgrid database of its own (``bench.pg``),
    dropped afterwards whatever happens; no figures when there is no PostgreSQL."""
    from bench import casegen
    from bench.pg import CivicgridDB

    casegen.setup_django_once()
    db = CivicgridDB.open(ctx, name)
    if db is None:
        return []
    try:
        return body(ctx, db)
    finally:
        db.close()


@dataclass
class Served:
    """One load run against gunicorn: what the load generator saw, the CPU seconds of
    the workers and the database meanwhile, and whether the CSRF workaround was needed."""

    load: LoadResult
    cpu: dict[str, float]
    csrf_workaround: bool


def serve_and_load(
    ctx: Context,
    db: CivicgridDB,
    token: str,
    requests: Sequence[Request],
    warm: Sequence[Request],
    tag: str,
) -> Served:
    """Start gunicorn on ``db``, warm both workers with ``warm`` (every response must
    be 2xx), then send ``requests`` for ``load_seconds(ctx)`` from ``ctx.connections``
    connections while metering the CPU of the workers and the database backends."""
    seconds = load_seconds(ctx)
    connections = ctx.connections
    wrk = wrk_path(ctx)
    server = Gunicorn(db)
    try:
        server.start()
        csrf = csrf_workaround(ctx, server.url, token, warm[0], tag)
        warmed = python_load(
            server.url, token, warm[1:], seconds=60, connections=WORKERS, csrf=csrf
        )
        if warmed.errors:
            raise RuntimeError(f"warm-up failed: {warmed.sample_error}")
        meter = CpuMeter({"gunicorn": server.worker_pids, "postgres": lambda: backend_pids(db)})
        meter.begin()
        say(f"  load: {connections} connections for {seconds:.0f} s ({'wrk' if wrk else 'Python'})")
        load = run_load(
            ctx,
            server.url,
            token,
            requests,
            seconds=seconds,
            connections=connections,
            wrk=wrk,
            csrf=csrf,
        )
        cpu = meter.end()
    finally:
        server.stop()
    return Served(load, cpu, bool(csrf))
