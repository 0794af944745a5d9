"""A throwaway PostGIS database to measure baselines against.

``PostGIS.open(ctx)`` connects to the PostgreSQL server named by
``CIVICGRID_BENCH_PG`` (a libpq connection string; default: postgres on
127.0.0.1:5432), installs the Debian PostGIS package when the extension is
missing and this is a local server and we are root, creates the database
``civicgrid_bench`` and drops it again at the end. When any of that fails it
returns ``None`` after printing why, and the figures go without that baseline.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from bench.common import Context, say

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DBNAME = "civicgrid_bench"


def _dsn() -> str:
    return os.environ.get("CIVICGRID_BENCH_PG", DEFAULT_DSN)


def _with_db(dsn: str, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, dbname=dbname)


def _one(conn: Any, sql: str) -> Any:
    """The first column of the first row of ``sql``."""
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def _is_local(dsn: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    host = str(conninfo_to_dict(dsn).get("host") or "")
    return host in ("", "127.0.0.1", "localhost", "::1") or host.startswith("/")


def _apt_install(package: str) -> tuple[bool, str]:
    """``apt-get install -y package``, waiting for the dpkg lock; update and retry once."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    cmd = ["apt-get", *wait, "install", "-y", "-q", package]
    say(f"  installing {package} (apt-get) ...")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0:
        subprocess.run(
            ["apt-get", *wait, "update", "-q"], capture_output=True, env=env, check=False
        )
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    tail = (run.stdout + run.stderr).strip().splitlines()[-3:]
    return run.returncode == 0, " / ".join(tail)


