"""civicgrid settings: one module, read from environment variables.

Every value has a default that runs: without any environment the platform
serves from an SQLite database in ``var/`` with a secret key generated there.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


VAR_DIR = Path(env_str("CIVICGRID_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Written once, readable by the owner only; every process then shares it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "civicgrid.core",
    "civicgrid.accounts",
    "civicgrid.grids",
    "civicgrid.cases",
    "civicgrid.stats",
    "civicgrid.exchange",
    "civicgrid.open311",
    "civicgrid.webhooks",
    "civicgrid.web",
    "civicgrid.api",
    "civicgrid.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "civicgrid.web.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "civicgrid.api.middleware.IntegrationAccessLog",
]

ROOT_URLCONF = "civicgrid.urls"
WSGI_APPLICATION = "civicgrid.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "civicgrid.web.context_processors.platform",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'civicgrid.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", DEFAULT_SQLITE_URL), conn_max_age=env_int("CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the web server read while the worker writes.
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=10000;"
                "PRAGMA foreign_keys=ON;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# Read replicas (PostgreSQL streaming replication): comma-separated URLs, each an alias
# replica1, replica2 … Only code that opts in reads from them — the statistics pages,
# exports and `civicgrid stats` (civicgrid/core/routers.py); everything else, and every
# write, uses the primary. In tests a replica mirrors the primary.
CIVICGRID_READ_REPLICAS: list[str] = []
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS", []), start=1):
    _alias = f"replica{_number}"
    DATABASES[_alias] = dj_database_url.parse(_url, conn_max_age=env_int("CONN_MAX_AGE", 60))
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
    CIVICGRID_READ_REPLICAS.append(_alias)
DATABASE_ROUTERS = ["civicgrid.core.routers.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Background work ----------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env_str("CIVICGRID_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# A worker is reported healthy when it wrote a heartbeat within this many seconds.
CIVICGRID_WORKER_HEARTBEAT_SECONDS = env_float("CIVICGRID_WORKER_HEARTBEAT_SECONDS", 10.0)
CIVICGRID_WORKER_STALE_SECONDS = env_float("CIVICGRID_WORKER_STALE_SECONDS", 60.0)
# A task marked running whose worker wrote no heartbeat for this long (and that was
# claimed at least this long ago) is orphaned: its worker was killed. Keep it well
# above CIVICGRID_WORKER_HEARTBEAT_SECONDS and any database hiccup (docs/deployment.md).
CIVICGRID_TASK_LEASE_SECONDS = env_float("CIVICGRID_TASK_LEASE_SECONDS", 300.0)
# How often each worker looks for orphaned tasks.
CIVICGRID_TASK_REAP_SECONDS = env_float("CIVICGRID_TASK_REAP_SECONDS", 30.0)
# An orphaned task is queued again until it has been claimed this many times, then
# marked failed (a task that kills its worker every time must not kill them all).
CIVICGRID_TASK_MAX_ATTEMPTS = env_int("CIVICGRID_TASK_MAX_ATTEMPTS", 3)
# Finished task results are deleted after this many days (successful, failed).
CIVICGRID_TASK_RESULTS_KEEP_DAYS = env_float("CIVICGRID_TASK_RESULTS_KEEP_DAYS", 7.0)
CIVICGRID_TASK_FAILURES_KEEP_DAYS = env_float("CIVICGRID_TASK_FAILURES_KEEP_DAYS", 30.0)
# How often each worker enqueues the clean-up jobs (old task results, old deliveries).
CIVICGRID_CLEANUP_SECONDS = env_float("CIVICGRID_CLEANUP_SECONDS", 3600.0)

# --- Outbound webhooks (docs/webhooks.md) ---------------------------------------
# How often each worker looks for due deliveries; how long one POST may take; how
# long a process trusts "there is no active subscription" before asking again.
CIVICGRID_WEBHOOKS_POLL_SECONDS = env_float("CIVICGRID_WEBHOOKS_POLL_SECONDS", 5.0)
CIVICGRID_WEBHOOKS_TIMEOUT_SECONDS = env_float("CIVICGRID_WEBHOOKS_TIMEOUT_SECONDS", 10.0)
CIVICGRID_WEBHOOKS_RECHECK_SECONDS = env_float("CIVICGRID_WEBHOOKS_RECHECK_SECONDS", 5.0)
# A delivery still failing this many hours after its first attempt is marked failed.
CIVICGRID_WEBHOOKS_GIVE_UP_HOURS = env_float("CIVICGRID_WEBHOOKS_GIVE_UP_HOURS", 24.0)
# Delivered deliveries (and their attempts) are deleted this many days after delivery;
# pending, failed and cancelled ones are kept.
CIVICGRID_WEBHOOKS_KEEP_DAYS = env_float("CIVICGRID_WEBHOOKS_KEEP_DAYS", 30.0)

# --- Language and time ------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env_bool("CIVICGRID_PLAIN_STATIC", False)
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Media (photos) on S3-compatible storage (AWS S3, MinIO, Aliyun OSS, Tencent COS …)
# when a bucket is named; otherwise files in MEDIA_ROOT. Photos are always served
# through civicgrid's views (access checked), never by public URLs.
CIVICGRID_S3_BUCKET = env_str("CIVICGRID_S3_BUCKET")
if CIVICGRID_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": CIVICGRID_S3_BUCKET,
            "endpoint_url": env_str("CIVICGRID_S3_ENDPOINT_URL") or None,
            "region_name": env_str("CIVICGRID_S3_REGION") or None,
            "access_key": env_str("CIVICGRID_S3_ACCESS_KEY") or None,
            "secret_key": env_str("CIVICGRID_S3_SECRET_KEY") or None,
            "location": env_str("CIVICGRID_S3_PREFIX", "media"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }


def cache_from_url(url: str) -> dict[str, object]:
    """One cache from ``CACHE_URL``: redis://…, rediss://…, db://TABLE or locmem://."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in {"redis", "rediss", "unix"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if scheme == "db":
        table = url.split("://", 1)[1].strip("/") or "civicgrid_cache"
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": table}
    if scheme == "locmem" or not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ValueError(
        f"CACHE_URL: unknown cache scheme {scheme!r} (redis://, db://TABLE, locmem://)"
    )


