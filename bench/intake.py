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

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import casegen
from bench.common import ROOT, Baseline, Context, Figure, say
from bench.pg import CivicgridDB, _apt_install

#: The issue's aim: at least a quarter of the raw insert rate.
SHARE_TARGET = 0.25
#: The raw baseline makes as many cases as the API did, but at least this many: a run
#: of a tenth of a second measures the scheduler more than the database.
RAW_MIN = 1000
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


def load_seconds(ctx: Context) -> float:
    return ctx.load_seconds if ctx.load_seconds is not None else (5.0 if ctx.quick else 15.0)


def run(ctx: Context) -> list[Figure]:
    casegen.setup_django_once()
    db = CivicgridDB.open(ctx, "intake")
    if db is None:
        return []
    try:
        return _run(ctx, db)
    finally:
        db.close()


def _run(ctx: Context, db: CivicgridDB) -> list[Figure]:
    details: dict[str, Any] = {"database": db.server_info()}
    ctx.details["intake"] = details
    details["history"] = history(ctx, db, ctx.pick(*HISTORY))
    users = make_users(db, {"bench-calltaker": "call_taker"})
    token = users["bench-calltaker"]["token"]
    with db.connect() as conn:
        world = casegen.load_world(conn, casegen.tables(), ctx.seed)
    nonce = secrets.token_hex(3)
    seconds = load_seconds(ctx)
    connections = ctx.connections
    rng = ctx.rng(31)
    pool = intake_requests(world, rng, ctx.pick(60_000, 20_000), nonce)
    warm = intake_requests(world, rng, 8 * WORKERS, "w" + nonce)
    wrk = wrk_path(ctx)

    before_rows, before_commits = table_counters(db), commits(db)
    server = Gunicorn(db)
    try:
        server.start()
        csrf = csrf_workaround(ctx, server.url, token, warm[0], "intake")
        details["csrf_workaround"] = bool(csrf)
        warmed = python_load(server.url, token, warm, seconds=60, connections=WORKERS, csrf=csrf)
        if warmed.errors:
            raise RuntimeError(f"warm-up failed: {warmed.sample_error}")
        meter = CpuMeter({"gunicorn": server.worker_pids, "postgres": lambda: backend_pids(db)})
        meter.begin()
        say(f"  load: {connections} connections for {seconds:.0f} s ({'wrk' if wrk else 'Python'})")
        load = run_load(
            ctx,
            server.url,
            token,
            pool,
            seconds=seconds,
            connections=connections,
            wrk=wrk,
            csrf=csrf,
        )
        cpu = meter.end()
    finally:
        server.stop()
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
    return [
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
        Figure(
            "intake.p50",
            f"{label}: latency p50",
            load.p50_ms,
            "ms",
            better="lower",
            baselines=[Baseline(f"{raw_name}: transaction p50", raw.p50_ms)],
        ),
        Figure(
            "intake.p95",
            f"{label}: latency p95",
            load.p95_ms,
            "ms",
            better="lower",
            baselines=[Baseline(f"{raw_name}: transaction p95", raw.p95_ms)],
        ),
        Figure(
            "intake.cpu_per_case",
            f"{label}: CPU per case (workers + database)",
            cpu_per_case(cpu, created),
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
            "intake.errors",
            f"{label}: non-2xx responses",
            float(load.errors),
            "responses",
            better="lower",
            target=0.0,
        ),
    ]