class PostGIS:
    def __init__(self, admin: Any, conn: Any, info: dict[str, Any], *, local: bool) -> None:
        self.local = local
        self.admin = admin
        self.conn = conn
        self.info = info
        self.closed = False
        atexit.register(self.close)

    # -- setup ----------------------------------------------------------------------
    @classmethod
    def open(cls, ctx: Context) -> PostGIS | None:
        if not ctx.use_postgis:
            ctx.note("PostGIS baseline skipped (--no-postgis).")
            return None
        try:
            import psycopg
        except ImportError:
            ctx.note("PostGIS baseline skipped: psycopg is not installed.")
            return None
        dsn = _dsn()
        try:
            admin = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            ctx.note(
                f"PostGIS baseline skipped: cannot connect to PostgreSQL ({dsn}): {exc}".strip()
            )
            return None
        major = int(_one(admin, "SHOW server_version_num")) // 10000
        if not cls._available(admin):
            package = f"postgresql-{major}-postgis-3"
            if not (_is_local(dsn) and shutil.which("apt-get") and os.geteuid() == 0):
                ctx.note(
                    f"PostGIS baseline skipped: the server has no postgis extension; install "
                    f"{package} (needs a local server and root for apt-get)."
                )
                admin.close()
                return None
            ok, tail = _apt_install(package)
            if not ok or not cls._available(admin):
                ctx.note(f"PostGIS baseline skipped: could not install {package}: {tail}")
                admin.close()
                return None
        admin.execute(f"DROP DATABASE IF EXISTS {DBNAME} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DBNAME}")
        try:
            conn = psycopg.connect(_with_db(dsn, DBNAME), autocommit=True)
            conn.execute("CREATE EXTENSION postgis")
            # The planner's cost estimates for spatial joins are huge and turn on
            # JIT, which only adds compile time here.
            conn.execute("SET jit = off")
        except psycopg.Error as exc:
            ctx.note(f"PostGIS baseline skipped: CREATE EXTENSION postgis failed: {exc}")
            admin.execute(f"DROP DATABASE IF EXISTS {DBNAME} WITH (FORCE)")
            admin.close()
            return None
        info = {
            "server": _one(admin, "SELECT version()"),
            "postgis": _one(conn, "SELECT postgis_full_version()"),
            "max_parallel_workers_per_gather": _one(conn, "SHOW max_parallel_workers_per_gather"),
            "shared_buffers": _one(conn, "SHOW shared_buffers"),
            "work_mem": _one(conn, "SHOW work_mem"),
            "jit": "off",
        }
        return cls(admin, conn, info, local=_is_local(dsn))

    @staticmethod
    def _available(admin: Any) -> bool:
        row = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
        ).fetchone()
        return row is not None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.close()
            self.admin.execute(f"DROP DATABASE IF EXISTS {DBNAME} WITH (FORCE)")
            self.admin.close()
        except Exception as exc:  # best effort at exit
            say(f"  note: could not drop database {DBNAME}: {exc}")

    # -- data -----------------------------------------------------------------------
    def load_polygons(
        self, table: str, levels: np.ndarray, geoms: np.ndarray, leaf: np.ndarray
    ) -> dict[str, float]:
        """COPY polygons (EWKB hex, SRID 4326) into ``table``; GiST-index and analyse it.

        ``leaf`` marks the polygons without children; they get a partial GiST
        index of their own so a query can try them first, as the locator does.
        """
        t0 = time.perf_counter()
        self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.execute(
            f"CREATE TABLE {table} (idx integer PRIMARY KEY, level smallint NOT NULL, "
            "leaf boolean NOT NULL, geom geometry(Geometry, 4326) NOT NULL)"
        )
        hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
        rows = zip(levels.tolist(), leaf.tolist(), hexes.tolist(), strict=True)
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} (idx, level, leaf, geom) FROM STDIN") as copy,
        ):
            for i, (level, is_leaf, wkb) in enumerate(rows):
                copy.write_row((i, level, is_leaf, wkb))
        t1 = time.perf_counter()
        self.conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
        self.conn.execute(f"CREATE INDEX ON {table} USING gist (geom) WHERE leaf")
        self.conn.execute(f"ANALYZE {table}")
        return {"copy_s": t1 - t0, "index_s": time.perf_counter() - t1}

    def load_points(self, table: str, lons: np.ndarray, lats: np.ndarray) -> float:
        t0 = time.perf_counter()
        self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.execute(
            f"CREATE TABLE {table} (id integer PRIMARY KEY, geom geometry(Point, 4326) NOT NULL)"
        )
        points = shapely.set_srid(shapely.points(lons, lats), 4326)
        hexes = shapely.to_wkb(points, hex=True, include_srid=True)
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} (id, geom) FROM STDIN") as copy:
            for i, wkb in enumerate(hexes.tolist()):
                copy.write_row((i, wkb))
        self.conn.execute(f"ANALYZE {table}")
        return time.perf_counter() - t0

    # -- queries --------------------------------------------------------------------
    def deepest_batch(self, polygons: str, points: str, n: int) -> tuple[float, np.ndarray]:
        """One statement: the deepest polygon per point. Seconds, and the index per point.

        Leaf polygons first (small, their own index), then every level for the
        points no leaf holds, deepest first: the locator's own strategy. The
        plain one-join form is 10x slower on the synthetic city, whose big
        district and subdistrict polygons every point would be tested against.
        """
        sql = (
            f"WITH leaf AS MATERIALIZED (SELECT p.id, g.idx FROM {points} p "
            f"JOIN {polygons} g ON g.leaf AND ST_Contains(g.geom, p.geom)) "
            "SELECT id, idx FROM leaf UNION ALL "
            f"(SELECT DISTINCT ON (p.id) p.id, g.idx FROM {points} p "
            f"JOIN {polygons} g ON ST_Contains(g.geom, p.geom) "
            "WHERE NOT EXISTS (SELECT 1 FROM leaf WHERE leaf.id = p.id) "
            "ORDER BY p.id, g.level DESC, g.idx)"
        )
        out = np.full(n, -1, dtype=np.int64)
        t0 = time.perf_counter()
        with self.conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        elapsed = time.perf_counter() - t0
        if rows:
            arr = np.array(rows, dtype=np.int64)
            out[arr[:, 0]] = arr[:, 1]
        return elapsed, out

    def single_query(self, polygons: str) -> Any:
        """A function (lon, lat) -> deepest idx or None: one prepared statement per call."""
        point = "ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4326)"
        sql = (
            f"(SELECT idx FROM {polygons} WHERE leaf AND ST_Contains(geom, {point}) LIMIT 1) "
            f"UNION ALL (SELECT idx FROM {polygons} WHERE ST_Contains(geom, {point}) "
            "ORDER BY level DESC LIMIT 1) LIMIT 1"
        )
        cur = self.conn.cursor()

        def query(lon: float, lat: float) -> int | None:
            cur.execute(sql, {"x": lon, "y": lat}, prepare=True)
            row = cur.fetchone()
            return row[0] if row else None

        return query

    def round_trip(self) -> Any:
        """A function () -> None: the cheapest prepared query, for the transport's share."""
        cur = self.conn.cursor()

        def query() -> None:
            cur.execute("SELECT 1", prepare=True)
            cur.fetchone()

        return query

    @contextmanager
    def same_core(self) -> Iterator[bool]:
        """Pin this process and its server backend to one core while inside.

        On a small VM a round trip between two cores costs ~70 µs more than on
        one; pinned, a query's time is PostGIS's own work plus the least
        transport, which is the baseline's best case. Yields whether it pinned.
        """
        if not self.local:
            yield False
            return
        backend = int(_one(self.conn, "SELECT pg_backend_pid()"))
        mine = os.sched_getaffinity(0)
        cpu = min(mine)
        try:
            theirs = os.sched_getaffinity(backend)
            os.sched_setaffinity(backend, {cpu})
        except OSError:  # not allowed
            yield False
            return
        os.sched_setaffinity(0, {cpu})
        try:
            yield True
        finally:
            os.sched_setaffinity(0, mine)
            with suppress(OSError):
                os.sched_setaffinity(backend, theirs)

    def explain(self, sql: str) -> str:
        rows = self.conn.execute("EXPLAIN " + sql).fetchall()
        return "\n".join(r[0] for r in rows)