# The cache: local memory per process by default. With several processes or nodes the
# rate limits (portal, integration keys) must count in a shared cache: CACHE_URL=
# redis://host:6379/0 (Redis), or db://civicgrid_cache (a table in the database;
# `civicgrid createcachetable` makes it, `make run` too).
CACHE_URL = env_str("CACHE_URL")
CACHES = {"default": cache_from_url(CACHE_URL)}

# --- Security defaults for a production server --------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("CIVICGRID_BEHIND_TLS_PROXY") else None
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Geography ----------------------------------------------------------------
# XYZ tile URL template for the basemap ({z}/{x}/{y}); empty means no basemap and
# nothing fetched from outside. 天地图: set CIVICGRID_BASEMAP_URL to its vec_w URL with tk.
CIVICGRID_BASEMAP_URL = env_str("CIVICGRID_BASEMAP_URL", "")
CIVICGRID_BASEMAP_ATTRIBUTION = env_str("CIVICGRID_BASEMAP_ATTRIBUTION", "")
# Extra annotation layer (天地图 cva), optional.
CIVICGRID_BASEMAP_LABELS_URL = env_str("CIVICGRID_BASEMAP_LABELS_URL", "")

# Tolerances of grid validation.
CIVICGRID_GRID_TOLERANCES = {
    # How far (m²) a child may stick out of its parent before it is refused.
    "outside_parent_m2": env_float("CIVICGRID_GRID_OUTSIDE_PARENT_M2", 1.0),
    # How much (m²) two siblings may overlap before they are refused.
    "sibling_overlap_m2": env_float("CIVICGRID_GRID_SIBLING_OVERLAP_M2", 1.0),
    # The bounding box of the accepted coordinates: China and its seas.
    "lon_min": env_float("CIVICGRID_LON_MIN", 73.0),
    "lon_max": env_float("CIVICGRID_LON_MAX", 136.0),
    "lat_min": env_float("CIVICGRID_LAT_MIN", 3.0),
    "lat_max": env_float("CIVICGRID_LAT_MAX", 54.0),
}
# Digits a level-3 grid appends to its community's code.
CIVICGRID_GRID_SEQUENCE_DIGITS = env_int("CIVICGRID_GRID_SEQUENCE_DIGITS", 3)
# Projected CRS for areas: "auto" picks the CGCS2000 3-degree Gauss-Krüger zone of each
# polygon (EPSG:4534-4554; Lanzhou falls in EPSG:4544, CM 105°E); or name one, e.g. EPSG:4544.
CIVICGRID_AREA_CRS = env_str("CIVICGRID_AREA_CRS", "auto")
# How often (seconds) a process checks the grid version stamp to refresh its locator.
CIVICGRID_LOCATOR_RECHECK_SECONDS = env_float("CIVICGRID_LOCATOR_RECHECK_SECONDS", 2.0)