# -- civicgrid itself on PostgreSQL ------------------------------------------------------
#: Databases this module creates are named ``civicgrid_bench_<tag>_<pid>``, so runs by
#: several people on one server do not collide and leftovers of a killed run can be
#: recognised (its pid is gone) and dropped by the next run.
APP_DB_PREFIX = "civicgrid_bench_"
#: What ``CivicgridDB`` children must not inherit: this shell's settings of the same names.
_SCRUBBED_ENV = ("DATABASE_URL", "DEBUG", "CIVICGRID_LOCATOR_RECHECK_SECONDS", "WEB_CONCURRENCY")


def admin_connect(timeout: int = 5) -> Any:
    """An autocommit connection to the server's maintenance database (``CIVICGRID_BENCH_PG``)."""
    import psycopg

    return psycopg.connect(_dsn(), autocommit=True, connect_timeout=timeout)


def database_url(dbname: str) -> str:
    """``DATABASE_URL`` for ``dbname`` on the bench server (for dj-database-url)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(_dsn())
    user = quote(str(info.get("user") or "postgres"), safe="")
    password = info.get("password")
    auth = user + (":" + quote(str(password), safe="") if password else "")
    host = str(info.get("host") or "127.0.0.1")
    host = quote(host, safe="") if host.startswith("/") else host
    port = str(info.get("port") or 5432)
    return f"postgres://{auth}@{host}:{port}/{dbname}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_databases(admin: Any) -> list[str]:
    """Drop ``civicgrid_bench_*_<pid>`` databases whose run (pid) is gone; local server only."""
    if not _is_local(_dsn()):
        return []
    dropped = []
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (APP_DB_PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        tail = name.rsplit("_", 1)[-1]
        if not tail.isdigit() or int(tail) == os.getpid() or _pid_alive(int(tail)):
            continue
        with suppress(Exception):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            dropped.append(name)
    return dropped


class _Template:
    """One migrated database with the demo district per run, copied for each benchmark."""

    name: str | None = None
    seconds: float = 0.0
    dropped: list[str] = []


def _child_env(dbname: str, var_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(
        DATABASE_URL=database_url(dbname),
        CIVICGRID_VAR_DIR=var_dir,
        DJANGO_SETTINGS_MODULE="civicgrid.settings",
        DEBUG="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _manage(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """``python -m civicgrid <args>`` in ``env``; its stdout. Raises with stderr's tail."""
    import sys

    from bench.common import ROOT

    run = subprocess.run(
        [sys.executable, "-m", "civicgrid", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"civicgrid {' '.join(args[:2])} failed ({run.returncode}):\n{tail}")
    return run.stdout


class CivicgridDB:
    """A throwaway PostgreSQL database with civicgrid migrated and the demo district loaded.

    ``CivicgridDB.open(ctx, "intake")`` makes ``civicgrid_bench_intake_<pid>`` as a copy
    of a template built once per run (``migrate`` + ``civicgrid demo``, about 12 s),
    with a temporary ``CIVICGRID_VAR_DIR``. ``env`` is the environment a civicgrid
    process needs to use it (``DATABASE_URL``, ``DEBUG=0``); ``manage`` and
    ``shell`` run the ``civicgrid`` command in it. ``close`` (also at exit) drops it.
    """

    def __init__(self, name: str, var_dir: str) -> None:
        self.name = name
        self.var_dir = var_dir
        self.env = _child_env(name, var_dir)
        self.dsn = _with_db(_dsn(), name)
        self.closed = False
        atexit.register(self.close)

    @classmethod
    def open(cls, ctx: Context, tag: str, *, template: str | None = None) -> CivicgridDB | None:
        """A new database ``civicgrid_bench_<tag>_<pid>``: a copy of the run's template
        (or of ``template``, waiting while others are connected to it)."""
        import tempfile

        try:
            admin = admin_connect()
        except Exception as exc:
            ctx.note(f"{tag}: skipped, cannot connect to PostgreSQL ({_dsn()}): {exc}".strip())
            return None
        try:
            if _Template.name is None:
                _Template.dropped = drop_stale_databases(admin)
                if _Template.dropped:
                    say(f"  dropped leftovers of killed runs: {', '.join(_Template.dropped)}")
                _build_template(admin)
            name = f"{APP_DB_PREFIX}{tag}_{os.getpid()}"
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if template is None:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_Template.name}"')
        finally:
            admin.close()
        db = cls(name, tempfile.mkdtemp(prefix=f"civicgrid-bench-{tag}-"))
        if template is not None:
            copy_database(template, name)
        return db

    def manage(self, *args: str, timeout: float = 900) -> str:
        return _manage(self.env, *args, timeout=timeout)

    def shell(self, code: str, timeout: float = 300) -> str:
        """Run ``code`` in ``civicgrid shell`` against this database; its stdout."""
        return self.manage("shell", "--no-imports", "-c", code, timeout=timeout)

    def connect(self, *, autocommit: bool = True) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=autocommit)

    def server_info(self) -> dict[str, Any]:
        with self.connect() as conn:
            names = (
                "server_version",
                "shared_buffers",
                "work_mem",
                "synchronous_commit",
                "fsync",
                "max_connections",
                "max_parallel_workers_per_gather",
                "jit",
                "random_page_cost",
            )
            return {n: _one(conn, f"SHOW {n}") for n in names}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            with admin_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except Exception as exc:  # best effort at exit
            say(f"  note: could not drop database {self.name}: {exc}")
        shutil.rmtree(self.var_dir, ignore_errors=True)


def copy_database(source: str, target: str, *, wait: float = 900.0) -> None:
    """``CREATE DATABASE target TEMPLATE source``, retried while someone else is
    connected to ``source`` (PostgreSQL refuses then), for up to ``wait`` seconds."""
    import psycopg

    deadline = time.monotonic() + wait
    with admin_connect() as admin:
        while True:
            try:
                admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3)


@dataclass
class _Shared:
    """The run's databases with generated cases, by size (``cases_db``)."""

    dbs: dict[int, tuple[CivicgridDB, dict[str, Any]]] = field(default_factory=dict)


_SHARED = _Shared()


def cases_db(
    ctx: Context, n: int, *, made_by: str | None = None, take: bool = False
) -> tuple[CivicgridDB, dict[str, Any]] | None:
    """The run's database with ``n`` cases from casegen (seed ``ctx.seed``): made by the
    first module that asks (``made_by``: its name, for the record) and shared by the
    next, so that the case list and the dashboards, which only read the cases, do not
    generate the same million twice. ``take``: the caller takes it over (it will
    change it, and drop it): a later module makes its own. Returns the database and
    what casegen made (``seconds``, ``made_by``); the run drops the databases left at
    its end (``close_shared``)."""
    from bench import casegen

    if n in _SHARED.dbs:
        found = _SHARED.dbs.pop(n) if take else _SHARED.dbs[n]
        return found
    who = made_by or ("dashboards" if take else "?")
    db = CivicgridDB.open(ctx, f"cases{n}")
    if db is None:
        return None
    t0 = time.perf_counter()
    try:
        with db.connect() as conn:
            # With the statistics facts: the dashboards, which take this database over,
            # need them, and casegen makes them in seconds (bench/casestats.py: minutes).
            made = casegen.generate(
                conn,
                n,
                seed=ctx.seed,
                facts=True,
                progress=lambda m: say(m) if not ctx.quick else None,
            )
    except BaseException:
        db.close()
        raise
    info = made.as_dict()
    info |= {"phases": info["seconds"], "seconds": time.perf_counter() - t0, "made_by": who}
    say(
        f"  casegen: {made.cases:,} cases, {made.events:,} events, "
        f"{made.deadlines:,} deadlines in {info['seconds']:.0f} s (the run's {n:,}-case database)"
    )
    if not take:
        _SHARED.dbs[n] = (db, info)
    return db, info


def close_shared() -> None:
    """Drop the run's shared case databases (``cases_db``) still open."""
    while _SHARED.dbs:
        _n, (db, _info) = _SHARED.dbs.popitem()
        db.close()


def _build_template(admin: Any) -> None:
    import tempfile

    name = f"{APP_DB_PREFIX}template_{os.getpid()}"
    var_dir = tempfile.mkdtemp(prefix="civicgrid-bench-template-")
    t0 = time.perf_counter()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    atexit.register(_drop_template, name)
    try:
        env = _child_env(name, var_dir)
        _manage(env, "migrate", "--no-input", "-v", "0")
        _manage(env, "demo")
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    _Template.name = name
    _Template.seconds = time.perf_counter() - t0
    say(f"  template database (migrate + demo) built in {_Template.seconds:.1f} s")


def _drop_template(name: str) -> None:
    try:
        with admin_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # best effort at exit
        say(f"  note: could not drop database {name}: {exc}")