# --- Cases ----------------------------------------------------------------------
# Time limits used when a category has none of its own: per urgency, per stage,
# (amount, unit) with unit work_hours (工作时), work_days (工作日) or natural_hours.
CIVICGRID_DEFAULT_TIME_LIMITS = {
    "normal": {
        "accept": (1, "work_hours"),
        "dispatch": (1, "work_hours"),
        "acknowledge": (2, "work_hours"),
        "handle": (5, "work_days"),
        "verify": (1, "work_days"),
        "close": (4, "work_hours"),
        "follow_up": (3, "work_days"),
    },
    "urgent": {
        "accept": (0.5, "work_hours"),
        "dispatch": (0.5, "work_hours"),
        "acknowledge": (1, "work_hours"),
        "handle": (1, "work_days"),
        "verify": (4, "work_hours"),
        "close": (2, "work_hours"),
        "follow_up": (1, "work_days"),
    },
    "emergency": {
        "accept": (0.25, "natural_hours"),
        "dispatch": (0.25, "natural_hours"),
        "acknowledge": (0.5, "natural_hours"),
        "handle": (4, "natural_hours"),
        "verify": (2, "natural_hours"),
        "close": (1, "natural_hours"),
        "follow_up": (24, "natural_hours"),
    },
}
# A grid worker's passed verification closes the case at once (else a supervisor closes).
CIVICGRID_CLOSE_ON_VERIFY = env_bool("CIVICGRID_CLOSE_ON_VERIFY", True)
# How often (seconds) a process checks the work calendar tables for edits.
CIVICGRID_CALENDAR_RECHECK_SECONDS = env_float("CIVICGRID_CALENDAR_RECHECK_SECONDS", 2.0)
# Possible duplicates: the same category within this distance (m) and time (h).
CIVICGRID_DUPLICATE_METERS = env_float("CIVICGRID_DUPLICATE_METERS", 100.0)
CIVICGRID_DUPLICATE_HOURS = env_float("CIVICGRID_DUPLICATE_HOURS", 72.0)
# Photos attached to cases: the largest file taken (bytes), the most pixels an image
# may decode to (refuses decompression bombs), the longest side kept (larger photos
# are scaled down), the thumbnail's longest side, and the most attachments per case.
CIVICGRID_MAX_UPLOAD_BYTES = env_int("CIVICGRID_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
CIVICGRID_MAX_IMAGE_PIXELS = env_int("CIVICGRID_MAX_IMAGE_PIXELS", 50_000_000)
CIVICGRID_PHOTO_MAX_SIDE = env_int("CIVICGRID_PHOTO_MAX_SIDE", 4096)
CIVICGRID_THUMBNAIL_SIZE = env_int("CIVICGRID_THUMBNAIL_SIZE", 320)
CIVICGRID_MAX_ATTACHMENTS_PER_CASE = env_int("CIVICGRID_MAX_ATTACHMENTS_PER_CASE", 30)

# --- Open311 GeoReport v2 (/open311/v2/) ----------------------------------------------
# Jurisdiction ids a deployment answers to besides the root grid codes themselves:
# "id=rootcode,id2=rootcode2", e.g. "lanzhou.qilihe=620103".
CIVICGRID_OPEN311_JURISDICTIONS = dict(
    item.split("=", 1) for item in env_list("CIVICGRID_OPEN311_JURISDICTIONS", []) if "=" in item
)
# The jurisdiction of calls without jurisdiction_id when several districts are hosted
# (an id or a root grid code); with one root grid that one is the default anyway.
CIVICGRID_OPEN311_DEFAULT_JURISDICTION = env_str("CIVICGRID_OPEN311_DEFAULT_JURISDICTION", "")
# What discovery.{xml,json} tells clients.
CIVICGRID_OPEN311_CONTACT = env_str("CIVICGRID_OPEN311_CONTACT", "")
CIVICGRID_OPEN311_KEY_SERVICE = env_str("CIVICGRID_OPEN311_KEY_SERVICE", "")
CIVICGRID_OPEN311_ENDPOINT_TYPE = env_str("CIVICGRID_OPEN311_ENDPOINT_TYPE", "production")

# --- Citizen portal ---------------------------------------------------------------
# Public pages (/report/, /track/) for citizens without an account. Rate limits count
# in Django's cache (CIVICGRID_PORTAL_CACHE names the CACHES alias): per client
# address and per phone number, in fixed windows of CIVICGRID_PORTAL_WINDOW_SECONDS;
# 0 turns a limit off. With several processes or machines the cache must be shared
# (database or Redis cache); the default local-memory cache counts per process.
CIVICGRID_PORTAL_CACHE = env_str("CIVICGRID_PORTAL_CACHE", "default")
CIVICGRID_PORTAL_WINDOW_SECONDS = env_int("CIVICGRID_PORTAL_WINDOW_SECONDS", 3600)
CIVICGRID_PORTAL_REPORTS_PER_ADDRESS = env_int("CIVICGRID_PORTAL_REPORTS_PER_ADDRESS", 5)
CIVICGRID_PORTAL_REPORTS_PER_PHONE = env_int("CIVICGRID_PORTAL_REPORTS_PER_PHONE", 3)
CIVICGRID_PORTAL_LOOKUPS_PER_ADDRESS = env_int("CIVICGRID_PORTAL_LOOKUPS_PER_ADDRESS", 30)
# Reverse proxies in front of the application that append to X-Forwarded-For; 0 means
# the client address is REMOTE_ADDR (never trust the header without a proxy setting it).
CIVICGRID_PORTAL_PROXY_COUNT = env_int("CIVICGRID_PORTAL_PROXY_COUNT", 0)
# Photos per report (each at most CIVICGRID_MAX_UPLOAD_BYTES).
CIVICGRID_PORTAL_MAX_PHOTOS = env_int("CIVICGRID_PORTAL_MAX_PHOTOS", 6)
# How long (minutes) a browser that proved code and phone may see the case without
# asking again (kept in its session).
CIVICGRID_PORTAL_ACCESS_MINUTES = env_int("CIVICGRID_PORTAL_ACCESS_MINUTES", 30)

# --- Statistics ---------------------------------------------------------------------
# Every number of the statistics and evaluations (weights, score bands, satisfied
# levels, denominators, public and 12345 channels, domains, topics, rollup levels) has
# a default in civicgrid/stats/conf.py (see docs/statistics.md). Override any of them
# here (a dict) or in a JSON file named by CIVICGRID_STATS_CONFIG.
CIVICGRID_STATS: dict[str, object] = {}
CIVICGRID_STATS_CONFIG = env_str("CIVICGRID_STATS_CONFIG", "")
