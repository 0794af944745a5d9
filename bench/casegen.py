"""Realistic cases on PostgreSQL, fast: COPY and set-based SQL, not the ORM.

    .venv/bin/python bench/casegen.py --cases 1000000            # a temporary database
    .venv/bin/python bench/casegen.py --cases 10000000 --keep    # keep it (prints its name)
    .venv/bin/python bench/casegen.py --cases 200000 --dsn "dbname=mydb"  # a migrated db

``generate(conn, n, ...)`` adds ``n`` cases to a database that has civicgrid's
tables and a grid tree with categories and units (``migrate`` + ``civicgrid
demo``). Every case goes through a story of the workflow (``cases/workflow.py``):
intake by its channel, accept or reject, dispatch to the suggested unit (or the
territorial office), sometimes sent back and re-dispatched, acknowledged, handled,
sometimes reworked, verified and closed, followed up; some are merged, voided
(with their approval), parked or urged. Each step comes some time after the one
before; the steps that lie in the future at ``now`` have not happened, so recent
cases are still open in whatever status their story reached. The generator writes
what the case services would have written: the case row with its status, lead
unit, counters, current ``due_at`` and overdue flag; one event per step (actor and
role as ``engine.acting_role`` records them, payloads as the services write them);
one deadline per stage round, due by the category's time limit for the case's
urgency on the work calendar of the database (the holidays, make-up workdays and
office hours, computed vectorised exactly as ``cases.workcalendar.due_at`` does);
the stages that ran late marked overdue with the sweep's event, as
``cases.services.mark_overdue`` would have. Staff who act in the stories
(call-takers, dispatchers, supervisors, two handlers per unit) are added when the
database has too few.

Cases are spread over the level-3 grids (each grid equally likely, so the dense
urban grids get the density), at a uniform point inside the grid's polygon, with
subcategories drawn from the shipped catalogue with a skewed (Zipf-like) frequency,
received over ``days`` days before ``now`` with a weekly and daily rhythm. Ids
follow reception time, as they do in a live system, and events and deadlines are
written in time order within each chunk of cases.

With ``facts=True`` (``--facts``) it also writes each case's statistics facts
(``stats_casefact``, ``stats_personfact``: what ``stats.facts.compute`` stores) from
the same arrays, see "statistics facts" below. Not written: the rollups, assisting
units, photos, the NOTE event a merge adds to its target. Table and column names come
from the models' ``_meta``; a new model field with a default is filled with its
default.

How it is fast: per chunk of cases NumPy draws everything (the stories are a few
hundred templates; a case is a template, a reception time and random delays), the
numeric plans go to temporary tables by binary COPY built from NumPy arrays, and one
``INSERT … SELECT`` per table turns them into rows, with the secondary indexes and
foreign keys of the four tables dropped during the load and rebuilt after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import shutil
import sys
import time
import zoneinfo
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import say, setup_django  # noqa: E402

EPOCH_2000 = 946_684_800  # 2000-01-01T00:00:00Z in Unix seconds
NULL_TS = np.iinfo(np.int64).min  # binary COPY of this timestamptz is -infinity: our NULL
DEFAULT_CHUNK = 250_000


# -- model metadata ------------------------------------------------------------------------
@dataclass(frozen=True)
class Tables:
    """Table and column names of the models casegen writes, from their ``_meta``."""

    models: dict[str, Any]

    def table(self, model: str) -> str:
        return q(self.models[model]._meta.db_table)

    def col(self, model: str, name: str) -> str:
        return q(self.models[model]._meta.get_field(name).column)

    def raw_table(self, model: str) -> str:
        return str(self.models[model]._meta.db_table)

    def column(self, model: str, name: str) -> str:
        return str(self.models[model]._meta.get_field(name).column)

    def field_of(self, model: str, column: str) -> str:
        """The name of the field stored in ``column`` (``id`` for the primary key)."""
        for f in self.models[model]._meta.concrete_fields:
            if f.column == column:
                return str(f.name)
        raise KeyError(column)

    def others(self, model: str, known: Sequence[str]) -> list[tuple[str, Any]]:
        """(column name, constant) for every concrete field not in ``known`` (its
        default, or NULL); raises for a required field without a default."""
        out: list[tuple[str, Any]] = []
        meta = self.models[model]._meta
        for f in meta.concrete_fields:
            if f.primary_key or f.name in known:
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                out.append((f.column, dt.datetime.now(dt.UTC)))
            elif f.has_default():
                out.append((f.column, _jsonable(f.get_default())))
            elif f.null:
                out.append((f.column, None))
            elif f.empty_strings_allowed and f.get_default() == "":
                out.append((f.column, ""))
            else:
                raise RuntimeError(
                    f"casegen: {meta.label}.{f.name} has no default and is not nullable; "
                    "teach bench/casegen.py what to write into it"
                )
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict | list):
        from psycopg.types.json import Jsonb

        return Jsonb(value)
    return value


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def tables() -> Tables:
    from django.apps import apps

    setup_django_once()
    names = {
        "Case": "cases.Case",
        "CaseEvent": "cases.CaseEvent",
        "Deadline": "cases.Deadline",
        "Approval": "cases.Approval",
        "Category": "cases.Category",
        "TimeLimit": "cases.TimeLimit",
        "WorkCalendarDay": "cases.WorkCalendarDay",
        "OfficeHours": "cases.OfficeHours",
        "Grid": "grids.Grid",
        "HandlingUnit": "grids.HandlingUnit",
        "User": "accounts.User",
        "Membership": "accounts.Membership",
        "CaseFact": "stats.CaseFact",
        "PersonFact": "stats.PersonFact",
    }
    return Tables({k: apps.get_model(v) for k, v in names.items()})


def setup_django_once() -> None:
    """Django is needed for ``_meta`` and settings only; any database will do."""
    from django.conf import settings

    if not settings.configured:
        setup_django()
    else:
        import django
        from django.apps import apps

        if not apps.ready:
            django.setup()


# -- the work calendar, vectorised ----------------------------------------------------------
WORK_HOURS, WORK_DAYS, NATURAL_HOURS = 0, 1, 2
UNIT_CODES = {"work_hours": WORK_HOURS, "work_days": WORK_DAYS, "natural_hours": NATURAL_HOURS}
FALLBACK_PERIODS = ((8 * 3600 + 1800, 12 * 3600), (14 * 3600, 17 * 3600 + 1800))


class Calendar:
    """``cases.workcalendar.due_at`` for arrays, on one database's calendar tables.

    Days from ``first`` to ``last`` (local dates); each has a workday flag (Monday to
    Friday unless the day table says otherwise) and two office periods (the first
    active ``OfficeHours`` scheme covering its month-day, else the fallback hours).
    Office time is a coordinate: seconds of office time since ``first``; adding
    working hours is adding to it and mapping back. Times are Unix seconds.
    """

    def __init__(
        self,
        *,
        tz: str,
        first: dt.date,
        last: dt.date,
        exceptions: dict[dt.date, bool],
        schemes: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]],
    ) -> None:
        zone = zoneinfo.ZoneInfo(tz)
        n = (last - first).days + 1
        self.first = first
        days = [first + dt.timedelta(days=i) for i in range(n + 1)]
        self.midnight = np.array(
            [int(dt.datetime.combine(d, dt.time(), zone).timestamp()) for d in days],
            dtype=np.int64,
        )
        self.ymd = np.array([d.year * 10000 + d.month * 100 + d.day for d in days[:n]])
        work = np.array(
            [exceptions.get(d, d.weekday() < 5) for d in days[:n]],
            dtype=bool,
        )
        periods = np.empty((n, 4), dtype=np.int64)
        by_md: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for i, d in enumerate(days[:n]):
            md = (d.month, d.day)
            if md not in by_md:
                found = FALLBACK_PERIODS[0] + FALLBACK_PERIODS[1]
                for start, end, p in schemes:
                    covers = start <= md <= end if start <= end else md >= start or md <= end
                    if covers:
                        found = p
                        break
                by_md[md] = found
            periods[i] = by_md[md]
        self.work = work
        self.p = periods
        self.len1 = periods[:, 1] - periods[:, 0]
        self.length = np.where(work, self.len1 + periods[:, 3] - periods[:, 2], 0)
        self.cum = np.concatenate([[0], np.cumsum(self.length)[:-1]])
        self.cum_end = self.cum + self.length
        self.cw = np.cumsum(work)
        #: Each day, and the first day of its month, as days since 2000-01-01 (a date's
        #: binary COPY form).
        since = (first - dt.date(2000, 1, 1)).days
        self.date2000 = since + np.arange(n, dtype=np.int64)
        self.month2000 = np.array(
            [(d.replace(day=1) - dt.date(2000, 1, 1)).days for d in days[:n]], dtype=np.int64
        )

    @classmethod
    def load(cls, conn: Any, t: Tables, tz: str, first: dt.date, last: dt.date) -> Calendar:
        day = t.table("WorkCalendarDay")
        rows = conn.execute(
            f"SELECT {t.col('WorkCalendarDay', 'date')}, {t.col('WorkCalendarDay', 'is_workday')} "
            f"FROM {day}"
        ).fetchall()
        oh = "OfficeHours"
        fields = (
            "valid_from",
            "valid_to",
            "morning_start",
            "morning_end",
            "afternoon_start",
            "afternoon_end",
        )
        cols = ", ".join(t.col(oh, f) for f in fields)
        schemes = []
        for vf, vt, *times in conn.execute(
            f"SELECT {cols} FROM {t.table(oh)} WHERE {t.col(oh, 'is_active')} "
            f"ORDER BY {t.col(oh, 'valid_from')}, {q('id')}"
        ).fetchall():
            try:
                start = tuple(int(x) for x in vf.split("-"))
                end = tuple(int(x) for x in vt.split("-"))
            except ValueError:
                continue
            secs = tuple(x.hour * 3600 + x.minute * 60 + x.second for x in times)
            schemes.append((start, end, secs))
        return cls(
            tz=tz,
            first=first,
            last=last,
            exceptions=dict(rows),
            schemes=schemes,  # type: ignore[arg-type]
        )

    def day_of(self, t: np.ndarray) -> np.ndarray:
        d = np.searchsorted(self.midnight, t, side="right") - 1
        if len(d) and (d.min() < 0 or d.max() >= len(self.work)):
            raise ValueError("a time outside the calendar's range")
        return d

    def office(self, t: np.ndarray, d: np.ndarray | None = None) -> np.ndarray:
        """Office seconds of the calendar from ``first`` up to the moments ``t`` (of
        days ``d``): the coordinate ``due`` adds working hours on, and whose difference
        is ``workcalendar.working_seconds_between``."""
        if d is None:
            d = self.day_of(t)
        sod = t - self.midnight[d]
        p = self.p[d]
        inside = np.clip(sod - p[:, 0], 0, self.len1[d]) + np.clip(
            sod - p[:, 2], 0, p[:, 3] - p[:, 2]
        )
        out: np.ndarray = self.cum[d] + np.where(self.work[d], inside, 0)
        return out

    def due(self, start: np.ndarray, amount: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Deadlines (Unix seconds) of ``amount`` ``unit`` from ``start``."""
        out = np.empty(len(start), dtype=np.int64)
        nat = unit == NATURAL_HOURS
        out[nat] = start[nat] + np.rint(amount[nat] * 3600).astype(np.int64)
        d = self.day_of(start)
        wd = unit == WORK_DAYS
        if wd.any():
            target = self.cw[d[wd]] + amount[wd].astype(np.int64)
            day = np.searchsorted(self.cw, target, side="left")
            if day.max(initial=0) >= len(self.work):
                raise ValueError("a deadline beyond the calendar's range")
            out[wd] = self.midnight[day] + self.p[day, 3]
            zero = amount[wd] == 0
            out[np.flatnonzero(wd)[zero]] = start[wd][zero]
        wh = unit == WORK_HOURS
        if wh.any():
            s = start[wh]
            target = self.office(s, d[wh]) + np.rint(amount[wh] * 3600).astype(np.int64)
            day = np.searchsorted(self.cum_end, target, side="left")
            if day.max(initial=0) >= len(self.work):
                raise ValueError("a deadline beyond the calendar's range")
            r = target - self.cum[day]
            first_half = r <= self.len1[day]
            sod_due = np.where(
                first_half, self.p[day, 0] + r, self.p[day, 2] + (r - self.len1[day])
            )
            res = self.midnight[day] + sod_due
            zero = amount[wh] == 0
            res[zero] = s[zero]
            out[wh] = res
        return out


# -- the stories ----------------------------------------------------------------------------
STAGE_OF_STATUS = {
    "new": "accept",
    "filed": "dispatch",
    "returned": "dispatch",
    "dispatched": "acknowledge",
    "in_progress": "handle",
    "handled": "verify",
}
#: Delay before each step: (median seconds, lognormal sigma).
DELAYS = {
    "create": (0, 0.0),
    "accept": (8 * 60, 1.0),
    "reject": (20 * 60, 1.0),
    "merge": (30 * 60, 1.0),
    "dispatch": (25 * 60, 1.1),
    "send_back": (3 * 3600, 1.0),
    "redispatch": (40 * 60, 1.0),
    "acknowledge": (50 * 60, 1.2),
    "urge": (20 * 3600, 0.8),
    "park": (30 * 3600, 0.8),
    "handle": (28 * 3600, 1.1),
    "verify_fail": (8 * 3600, 0.9),
    "verify_pass": (7 * 3600, 0.9),
    "follow_up": (30 * 3600, 0.7),
    "request_void": (2 * 3600, 1.0),
    "approve_void": (60 * 60, 1.0),
}
MAX_DELAY = 40 * 86400
#: Urgent and emergency cases move faster: their delays are scaled by this.
URGENCY_PACE = np.array([1.0, 0.3, 0.08])
#: A step that ends a stage takes this share of the stage's time limit at the median
#: (a work hour counts 1.5 hours, a work day 1.3 days), lognormal with this sigma.
STAGE_SHARE = 0.25
STAGE_SIGMA = 0.7
#: Which role takes each action, as ``acting_role`` records it ("" for none).
ROLE_OF = {
    "create": "",
    "accept": "call_taker",
    "reject": "call_taker",
    "merge": "call_taker",
    "follow_up": "call_taker",
    "dispatch": "dispatcher",
    "redispatch": "dispatcher",
    "request_void": "dispatcher",
    "acknowledge": "unit_handler",
    "send_back": "unit_handler",
    "handle": "unit_handler",
    "verify_pass": "grid_worker",
    "verify_fail": "grid_worker",
    "urge": "supervisor",
    "park": "supervisor",
    "approve_void": "supervisor",
    "overdue": "",
}
#: The services' ``public=`` for each action's event.
PUBLIC = {
    "create",
    "accept",
    "reject",
    "merge",
    "dispatch",
    "redispatch",
    "acknowledge",
    "handle",
    "verify_pass",
}
REASONS = {
    "reject": ["不属于本平台受理范围", "诉求人撤回诉求", "信息不全且无法联系诉求人"],
    "send_back": ["非本单位职责范围，请改派", "地址不在本单位服务范围内"],
    "handle": [
        "已安排人员现场处理完毕",
        "已清理完毕，现场恢复整洁",
        "已维修更换，恢复正常使用",
        "已现场劝离并进行教育",
        "已联系产权单位整改完毕",
    ],
    "verify_fail": ["现场核查未整改到位，请返工"],
    "urge": ["群众多次来电反映，请加快处置"],
    "park": ["需多部门协调，暂缓处置"],
    "request_void": ["重复登记，申请作废"],
    "approve_void": ["重复登记，申请作废"],
}
REASON_LIST = sorted({r for rs in REASONS.values() for r in rs})
DETAILS = [
    "居民来电反映{p}附近问题较为突出，影响群众正常生活，请尽快处理",
    "{p}门口长期存在该问题，多次反映未见改善",
    "网格员巡查发现{p}一带存在此情况，需相关单位处置",
    "市民反映{p}周边夜间情况严重，希望尽快解决",
    "{p}小区内出现该问题，已影响居民出行安全",
    "路过{p}时发现，疑似已持续数日",
    "{p}附近商户反映该问题，希望相关部门协调处理",
    "来电人称{p}楼下问题反复出现，要求彻底整改",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
CHANNELS = ["hotline", "grid_worker", "web", "api", "camera", "import"]
CHANNEL_WEIGHTS = [0.62, 0.24, 0.06, 0.03, 0.04, 0.01]
REQUEST_TYPES = ["", "complaint", "help", "enquiry", "report", "suggestion"]
REQUEST_WEIGHTS = [0.0, 0.45, 0.25, 0.15, 0.10, 0.05]
URGENCIES = ["normal", "urgent", "emergency"]
URGENCY_WEIGHTS = [0.9, 0.08, 0.02]
#: Relative case volume per hour of the day (local time) and per weekday (Mon..Sun).
HOURLY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 3, 7, 10, 10, 9, 6, 5, 8, 9, 9, 8, 6, 5, 4, 3, 2, 1.5]
)
WEEKLY = np.array([1.1, 1.05, 1.0, 1.0, 1.0, 0.75, 0.7])


@dataclass(frozen=True)
class Step:
    action: str
    status: str  # after the step
    stage_open: str  # the stage this step opens ("" for none)
    finishes: bool  # whether it finishes the running stage
    pauses: bool = False


def _story(flags: tuple[int, ...]) -> list[Step]:
    """One story: (worker report, intake outcome, returned, urged, parked, rework,
    followed up, voided at)."""
    worker, outcome, returned, urged, parked, rework, follow, void_at = flags
    steps: list[Step] = []
    status = "filed" if worker else "new"
    steps.append(Step("create", status, STAGE_OF_STATUS[status], False))

    def go(action: str, to: str | None) -> None:
        nonlocal status
        if to is None or to == status:
            steps.append(Step(action, status, "", False))
            return
        steps.append(Step(action, to, STAGE_OF_STATUS.get(to, ""), True))
        status = to

    def void() -> list[Step]:
        go("request_void", None)
        go("approve_void", "voided")
        return steps

    if not worker:
        if outcome == 1:
            go("reject", "rejected")
            return steps
        if outcome == 2:
            go("merge", "merged")
            return steps
        if void_at == 1:
            return void()
        go("accept", "filed")
    if outcome == 3:
        go("merge", "merged")
        return steps
    if worker and void_at == 1:
        return void()
    go("dispatch", "dispatched")
    if returned:
        go("send_back", "returned")
        go("redispatch", "dispatched")
    go("acknowledge", "in_progress")
    if urged:
        go("urge", None)
    if parked:
        steps.append(Step("park", "parked", "", False, pauses=True))
        return steps
    if void_at == 2:
        return void()
    go("handle", "handled")
    if rework:
        go("verify_fail", "in_progress")
        go("handle", "handled")
    go("verify_pass", "closed")
    if follow:
        go("follow_up", None)
    return steps


#: Radices of the story flags, in ``_story``'s order.
RADICES = (2, 4, 2, 2, 2, 2, 2, 3)


@dataclass
class Stories:
    """Every story as arrays: ``[story, slot]``; -1 or "" where the story has ended."""

    count: int
    slots: int
    action: np.ndarray  # index into ACTIONS
    status: np.ndarray  # index into STATUSES: the status after the slot
    stage: np.ndarray  # index into STAGES of the stage opened, -1 none
    close: np.ndarray  # the slot that finishes the stage opened here (slots: none)
    running: np.ndarray  # the stage the slot's step finishes, -1 none
    pause: np.ndarray  # the slot that pauses it (slots: none)
    from_status: np.ndarray
    length: np.ndarray
    by_flags: np.ndarray  # mixed-radix flags code -> story


ACTIONS = [
    "create",
    "accept",
    "reject",
    "merge",
    "dispatch",
    "send_back",
    "redispatch",
    "acknowledge",
    "urge",
    "park",
    "handle",
    "verify_fail",
    "verify_pass",
    "follow_up",
    "request_void",
    "approve_void",
    "overdue",
]
STATUSES = [
    "new",
    "rejected",
    "filed",
    "dispatched",
    "in_progress",
    "returned",
    "handled",
    "closed",
    "parked",
    "voided",
    "merged",
]
STAGES = ["accept", "dispatch", "acknowledge", "handle", "verify", "close"]
A = {a: i for i, a in enumerate(ACTIONS)}
S = {s: i for i, s in enumerate(STATUSES)}


def build_stories() -> Stories:
    unique: dict[tuple[Step, ...], int] = {}
    codes = []
    for flags in itertools.product(*(range(r) for r in RADICES)):
        story = tuple(_story(flags))
        codes.append(unique.setdefault(story, len(unique)))
    stories = list(unique)
    k = max(len(s) for s in stories)
    n = len(stories)
    action = np.full((n, k), -1, dtype=np.int16)
    status = np.full((n, k), -1, dtype=np.int16)
    from_status = np.full((n, k), -1, dtype=np.int16)
    stage = np.full((n, k), -1, dtype=np.int16)
    close = np.full((n, k), k, dtype=np.int16)
    pause = np.full((n, k), k, dtype=np.int16)
    running_stage = np.full((n, k), -1, dtype=np.int16)
    length = np.zeros(n, dtype=np.int16)
    for i, story in enumerate(stories):
        length[i] = len(story)
        running = -1
        previous = ""
        for j, step in enumerate(story):
            if step.finishes and running >= 0:
                running_stage[i, j] = stage[i, running]
            action[i, j] = A[step.action]
            status[i, j] = S[step.status]
            from_status[i, j] = S[previous] if previous else -1
            previous = step.status
            if step.finishes and running >= 0:
                close[i, running] = j
                running = -1
            if step.pauses and running >= 0:
                pause[i, running] = j
            if step.stage_open:
                stage[i, j] = STAGES.index(step.stage_open)
                running = j
    return Stories(
        count=n,
        slots=k,
        action=action,
        status=status,
        stage=stage,
        close=close,
        running=running_stage,
        pause=pause,
        from_status=from_status,
        length=length,
        by_flags=np.array(codes, dtype=np.int32),
    )


# -- what the database holds ----------------------------------------------------------------
@dataclass
class World:
    grid_ids: np.ndarray
    grid_paths: list[str]
    grid_geoms: np.ndarray
    grid_boxes: np.ndarray  # (n, 4)
    grid_names: list[str]
    grid_places: list[str]  # "subdistrict community" for addresses
    grid_subdistrict: np.ndarray  # index into unit ids of the territorial unit
    cat_ids: np.ndarray
    cat_codes: list[str]
    cat_names: list[str]
    cat_weights: np.ndarray
    limit_amount: np.ndarray  # [cat, urgency, stage] float
    limit_unit: np.ndarray  # [cat, urgency, stage] int
    suggested: np.ndarray  # [cat, grid] unit id
    territorial: np.ndarray  # [grid] unit id
    unit_ids: np.ndarray
    staff: dict[str, np.ndarray]  # role -> user ids (grid-scoped roles at the root)
    handlers: dict[int, np.ndarray]  # unit id -> user ids
    workers: list[np.ndarray]  # grid index -> user ids
    tz: str


def _fetch(conn: Any, sql: str, params: Any = None) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def load_world(conn: Any, t: Tables, seed: int) -> World:
    from django.conf import settings

    g = "Grid"
    rows = _fetch(
        conn,
        f"SELECT {q('id')}, {t.col(g, 'path')}, {t.col(g, 'geom_wkb')}, {t.col(g, 'name')}, "
        f"{t.col(g, 'level')}, {t.col(g, 'parent')}, {t.col(g, 'is_active')} "
        f"FROM {t.table(g)} ORDER BY {t.col(g, 'path')}",
    )
    by_id = {r[0]: r for r in rows}
    leaves = [r for r in rows if r[4] == 3 and r[6]]
    if not leaves:
        raise RuntimeError("casegen: the database has no active level-3 grids (run civicgrid demo)")
    geoms = shapely.from_wkb([bytes(r[2]) for r in leaves])
    shapely.prepare(geoms)
    places = []
    for r in leaves:
        community = by_id.get(r[5])
        sub = by_id.get(community[5]) if community else None
        places.append("".join(x[3] for x in (sub, community) if x))

    u = "HandlingUnit"
    units = _fetch(
        conn,
        f"SELECT u.{q('id')}, g.{t.col(g, 'path')}, g.{t.col(g, 'level')}, u.{t.col(u, 'code')} "
        f"FROM {t.table(u)} u JOIN {t.table(g)} g ON g.{q('id')} = u.{t.col(u, 'serves')} "
        f"WHERE u.{t.col(u, 'is_active')}",
    )
    unit_path = {r[0]: r[1] for r in units}

    def territorial(path: str) -> int:
        serving = [r for r in units if path.startswith(r[1])]
        if not serving:
            raise RuntimeError(f"casegen: no active unit serves grid {path}")
        return sorted(serving, key=lambda r: (-r[2], r[3]))[0][0]

    terr = np.array([territorial(r[1]) for r in leaves], dtype=np.int64)

    c = "Category"
    cats = _fetch(
        conn,
        f"SELECT m.{q('id')}, m.{t.col(c, 'name')}, m.{t.col(c, 'default_unit')}, "
        f"p.{t.col(c, 'default_unit')}, m.{t.col(c, 'parent')}, m.{t.col(c, 'code')} "
        f"FROM {t.table(c)} m JOIN {t.table(c)} p ON p.{q('id')} = m.{t.col(c, 'parent')} "
        f"WHERE m.{t.col(c, 'is_active')} ORDER BY m.{t.col(c, 'sort_order')}, m.{t.col(c, 'code')}",
    )
    if not cats:
        raise RuntimeError("casegen: no active subcategories (load the catalogue)")
    rng = np.random.default_rng([seed, 99])
    zipf = 1.0 / np.arange(1, len(cats) + 1) ** 0.9
    weights = zipf[rng.permutation(len(cats))]
    weights /= weights.sum()

    suggested = np.empty((len(cats), len(leaves)), dtype=np.int64)
    for i, (_, _, own, parent_default, _, _) in enumerate(cats):
        default = own or parent_default
        for j, r in enumerate(leaves):
            path = r[1]
            if default is not None and default in unit_path and path.startswith(unit_path[default]):
                suggested[i, j] = default
            else:
                suggested[i, j] = terr[j]

    tl = "TimeLimit"
    limits: dict[tuple[int, str, str], tuple[float, str]] = {
        (r[0], r[1], r[2]): (float(r[3]), r[4])
        for r in _fetch(
            conn,
            f"SELECT {t.col(tl, 'category')}, {t.col(tl, 'urgency')}, {t.col(tl, 'stage')}, "
            f"{t.col(tl, 'amount')}, {t.col(tl, 'unit')} FROM {t.table(tl)}",
        )
    }
    defaults: Any = settings.CIVICGRID_DEFAULT_TIME_LIMITS
    amount = np.zeros((len(cats), len(URGENCIES), len(STAGES)))
    unit = np.zeros((len(cats), len(URGENCIES), len(STAGES)), dtype=np.int8)
    for i, (cat_id, _, _, _, parent_id, _) in enumerate(cats):
        for j, urg in enumerate(URGENCIES):
            for k, stage in enumerate(STAGES):
                found = limits.get((cat_id, urg, stage)) or limits.get((parent_id, urg, stage))
                if found is None:
                    a, un = defaults[urg][stage]
                    found = (float(a), un)
                amount[i, j, k] = found[0]
                unit[i, j, k] = UNIT_CODES[found[1]]

    m = "Membership"
    staff: dict[str, list[int]] = {}
    handlers: dict[int, list[int]] = {}
    workers: dict[int, list[int]] = {}
    leaf_index = {r[0]: i for i, r in enumerate(leaves)}
    for user_id, role, grid_id, unit_id in _fetch(
        conn,
        f"SELECT m.{t.col(m, 'user')}, m.{t.col(m, 'role')}, m.{t.col(m, 'grid')}, "
        f"m.{t.col(m, 'unit')} FROM {t.table(m)} m "
        f"JOIN {t.table('User')} u ON u.{q('id')} = m.{t.col(m, 'user')} "
        f"WHERE m.{t.col(m, 'is_active')} AND u.{t.col('User', 'is_active')} ORDER BY 1",
    ):
        if role == "unit_handler" and unit_id is not None:
            handlers.setdefault(unit_id, []).append(user_id)
        elif role == "grid_worker" and grid_id in leaf_index:
            workers.setdefault(leaf_index[grid_id], []).append(user_id)
        elif grid_id is not None and by_id.get(grid_id, (None,) * 6)[5] is None:
            staff.setdefault(role, []).append(user_id)
    return World(
        grid_ids=np.array([r[0] for r in leaves], dtype=np.int64),
        grid_paths=[r[1] for r in leaves],
        grid_geoms=geoms,
        grid_boxes=shapely.bounds(geoms),
        grid_names=[r[3] for r in leaves],
        grid_places=places,
        grid_subdistrict=terr,
        cat_ids=np.array([r[0] for r in cats], dtype=np.int64),
        cat_codes=[r[5] for r in cats],
        cat_names=[r[1] for r in cats],
        cat_weights=weights,
        limit_amount=amount,
        limit_unit=unit,
        suggested=suggested,
        territorial=terr,
        unit_ids=np.array(sorted(unit_path), dtype=np.int64),
        staff={k: np.array(v, dtype=np.int64) for k, v in staff.items()},
        handlers={k: np.array(v, dtype=np.int64) for k, v in handlers.items()},
        workers=[np.array(workers.get(i, []), dtype=np.int64) for i in range(len(leaves))],
        tz=str(settings.TIME_ZONE),
    )


STAFF_WANTED = {"call_taker": 6, "dispatcher": 3, "supervisor": 2}
HANDLERS_PER_UNIT = 2


def ensure_staff(conn: Any, t: Tables, world: World, seed: int) -> int:
    """Add the call-takers, dispatchers, supervisors (at the root) and unit handlers the
    stories need when there are too few; rows as ``load_demo`` writes them (unusable
    passwords). Returns how many users it added."""
    root = _fetch(
        conn,
        f"SELECT {q('id')} FROM {t.table('Grid')} WHERE {t.col('Grid', 'parent')} IS NULL "
        f"ORDER BY {q('id')} LIMIT 1",
    )[0][0]
    wanted: list[tuple[str, str, int | None, int | None]] = []
    for role, count in STAFF_WANTED.items():
        for i in range(len(world.staff.get(role, [])), count):
            wanted.append((f"casegen-{role}-{seed}-{i + 1}", role, root, None))
    for unit_id in world.unit_ids.tolist():
        for i in range(len(world.handlers.get(unit_id, [])), HANDLERS_PER_UNIT):
            wanted.append((f"casegen-unit{unit_id}-{seed}-{i + 1}", "unit_handler", None, unit_id))
    if not wanted:
        return 0
    now = dt.datetime.now(dt.UTC)
    user_known = ["username", "password", "display_name", "is_active", "date_joined"]
    user_other = t.others("User", user_known)
    m_known = ["user", "role", "grid", "unit", "is_active", "title"]
    m_other = t.others("Membership", m_known)
    ucols = [t.col("User", f) for f in user_known] + [q(c) for c, _ in user_other]
    mcols = [t.col("Membership", f) for f in m_known] + [q(c) for c, _ in m_other]
    added = 0
    with conn.transaction():
        for username, role, grid, unit in wanted:
            exists = _fetch(
                conn,
                f"SELECT {q('id')} FROM {t.table('User')} WHERE {t.col('User', 'username')} = %s",
                (username,),
            )
            if exists:
                user_id = exists[0][0]
            else:
                values = [username, "!casegen", username, True, now] + [v for _, v in user_other]
                user_id = _fetch(
                    conn,
                    f"INSERT INTO {t.table('User')} ({', '.join(ucols)}) VALUES "
                    f"({', '.join(['%s'] * len(values))}) RETURNING {q('id')}",
                    values,
                )[0][0]
                added += 1
            values = [user_id, role, grid, unit, True, ""] + [v for _, v in m_other]
            conn.execute(
                f"INSERT INTO {t.table('Membership')} ({', '.join(mcols)}) VALUES "
                f"({', '.join(['%s'] * len(values))})",
                values,
            )
            if unit is not None:
                world.handlers.setdefault(unit, np.array([], dtype=np.int64))
                world.handlers[unit] = np.append(world.handlers[unit], user_id)
            else:
                world.staff[role] = np.append(world.staff.get(role, np.array([])), user_id).astype(
                    np.int64
                )
    return added


# -- binary COPY --------------------------------------------------------------------------
#: How psycopg dumps each PostgreSQL type in a binary COPY here. A timestamptz is sent
#: as int8 (its binary form: microseconds since 2000-01-01 UTC); a type without a
#: native dumper (jsonb, numeric, ...) as bytea holding the type's own send() bytes.
COPY_AS = {
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "double precision": "float8",
    "boolean": "bool",
    "timestamp with time zone": "int8",
    "text": "text",
    "character varying": "text",
    "character": "text",
}


def column_types(conn: Any, table: str) -> dict[str, tuple[str, str]]:
    """column -> (type name, its binary send function) of ``table``."""
    rows = _fetch(
        conn,
        "SELECT a.attname, format_type(a.atttypid, NULL), t.typsend::text FROM pg_attribute a "
        "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
        "AND NOT a.attisdropped",
        (table,),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def send(conn: Any, types: dict[str, tuple[str, str]], column: str, value: Any) -> bytes | None:
    """``value`` as ``column``'s type sends it in binary (for a ``bytea``-declared COPY)."""
    if value is None:
        return None
    type_name, fn = types[column]
    row = conn.execute(f"SELECT {fn}(%s::{type_name})", (value,)).fetchone()
    return bytes(row[0])


def ts_values(seconds: np.ndarray) -> list[Any]:
    """Unix seconds as timestamptz COPY values (``NULL_TS``: None)."""
    micro = ((seconds.astype(np.int64) - EPOCH_2000) * 1_000_000).astype(object)
    micro[seconds == NULL_TS] = None
    out: list[Any] = micro.tolist()
    return out


def nullable(values: np.ndarray, null: np.ndarray) -> list[Any]:
    out = values.astype(object)
    out[null] = None
    result: list[Any] = out.tolist()
    return result


def cat(codes: np.ndarray, choices: Sequence[Any]) -> list[Any]:
    table = np.empty(len(choices), dtype=object)
    table[:] = list(choices)
    out: list[Any] = table[codes].tolist()
    return out


def copy_columns(
    conn: Any, table: str, columns: list[tuple[str, list[Any]]], types: dict[str, tuple[str, str]]
) -> None:
    """COPY the rows of ``columns`` ((column, values), values all the same length) into
    ``table`` in binary format."""
    names = ", ".join(q(c) for c, _ in columns)
    kinds = [COPY_AS.get(types[c][0], "bytea") for c, _ in columns]
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {q(table)} ({names}) FROM STDIN (FORMAT binary)") as cp,
    ):
        cp.set_types(kinds)
        for row in zip(*(v for _, v in columns), strict=True):
            cp.write_row(row)


#: Big-endian NumPy types of the binary COPY form of fixed-width PostgreSQL types (a
#: date: days since 2000-01-01).
BINARY_DTYPE = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "boolean": "u1",
    "date": ">i4",
}
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # flags and header extension: none
COPY_TRAILER = b"\xff\xff"


_SCRATCH: dict[str, np.ndarray] = {}


def _scratch(name: str, size: int, dtype: Any = np.uint8) -> np.ndarray:
    """A buffer of ``size`` bytes kept between calls: the pages of a fresh array of
    100 MB cost more to fault in than the copies into it."""
    buf = _SCRATCH.get(name)
    if buf is None or len(buf) < size:
        buf = _SCRATCH[name] = np.empty(size, dtype=np.uint8)
    out: np.ndarray = buf[:size].view(dtype)
    return out


def copy_arrays(
    conn: Any,
    table: str,
    fixed: list[tuple[str, np.ndarray]],
    texts: list[tuple[str, np.ndarray, Sequence[str]]],
    types: dict[str, tuple[str, str]],
) -> None:
    """COPY rows into ``table`` in binary format, the stream made by NumPy: ``fixed``
    (column, values) of fixed-width types and ``texts`` (column, codes, choices) of text
    columns, no NULLs. For tables of many numbers (the statistics facts: 100 columns)
    this is many times faster than ``write_row``, which converts every value.

    Each row is a packed record (field count, then length and value of each fixed
    column, then room for the widest text fields); the rows' texts are a few
    combinations, each made once, and the rows are cut to their length at the end."""
    n = len(fixed[0][1]) if fixed else len(texts[0][1])
    if not n:
        return
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for i, (column, _) in enumerate(fixed):
        kind = BINARY_DTYPE.get(types[column][0])
        if kind is None:
            raise RuntimeError(f"casegen: no binary COPY form for {table}.{column}")
        layout += [(f"l{i}", ">i4"), (f"v{i}", kind)]
    head = np.dtype(layout).itemsize
    tails: list[bytes] = []
    inverse = np.zeros(n, dtype=np.int64)
    if texts:
        combo = np.zeros(n, dtype=np.int64)
        for _, codes, choices in texts:
            combo = combo * len(choices) + codes
        uniq, inverse = np.unique(combo, return_inverse=True)
        for value in uniq.tolist():
            parts = []
            for _, _, choices in reversed(texts):
                value, code = divmod(value, len(choices))
                data = choices[code].encode()
                parts.append(len(data).to_bytes(4, "big") + data)
            tails.append(b"".join(reversed(parts)))
    width = max((len(x) for x in tails), default=0)
    if width:
        layout.append(("tail", f"V{width}"))
    dtype = np.dtype(layout)
    record = _scratch("record", n * dtype.itemsize, dtype)
    blank = np.zeros((), dtype=dtype)
    blank["count"] = len(fixed) + len(texts)
    for i in range(len(fixed)):
        blank[f"l{i}"] = dtype[f"v{i}"].itemsize
    rows = record.view(np.uint8).reshape(n, dtype.itemsize)
    rows[...] = np.frombuffer(blank.tobytes(), dtype=np.uint8)  # a structured fill is slow
    for i, (_, values) in enumerate(fixed):
        record[f"v{i}"] = values
    if width:
        tail = np.zeros((len(tails), width), dtype=np.uint8)
        for i, x in enumerate(tails):
            tail[i, : len(x)] = np.frombuffer(x, dtype=np.uint8)
        rows[:, head:] = tail[inverse]
        size = head + np.array([len(x) for x in tails])[inverse]
        if (size == dtype.itemsize).all():
            body = rows.ravel()
        else:
            keep = _scratch("keep", n * dtype.itemsize, bool).reshape(n, dtype.itemsize)
            np.less(np.arange(dtype.itemsize)[None, :], size[:, None], out=keep)
            body = rows[keep]
    else:
        body = rows.ravel()
    names = ", ".join([q(c) for c, _ in fixed] + [q(c) for c, _, _ in texts])
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {q(table)} ({names}) FROM STDIN (FORMAT binary)") as cp,
    ):
        cp.write(COPY_SIGNATURE)
        step = 1 << 24
        data = memoryview(body).cast("B")
        for start in range(0, len(data), step):
            cp.write(data[start : start + step])
        cp.write(COPY_TRAILER)


# -- secondary indexes and foreign keys during a load ----------------------------------------
def drop_secondary(conn: Any, table: str) -> list[str]:
    """Drop the indexes (but the primary key) and the unique and foreign-key
    constraints of ``table``; return the statements that make them again."""
    constraints = _fetch(
        conn,
        "SELECT conname, pg_get_constraintdef(oid), contype, conindid FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        (table,),
    )
    backing = {r[3] for r in constraints if r[2] == "u"}
    indexes = _fetch(
        conn,
        "SELECT i.indexrelid, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
        (table,),
    )
    remake: list[str] = []
    for oid, name, definition in indexes:
        if oid in backing:
            continue
        conn.execute(f"DROP INDEX {q(name)}")
        remake.append(definition)
    # Unique constraints before foreign keys (a key may rest on one).
    for kind in ("u", "f"):
        for name, _definition, contype, _ in constraints:
            if contype == kind:
                conn.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
    for kind in ("u", "f"):
        for name, definition, contype, _ in constraints:
            if contype == kind:
                remake.append(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
    return remake


# -- generation ----------------------------------------------------------------------------
@dataclass
class Result:
    cases: int = 0
    events: int = 0
    deadlines: int = 0
    approvals: int = 0
    case_facts: int = 0
    person_facts: int = 0
    staff_added: int = 0
    first_id: int = 0
    last_id: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "events": self.events,
            "deadlines": self.deadlines,
            "approvals": self.approvals,
            "case_facts": self.case_facts,
            "person_facts": self.person_facts,
            "staff_added": self.staff_added,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "statuses": self.statuses,
        }


class _Timer:
    def __init__(self, result: Result) -> None:
        self.result = result

    def __call__(self, name: str) -> _Phase:
        return _Phase(self.result, name)


class _Phase:
    def __init__(self, result: Result, name: str) -> None:
        self.result, self.name = result, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.result.seconds[self.name] = (
            self.result.seconds.get(self.name, 0.0) + time.perf_counter() - self.t0
        )


def generate(
    conn: Any,
    n: int,
    *,
    seed: int = 20240601,
    now: dt.datetime | None = None,
    days: float = 365.0,
    flow: str = "full",
    chunk: int = DEFAULT_CHUNK,
    rebuild_indexes: bool | None = None,
    facts: bool = False,
    progress: Callable[[str], None] = say,
) -> Result:
    """Add ``n`` cases (with their events, deadlines, approvals) to the database of
    ``conn`` (a psycopg connection, not in a transaction).

    ``flow="full"`` plays the whole story of each case up to ``now``; ``flow="filed"``
    makes cases accepted and waiting for dispatch (status ``filed``), e.g. for a
    dispatch benchmark. ``rebuild_indexes`` (default: when ``n`` is at least 50,000
    and at least half the rows already there) drops the secondary indexes and foreign
    keys of the four tables for the load and rebuilds them after it.

    ``facts=True`` also writes the cases' statistics facts (``stats_casefact``,
    ``stats_personfact``: what ``stats.facts.compute`` stores for each case), from the
    same arrays, so that nobody has to compute them from the events afterwards
    (``bench/casestats.py``, minutes a million). The rollups are not written.
    """
    started = time.perf_counter()
    t = tables()
    result = Result()
    phase = _Timer(result)
    now_s = int((now or dt.datetime.now(dt.UTC)).timestamp())
    conn.autocommit = True
    with phase("load world"):
        world = load_world(conn, t, seed)
        result.staff_added = ensure_staff(conn, t, world, seed)
        stories = build_stories()
        first_day = dt.datetime.fromtimestamp(now_s - days * 86400 - 2 * 86400, dt.UTC).date()
        last_day = dt.datetime.fromtimestamp(now_s + 150 * 86400, dt.UTC).date()
        cal = Calendar.load(conn, t, world.tz, first_day, last_day)
        existing = _fetch(conn, f"SELECT count(*), coalesce(max(id), 0) FROM {t.table('Case')}")[0]
        first_id = int(existing[1]) + 1
        approval_base = int(
            _fetch(conn, f"SELECT coalesce(max(id), 0) FROM {t.table('Approval')}")[0][0]
        )
        rules = FactRules.load(world) if facts else None
        prefixes = Prefixes.build(rules, stories) if rules is not None else None
        person_base = int(
            _fetch(conn, f"SELECT coalesce(max(id), 0) FROM {t.table('PersonFact')}")[0][0]
        )
    if rebuild_indexes is None:
        rebuild_indexes = n >= 50_000 and n >= existing[0] / 2
    rng = np.random.default_rng([seed, first_id])
    with phase("reception times"):
        received = _reception_times(rng, n, now_s, days, cal)
    conn.execute("SET synchronous_commit = off")
    writer = Writer(conn, t, world, person_id=person_base)
    models = (*MODELS, *(FACT_MODELS if facts else ()))
    remake: list[tuple[str, list[str]]] = []
    # The facts of a chunk go in on a connection of their own while the next chunk is
    # planned and written: the server parses them on the other core.
    fact_conn = _second_connection(conn) if facts else None
    pool = ThreadPoolExecutor(1) if facts else None
    pending: Future[None] | None = None
    try:
        if rebuild_indexes:
            with phase("drop indexes"), conn.transaction():
                for model in ("CaseEvent", "Deadline", "Approval", *FACT_MODELS[::-1], "Case"):
                    if model in FACT_MODELS and not facts:
                        continue
                    remake.append((model, drop_secondary(conn, t.raw_table(model))))
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            ids = np.arange(first_id + start, first_id + stop, dtype=np.int64)
            with phase("plan"):
                plan = _plan_chunk(
                    rng,
                    world,
                    stories,
                    cal,
                    ids,
                    received[start:stop],
                    now_s,
                    flow,
                    approval_base,
                    rules,
                    prefixes,
                )
            approval_base += len(plan["approvals"]["id"])
            with conn.transaction():
                writer.write(plan, phase)
            if pool is not None:
                if pending is not None:
                    with phase("wait for facts"):
                        pending.result()
                pending = pool.submit(writer.write_facts, fact_conn, plan, phase)
            result.cases += stop - start
            result.events += len(plan["events"]["case"])
            result.deadlines += len(plan["deadlines"]["case"])
            result.approvals += len(plan["approvals"]["id"])
            if rules is not None:
                result.case_facts += len(plan["casefacts"]["case"])
                result.person_facts += len(plan["personfacts"]["case"])
            for s, c in zip(*np.unique(plan["cases"]["status"], return_counts=True), strict=True):
                result.statuses[STATUSES[s]] = result.statuses.get(STATUSES[s], 0) + int(c)
            if n > chunk:
                progress(
                    f"    casegen: {stop:,}/{n:,} cases, {result.events:,} events, "
                    f"{result.deadlines:,} deadlines ({time.perf_counter() - started:.0f} s)"
                )
        if pending is not None:
            with phase("wait for facts"):
                pending.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)  # also when the main thread failed
        if fact_conn is not None:
            fact_conn.close()
        _SCRATCH.clear()
        with phase("rebuild indexes"):
            conn.execute("SET maintenance_work_mem = '512MB'")
            for model, statements in reversed(remake):
                for sql in statements:
                    conn.execute(sql)
                if statements:
                    progress(f"    casegen: {len(statements)} indexes/keys of {model} rebuilt")
    with phase("analyze"):
        for model in models:
            table = t.raw_table(model)
            if t.models[model]._meta.pk.column == "id":  # not CaseFact's (case_id)
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {q(table)}))"
                )
            conn.execute(f"ANALYZE {q(table)}")
        conn.execute("RESET synchronous_commit")
    result.first_id = first_id
    result.last_id = first_id + n - 1
    return result


def _second_connection(conn: Any) -> Any:
    import psycopg

    other = psycopg.connect(conn.info.dsn, autocommit=True)
    other.execute("SET synchronous_commit = off")
    return other


def _reception_times(
    rng: np.random.Generator, n: int, now_s: int, days: float, cal: Calendar
) -> np.ndarray:
    """``n`` sorted Unix seconds over ``days`` before ``now``, with a weekly and daily
    rhythm (local time)."""
    start = now_s - int(days * 86400)
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        m = int((n - len(out)) * 1.6) + 1000
        t = rng.integers(start, now_s, m, dtype=np.int64)
        d = cal.day_of(t)
        hour = (t - cal.midnight[d]) // 3600
        weekday = (np.datetime64(cal.first, "D") + d).astype("datetime64[D]").astype(np.int64)
        weekday = (weekday + 3) % 7  # 1970-01-01 was a Thursday
        keep = rng.random(m) * HOURLY.max() * WEEKLY.max() < HOURLY[hour] * WEEKLY[weekday]
        out = np.concatenate([out, t[keep]])
    return np.sort(out[:n])


def points_in(rng: np.random.Generator, world: World, grid: np.ndarray) -> np.ndarray:
    """A uniform point inside the polygon of each ``grid`` (rejection from its box)."""
    out = np.empty((len(grid), 2))
    todo = np.arange(len(grid))
    while len(todo):
        box = world.grid_boxes[grid[todo]]
        x = box[:, 0] + rng.random(len(todo)) * (box[:, 2] - box[:, 0])
        y = box[:, 1] + rng.random(len(todo)) * (box[:, 3] - box[:, 1])
        inside = np.zeros(len(todo), dtype=bool)
        order = np.argsort(grid[todo], kind="stable")
        g_sorted = grid[todo][order]
        bounds = np.flatnonzero(np.diff(g_sorted)) + 1
        for part in np.split(order, bounds):
            if len(part):
                inside[part] = shapely.contains_xy(
                    world.grid_geoms[grid[todo][part[0]]], x[part], y[part]
                )
        out[todo[inside], 0] = x[inside]
        out[todo[inside], 1] = y[inside]
        todo = todo[~inside]
    return out


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    if len(pool) == 0:
        return np.zeros(n, dtype=np.int64)
    return pool[rng.integers(0, len(pool), n)]


def _pick_grouped(
    rng: np.random.Generator, groups: list[np.ndarray] | dict[int, np.ndarray], keys: np.ndarray
) -> np.ndarray:
    """For each key, a random member of its group (0 when the group is empty)."""
    out = np.zeros(len(keys), dtype=np.int64)
    for key in np.unique(keys).tolist():
        pool = groups[key] if isinstance(groups, list) else groups.get(key, np.array([]))
        where = np.flatnonzero(keys == key)
        if len(pool):
            out[where] = pool[rng.integers(0, len(pool), len(where))]
    return out


def _plan_chunk(
    rng: np.random.Generator,
    world: World,
    stories: Stories,
    cal: Calendar,
    ids: np.ndarray,
    received: np.ndarray,
    now_s: int,
    flow: str,
    approval_base: int,
    rules: FactRules | None = None,
    prefixes: Prefixes | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    n = len(ids)
    grid = rng.integers(0, len(world.grid_ids), n)
    point = points_in(rng, world, grid)
    cat = rng.choice(len(world.cat_ids), n, p=world.cat_weights)
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
    worker = channel == CHANNELS.index("grid_worker")
    hotline = channel == CHANNELS.index("hotline")
    citizen = hotline | (channel == CHANNELS.index("web"))
    urgency = rng.choice(len(URGENCIES), n, p=URGENCY_WEIGHTS)
    request_type = np.where(hotline, rng.choice(len(REQUEST_TYPES), n, p=REQUEST_WEIGHTS), 0)

    # -- the story of each case
    r = rng.random((n, 8))
    outcome = np.select(
        [r[:, 0] < 0.035, r[:, 0] < 0.05, r[:, 0] < 0.058], [1, 2, 3], 0
    )  # reject, merge at intake, merge once filed
    outcome = np.where(worker & (outcome < 3), 0, outcome)
    flags = np.stack(
        [
            worker.astype(int),
            outcome,
            r[:, 1] < 0.04,  # sent back once
            r[:, 2] < 0.03,  # urged
            r[:, 3] < 0.004,  # parked
            r[:, 4] < 0.05,  # reworked
            (r[:, 5] < np.where(citizen, 0.7, 0.1)),  # followed up
            np.select([r[:, 6] < 0.005, r[:, 6] < 0.009], [1, 2], 0),  # voided
        ],
        axis=1,
    ).astype(np.int64)
    if flow == "filed":
        flags[:, 1:] = 0  # the main story, cut below once filed
    code = np.zeros(n, dtype=np.int64)
    for i, radix in enumerate(RADICES):
        code = code * radix + flags[:, i]
    story = stories.by_flags[code]
    k = stories.slots
    action = stories.action[story]
    valid = action >= 0
    median = np.array([DELAYS[a][0] if a in DELAYS else 0 for a in ACTIONS], dtype=float)
    sigma = np.array([DELAYS[a][1] if a in DELAYS else 0 for a in ACTIONS])
    safe = np.where(valid, action, 0)
    # A step that ends a stage takes a share of that stage's time limit (a quarter at
    # the median: about 2 % of stages run late); the others take their usual delay.
    z = rng.standard_normal((n, k))
    run = stories.running[story]
    rs = np.maximum(run, 0)
    amt = world.limit_amount[cat[:, None], urgency[:, None], rs]
    unit_of = world.limit_unit[cat[:, None], urgency[:, None], rs]
    nominal = np.select(
        [unit_of == WORK_HOURS, unit_of == WORK_DAYS], [amt * 5400, amt * 112_000], amt * 3600
    )
    pace = URGENCY_PACE[urgency][:, None]
    delay = np.where(
        run >= 0,
        STAGE_SHARE * nominal * np.exp(STAGE_SIGMA * z),
        pace * median[safe] * np.exp(sigma[safe] * z),
    )
    delay = np.minimum(np.rint(delay), MAX_DELAY).astype(np.int64) + 1
    delay[:, 0] = 0
    delay[~valid] = 0
    times = received[:, None] + np.cumsum(delay, axis=1)
    executed = valid & (times <= now_s)
    executed[:, 0] = True
    if flow == "filed":
        executed = valid & (np.arange(k)[None, :] <= np.where(worker, 0, 1)[:, None])
        times = np.where(executed, np.minimum(times, now_s), times)
    n_exec = executed.sum(axis=1)
    last = n_exec - 1
    status = stories.status[story, last]

    # -- units and people
    suggested = world.suggested[cat, grid]
    lead = np.where(rng.random(n) < 0.9, suggested, world.territorial[grid])
    dispatched = (executed & (action == A["dispatch"])).any(axis=1)
    handler = _pick_grouped(rng, world.handlers, lead)
    worker_of_grid = _pick_grouped(rng, world.workers, grid)
    call_taker = _pick(rng, world.staff.get("call_taker", np.array([])), n)
    dispatcher = _pick(rng, world.staff.get("dispatcher", np.array([])), n)
    supervisor = _pick(rng, world.staff.get("supervisor", np.array([])), n)
    verifier = np.where(worker_of_grid > 0, worker_of_grid, supervisor)
    creator = np.where(hotline, call_taker, np.where(worker, worker_of_grid, 0))
    satisfaction = np.clip(6 - rng.geometric(0.55, n), 1, 5)

    # -- deadlines: every executed slot that opens a stage
    stage = stories.stage[story]
    d_row, d_slot = np.nonzero(executed & (stage >= 0))
    d_story = story[d_row]
    d_stage = stage[d_row, d_slot]
    started = times[d_row, d_slot]
    close_slot = stories.close[d_story, d_slot]
    pause_slot = stories.pause[d_story, d_slot]
    kk = np.minimum(close_slot, k - 1)
    finished = np.where(close_slot < n_exec[d_row], times[d_row, kk], NULL_TS)
    pk = np.minimum(pause_slot, k - 1)
    paused = np.where(pause_slot < n_exec[d_row], times[d_row, pk], NULL_TS)
    amount = world.limit_amount[cat[d_row], urgency[d_row], d_stage]
    unit = world.limit_unit[cat[d_row], urgency[d_row], d_stage]
    due = cal.due(started, amount, unit)
    end = np.where(finished != NULL_TS, finished, np.where(paused != NULL_TS, paused, now_s))
    swept = due + rng.integers(1, 60, len(due))
    late = swept < end
    overdue_at = np.where(late, swept, NULL_TS)
    running = (finished == NULL_TS) & (paused == NULL_TS)
    case_due = np.full(n, NULL_TS, dtype=np.int64)
    case_due[d_row[running]] = due[running]
    is_overdue = np.zeros(n, dtype=bool)
    is_overdue[d_row[late]] = True

    # -- events: every executed slot, and the sweep's mark of each late stage
    e_row, e_slot = np.nonzero(executed)
    e_action = action[e_row, e_slot]
    e_at = times[e_row, e_slot]
    e_from = stories.from_status[story[e_row], e_slot]
    e_to = stories.status[story[e_row], e_slot]
    e_role = np.array([ROLE_OF[a] for a in ACTIONS], dtype=object)
    actor_by_role = {
        "call_taker": call_taker,
        "dispatcher": dispatcher,
        "supervisor": supervisor,
        "unit_handler": handler,
        "grid_worker": verifier,
    }
    e_actor = np.zeros(len(e_row), dtype=np.int64)
    for a, role in ROLE_OF.items():
        sel = e_action == A[a]
        if role in actor_by_role:
            e_actor[sel] = actor_by_role[role][e_row[sel]]
    create = e_action == A["create"]
    e_actor[create] = creator[e_row[create]]
    unit_actions = np.isin(
        e_action, [A[x] for x in ("dispatch", "redispatch", "acknowledge", "send_back", "handle")]
    )
    e_unit = np.where(unit_actions, lead[e_row], 0)
    verify_by_supervisor = np.isin(e_action, [A["verify_pass"], A["verify_fail"]]) & (
        worker_of_grid[e_row] == 0
    )
    role_names = ["", "call_taker", "dispatcher", "supervisor", "unit_handler", "grid_worker"]
    e_role_idx = np.array([role_names.index(x) for x in e_role])[e_action]
    e_role_idx[verify_by_supervisor] = role_names.index("supervisor")
    e_reason = np.full(len(e_row), -1, dtype=np.int64)
    for a, texts in REASONS.items():
        sel = e_action == A[a]
        choice = rng.integers(0, len(texts), int(sel.sum()))
        e_reason[sel] = np.array([REASON_LIST.index(x) for x in texts])[choice]
    # payload ints: dispatch (lead, suggested), follow-up (satisfaction), void (approval),
    # merge (into, its number), create (channel)
    e_p1 = np.zeros(len(e_row), dtype=np.int64)
    e_p2 = np.zeros(len(e_row), dtype=np.int64)
    disp = np.isin(e_action, [A["dispatch"], A["redispatch"]])
    e_p1[disp] = lead[e_row[disp]]
    e_p2[disp] = suggested[e_row[disp]]
    fu = e_action == A["follow_up"]
    e_p1[fu] = satisfaction[e_row[fu]]
    e_p1[create] = channel[e_row[create]]
    number = _numbers(cal, ids, received)
    merge = e_action == A["merge"]
    into_row = np.maximum(e_row[merge] - rng.integers(1, 500, int(merge.sum())), 0)
    into_row = np.where(into_row == e_row[merge], np.minimum(e_row[merge] + 1, n - 1), into_row)
    e_p1[merge] = ids[into_row]
    e_p2[merge] = number[into_row]
    merged_into = np.zeros(n, dtype=np.int64)
    merged_into[e_row[merge]] = ids[into_row]

    # approvals of voids: requested (pending) or approved
    req = e_action == A["request_void"]
    req_rows = e_row[req]
    approval_ids = approval_base + 1 + np.arange(len(req_rows), dtype=np.int64)
    approval_of_row = np.zeros(n, dtype=np.int64)
    approval_of_row[req_rows] = approval_ids
    voids = np.isin(e_action, [A["request_void"], A["approve_void"]])
    e_p1[voids] = approval_of_row[e_row[voids]]
    approved = np.zeros(n, dtype=np.int64) + NULL_TS
    av = e_action == A["approve_void"]
    approved[e_row[av]] = e_at[av]

    o_idx = np.flatnonzero(late)
    events = {
        "case": np.concatenate([ids[e_row], ids[d_row[o_idx]]]),
        "action": np.concatenate([e_action, np.full(len(o_idx), A["overdue"])]),
        "at": np.concatenate([e_at, overdue_at[o_idx]]),
        "from": np.concatenate([e_from, np.full(len(o_idx), -1)]),
        "to": np.concatenate([e_to, np.full(len(o_idx), -1)]),
        "actor": np.concatenate([e_actor, np.zeros(len(o_idx), dtype=np.int64)]),
        "role": np.concatenate([e_role_idx, np.zeros(len(o_idx), dtype=np.int64)]),
        "unit": np.concatenate([e_unit, np.zeros(len(o_idx), dtype=np.int64)]),
        "reason": np.concatenate([e_reason, np.full(len(o_idx), -1)]),
        "p1": np.concatenate([e_p1, d_stage[o_idx].astype(np.int64)]),
        "p2": np.concatenate([e_p2, np.zeros(len(o_idx), dtype=np.int64)]),
        "pts": np.concatenate([np.full(len(e_row), NULL_TS), due[o_idx]]),
    }
    order = np.argsort(events["at"], kind="stable")
    events = {key: v[order] for key, v in events.items()}
    # last move of each case (updated_at), version: moves made (overdue and create are not)
    moves = executed.copy()
    moves[:, 0] = False
    version = moves.sum(axis=1)
    updated = np.where(version > 0, np.max(np.where(moves, times, 0), axis=1), received)
    handled = (executed & (action == A["handle"])).any(axis=1)
    closed = (executed & (action == A["verify_pass"])).any(axis=1)
    closed_at = np.where(
        closed, np.max(np.where(executed & (action == A["verify_pass"]), times, 0), axis=1), NULL_TS
    )
    parked = status == S["parked"]
    before_park = np.where(parked, stories.status[story, np.maximum(last - 1, 0)], -1)

    d_order = np.argsort(started, kind="stable")
    deadlines = {
        "case": ids[d_row][d_order],
        "stage": d_stage[d_order].astype(np.int64),
        "started": started[d_order],
        "due": due[d_order],
        "finished": finished[d_order],
        "overdue": overdue_at[d_order],
        "paused": paused[d_order],
        "amount": amount[d_order],
        "unit": unit[d_order].astype(np.int64),
    }
    a_rows = req_rows
    approvals = {
        "id": approval_ids,
        "case": ids[a_rows],
        "requested_by": dispatcher[a_rows],
        "requested_at": e_at[req],
        "decided_by": np.where(approved[a_rows] != NULL_TS, supervisor[a_rows], 0),
        "decided_at": approved[a_rows],
        "reason": np.full(len(a_rows), REASON_LIST.index(REASONS["request_void"][0])),
    }
    cases = {
        "id": ids,
        "number": number,
        "tracking": _tracking_codes(ids),
        "channel": channel,
        "request_type": request_type,
        "category": world.cat_ids[cat],
        "cat_idx": cat,
        "urgency": urgency,
        "status": status,
        "before_park": before_park,
        "grid_idx": grid,
        "lon": point[:, 0],
        "lat": point[:, 1],
        "gcj": citizen & (rng.random(n) < 0.3),
        "detail": rng.integers(0, len(DETAILS), n),
        "building": rng.integers(1, 60, n),
        "surname": np.where(citizen, rng.integers(0, len(SURNAMES), n), -1),
        "female": rng.random(n) < 0.5,
        "phone": np.where(citizen, 13_000_000_000 + rng.integers(0, 7_000_000_000, n), 0),
        "confidential": hotline & (rng.random(n) < 0.03),
        "suggested": suggested,
        "lead": np.where(dispatched, lead, 0),
        "merged_into": merged_into,
        "result": np.where(handled, rng.integers(0, len(REASONS["handle"]), n), -1),
        "rework": (executed & (action == A["verify_fail"])).sum(axis=1),
        "returns": (executed & (action == A["send_back"])).sum(axis=1),
        "urges": (executed & (action == A["urge"])).sum(axis=1),
        "satisfaction": np.where(
            (executed & (action == A["follow_up"])).any(axis=1), satisfaction, 0
        ),
        "overdue": is_overdue,
        "due": case_due,
        "version": version,
        "created_by": creator,
        "received": received,
        "closed": closed_at,
        "updated": updated,
    }
    plan = {"cases": cases, "events": events, "deadlines": deadlines, "approvals": approvals}
    if rules is not None and prefixes is not None:
        plan["casefacts"], plan["personfacts"] = _fact_plan(
            rules,
            prefixes,
            stories,
            cal,
            FactInputs(
                ids=ids,
                received=received,
                status=status,
                channel=channel,
                request_type=request_type,
                category=world.cat_ids[cat],
                grid=grid,
                lead=cases["lead"],
                returns=cases["returns"],
                rework=cases["rework"],
                urges=cases["urges"],
                satisfaction=cases["satisfaction"],
                closed_at=closed_at,
                story=story,
                n_exec=n_exec,
                d_row=d_row,
                d_stage=d_stage,
                d_due=due,
                d_finished=finished,
                d_overdue=overdue_at,
                d_close=close_slot,
                e_row=e_row,
                e_slot=e_slot,
                e_action=e_action,
                e_at=e_at,
                e_actor=e_actor,
                e_role=e_role_idx,
            ),
        )
    return plan


def _numbers(cal: Calendar, ids: np.ndarray, received: np.ndarray) -> np.ndarray:
    """``create_case``'s number: local date of reception and the id (at least 7 digits)."""
    ymd = cal.ymd[cal.day_of(received)].astype(np.int64)
    digits = np.maximum(7, np.floor(np.log10(np.maximum(ids, 1))).astype(np.int64) + 1)
    return ymd * 10**digits + ids


TRACKING_ALPHABET = np.frombuffer(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789", dtype=np.uint8)


def _tracking_codes(ids: np.ndarray) -> np.ndarray:
    """Ten characters of the service's alphabet, unique per id (a bijection of 50 bits)."""
    x = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7) + np.uint64(0x5DEECE66D)) & np.uint64(
        (1 << 50) - 1
    )
    chars = np.empty((len(ids), 10), dtype=np.uint8)
    for i in range(10):
        chars[:, i] = TRACKING_ALPHABET[((x >> np.uint64(5 * i)) & np.uint64(31)).astype(np.int64)]
    return chars.view("S10").ravel()


# -- statistics facts ------------------------------------------------------------------------
@dataclass
class FactRules:
    """``stats.facts.compute``'s rules on casegen's action and status codes (indexes into
    ``ACTIONS``, ``STATUSES``, ``ROLE_NAMES``), taken from civicgrid's own constants so
    that a change there changes the generated facts too."""

    round_start: list[int]
    dispatching: list[int]
    not_work: list[int]
    handles: list[int]
    extension_requests: list[int]
    extensions: list[int]
    person_counter: np.ndarray  # action -> index into PERSON_COUNTERS (-1: none)
    open_statuses: list[int]
    invalid_statuses: list[int]  # voided, merged, rejected: a report that was not valid
    intake_role: np.ndarray  # channel -> role index of an intake event without a role
    public: np.ndarray  # channel -> whether its cases count as the public's reports
    case_counters: tuple[str, ...]
    person_counters: tuple[str, ...]
    bounds_hours: np.ndarray  # of the handling-time histogram
    grid_nodes: np.ndarray  # [grid, 4]: ids of its ancestors by level

    @classmethod
    def load(cls, world: World) -> FactRules:
        from civicgrid.cases.models import OPEN_STATUSES, Action, Status
        from civicgrid.stats import conf
        from civicgrid.stats import facts as f
        from civicgrid.stats.counters import (
            CASE_COUNTERS,
            DURATION_BOUNDS_HOURS,
            PERSON_COUNTERS,
        )
        from civicgrid.stats.counters import STAGES as COUNTED_STAGES

        if tuple(COUNTED_STAGES) != tuple(STAGES):
            raise RuntimeError("casegen: its STAGES differ from stats.counters.STAGES")

        def codes(actions: Any) -> list[int]:
            return [A[str(a)] for a in actions if str(a) in A]

        person = np.full(len(ACTIONS), -1, dtype=np.int64)
        for action, counter in f.PERSON_ACTION.items():
            if str(action) in A:
                person[A[str(action)]] = PERSON_COUNTERS.index(counter)
        public = {str(c) for c in conf.get("public_channels")}
        return cls(
            round_start=codes(f.ROUND_START),
            dispatching=codes(f.DISPATCHING),
            not_work=codes(f.NOT_WORK),
            handles=codes([Action.HANDLE, Action.SELF_HANDLE]),
            extension_requests=codes([Action.REQUEST_EXTENSION]),
            extensions=codes([Action.APPROVE_EXTENSION]),
            person_counter=person,
            open_statuses=[S[str(s)] for s in OPEN_STATUSES if str(s) in S],
            invalid_statuses=[S[str(s)] for s in (Status.VOIDED, Status.MERGED, Status.REJECTED)],
            intake_role=np.array(
                [ROLE_NAMES.index(f.INTAKE_ROLE.get(c, "")) for c in CHANNELS], dtype=np.int64
            ),
            public=np.array([c in public for c in CHANNELS]),
            case_counters=tuple(CASE_COUNTERS),
            person_counters=tuple(PERSON_COUNTERS),
            bounds_hours=np.array(DURATION_BOUNDS_HOURS, dtype=float),
            grid_nodes=np.array([f.nodes_of(p) for p in world.grid_paths], dtype=np.int64),
        )


@dataclass
class FactInputs:
    """What ``_plan_chunk`` knows of a chunk that the facts are made of."""

    ids: np.ndarray
    received: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    request_type: np.ndarray
    category: np.ndarray  # ids
    grid: np.ndarray  # grid index
    lead: np.ndarray  # lead unit id, 0 none
    returns: np.ndarray
    rework: np.ndarray
    urges: np.ndarray
    satisfaction: np.ndarray  # 0 none
    closed_at: np.ndarray  # NULL_TS none
    story: np.ndarray
    n_exec: np.ndarray  # the steps executed: a prefix of the story
    d_row: np.ndarray  # deadlines: case row, stage, due, finished, overdue, closing slot
    d_stage: np.ndarray
    d_due: np.ndarray
    d_finished: np.ndarray
    d_overdue: np.ndarray
    d_close: np.ndarray
    e_row: np.ndarray  # events (the steps, not the sweep's marks): row-major over executed
    e_slot: np.ndarray
    e_action: np.ndarray
    e_at: np.ndarray
    e_actor: np.ndarray
    e_role: np.ndarray  # index into ROLE_NAMES


@dataclass
class Prefixes:
    """What depends only on the steps a case made (its story and how many of its steps
    are executed: a "prefix", ``story * (slots + 1) + executed``): computed once for
    every prefix, then looked up per case and per step."""

    filed: np.ndarray  # [prefix]
    counts: dict[str, np.ndarray]  # case counter -> [prefix]
    back: np.ndarray  # [prefix, slot]: the step's dispatch round was sent back
    rework: np.ndarray  # [prefix, slot]: … reworked

    @classmethod
    def build(cls, rules: FactRules, stories: Stories) -> Prefixes:
        k = stories.slots
        story = np.repeat(np.arange(stories.count), k + 1)
        made = np.tile(np.arange(k + 1), stories.count)
        action = stories.action[story]
        executed = (np.arange(k)[None, :] < made[:, None]) & (action >= 0)

        def steps(codes: list[int]) -> np.ndarray:
            return executed & np.isin(action, codes)

        # Dispatch rounds (``facts._rounds``): a step's round is the number of round
        # starts (dispatch, re-dispatch, reopen) up to it; a dispatch's round was sent
        # back or reworked when a send-back or failed verification is in that round.
        rnd = np.cumsum(steps(rules.round_start), axis=1)
        back = np.zeros((len(story), int(rnd.max(initial=0)) + 1), dtype=bool)
        rework = np.zeros_like(back)
        for r in range(1, back.shape[1]):
            this = rnd == r
            back[:, r] = (this & steps([A["send_back"]])).any(axis=1)
            rework[:, r] = (this & steps([A["verify_fail"]])).any(axis=1)
        back_of = np.take_along_axis(back, rnd, axis=1)
        rework_of = np.take_along_axis(rework, rnd, axis=1)
        disp = steps(rules.dispatching)
        counts = {
            "dispatches": disp.sum(axis=1),
            "accurate_dispatches": (disp & ~back_of).sum(axis=1),
            "reworked_dispatches": (disp & rework_of).sum(axis=1),
            "handled": steps(rules.handles).sum(axis=1),
            "extension_requests": steps(rules.extension_requests).sum(axis=1),
            "extensions": steps(rules.extensions).sum(axis=1),
        }
        filed = (executed & (stories.status[story] == S["filed"])).any(axis=1)
        return cls(filed=filed, counts=counts, back=back_of, rework=rework_of)


def _fact_plan(
    rules: FactRules, prefixes: Prefixes, stories: Stories, cal: Calendar, x: FactInputs
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The ``CaseFact`` and ``PersonFact`` rows of a chunk's cases, as ``facts.compute``
    makes them from the rows casegen writes: field name -> values ("grid_idx", "channel",
    "request_type" and "role" as codes). What depends on the steps made is looked up
    (``Prefixes``); times, deadlines and people are whole-chunk array arithmetic."""
    n = len(x.ids)
    prefix = x.story * (stories.slots + 1) + x.n_exec
    c: dict[str, np.ndarray] = {name: v[prefix] for name, v in prefixes.counts.items()}
    status = x.status
    is_open = np.isin(status, rules.open_statuses)
    closed = status == S["closed"]
    c["received"] = np.ones(n, dtype=np.int64)
    c["open"] = is_open
    c["closed"] = closed
    c["rejected"] = status == S["rejected"]
    c["voided"] = status == S["voided"]
    c["merged"] = status == S["merged"]
    c["parked"] = status == S["parked"]
    filed = prefixes.filed[prefix]
    c["filed"] = filed
    c["filed_public"] = filed & rules.public[x.channel]
    c["dispatched"] = c["dispatches"] > 0
    c["extended_cases"] = c["extensions"] > 0
    c["deferred"] = is_open & (c["extensions"] > 0) & (status != S["parked"])
    c["sent_back"] = x.returns
    c["reworked"] = x.rework
    c["reworked_cases"] = x.rework > 0
    c["reopened"] = np.zeros(n, dtype=np.int64)  # no story reopens
    c["reopened_cases"] = np.zeros(n, dtype=bool)
    c["ever_closed"] = closed
    c["urged"] = x.urges
    c["urged_cases"] = x.urges > 0

    # Deadlines: done, on time, overdue and still open, by stage; late at any stage.
    done = x.d_finished != NULL_TS
    ontime = done & (x.d_finished <= x.d_due)
    marked = x.d_overdue != NULL_TS
    open_late = ~done & marked
    slot = x.d_row * len(STAGES) + x.d_stage
    for what, mask in (("done", done), ("ontime", ontime), ("overdue_open", open_late)):
        counts = np.bincount(slot[mask], minlength=n * len(STAGES)).reshape(n, len(STAGES))
        for i, stage_name in enumerate(STAGES):
            c[f"{stage_name}_{what}"] = counts[:, i]
    late = np.bincount(x.d_row[(done & ~ontime) | marked], minlength=n) > 0
    late_open = np.bincount(x.d_row[open_late], minlength=n) > 0
    c["overdue"] = late
    c["overdue_open"] = is_open & late_open
    c["closed_ontime"] = closed & ~late

    followed = x.satisfaction > 0
    c["followed_up"] = followed
    for level in range(1, 6):
        c[f"sat_{level}"] = followed & (x.satisfaction == level)
    timed = closed & (x.closed_at != NULL_TS)
    end = np.where(timed, x.closed_at, x.received)
    seconds = np.where(timed, np.maximum(0, end - x.received), 0)
    c["handle_seconds"] = seconds
    # Office time: ``workcalendar.working_seconds_between`` is the difference of the
    # calendar's office-time coordinate.
    c["work_seconds"] = np.where(timed, np.maximum(0, cal.office(end) - cal.office(x.received)), 0)
    bucket = np.searchsorted(rules.bounds_hours, seconds / 3600, side="left")
    for i in range(len(rules.bounds_hours) + 1):
        c[f"dur_{i:02d}"] = timed & (bucket == i)
    missing = set(rules.case_counters) - set(c)
    if missing:
        raise RuntimeError(f"casegen: no rule for the case counters {sorted(missing)}")

    day = cal.day_of(x.received)
    nodes = rules.grid_nodes[x.grid]
    case_facts = {
        "case": x.ids,
        "day": cal.date2000[day],
        "month": cal.month2000[day],
        "node0": nodes[:, 0],
        "node1": nodes[:, 1],
        "node2": nodes[:, 2],
        "node3": nodes[:, 3],
        "grid_idx": x.grid,
        "category": x.category,
        "unit": x.lead,
        "channel": x.channel,
        "request_type": x.request_type,
        **{name: c[name] for name in rules.case_counters},
    }

    # -- people: every step with an actor, summed by (case, local day, role, user)
    keep = (x.e_actor != 0) & ~np.isin(x.e_action, rules.not_work)
    kept = np.cumsum(keep) - 1  # an event's index among the kept
    row, step_slot, act = x.e_row[keep], x.e_slot[keep], x.e_action[keep]
    role = x.e_role[keep]
    role = np.where((act == A["create"]) & (role == 0), rules.intake_role[x.channel[row]], role)
    e_day = cal.day_of(x.e_at[keep])
    user = x.e_actor[keep]
    widths = [
        int(v).bit_length()
        for v in (n, len(cal.work), len(ROLE_NAMES), int(user.max(initial=0)) + 1)
    ]
    if sum(widths) > 63:
        raise RuntimeError("casegen: a chunk too large for the person facts' keys")
    key = row.astype(np.int64)
    for part, width in zip((e_day, role, user), widths[1:], strict=True):
        key = (key << width) | part.astype(np.int64)
    # The events are in case order: a stable sort only orders each case's few.
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    new = np.ones(len(key), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    group = np.empty(len(key), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    groups = ordered[new]

    # Every (group, counter) an event adds one to, summed by one bincount.
    names = rules.person_counters
    at = {name: i for i, name in enumerate(names)}
    counter = rules.person_counter[act]
    pairs = [group * len(names) + at["events"]]
    pairs.append(group[counter >= 0] * len(names) + counter[counter >= 0])

    def add(name: str, mask: np.ndarray) -> None:
        pairs.append(group[mask] * len(names) + at[name])

    prefix_of = prefix[row]
    valid = filed & ~np.isin(status, rules.invalid_statuses)
    add("valid_reports", (act == A["create"]) & valid[row])
    dispatching = np.isin(act, rules.dispatching)
    add("accurate_dispatches", dispatching & ~prefixes.back[prefix_of, step_slot])
    add("reworked_dispatches", dispatching & prefixes.rework[prefix_of, step_slot])
    add("verify_fails", act == A["verify_fail"])
    to_status = stories.status[x.story[row], step_slot]
    add("closes", (act == A["verify_pass"]) & (to_status == S["closed"]))
    # The stage each step finished (``facts.stage_finishers``): a finished deadline's
    # closing step (the events are row-major over a prefix of each story's slots).
    row_start = np.cumsum(x.n_exec) - x.n_exec
    fin = np.flatnonzero(done)
    step = row_start[x.d_row[fin]] + x.d_close[fin]
    by = keep[step]
    fin, step = fin[by], kept[step[by]]
    for i, stage_name in enumerate(STAGES):
        this = x.d_stage[fin] == i
        pairs.append(group[step[this]] * len(names) + at[f"{stage_name}_timed"])
        this &= ontime[fin]
        pairs.append(group[step[this]] * len(names) + at[f"{stage_name}_ontime"])
    sums = np.bincount(np.concatenate(pairs), minlength=len(groups) * len(names))
    sums = sums.reshape(len(groups), len(names))

    g_user = groups & ((1 << widths[3]) - 1)
    g_role = (groups >> widths[3]) & ((1 << widths[2]) - 1)
    g_day = (groups >> (widths[3] + widths[2])) & ((1 << widths[1]) - 1)
    g_row = groups >> (widths[3] + widths[2] + widths[1])
    g_nodes = nodes[g_row]
    person_facts = {
        "case": x.ids[g_row],
        "day": cal.date2000[g_day],
        "month": cal.month2000[g_day],
        "user": g_user,
        "role": g_role,
        "node0": g_nodes[:, 0],
        "node1": g_nodes[:, 1],
        "node2": g_nodes[:, 2],
        "node3": g_nodes[:, 3],
        "grid_idx": x.grid[g_row],
        **{name: sums[:, i] for i, name in enumerate(names)},
    }
    return case_facts, person_facts


# -- rows ------------------------------------------------------------------------------------
MODELS = ("Case", "CaseEvent", "Deadline", "Approval")
FACT_MODELS = ("CaseFact", "PersonFact")
ROLE_NAMES = ["", "call_taker", "dispatcher", "supervisor", "unit_handler", "grid_worker"]

Columns = list[tuple[str, list[Any]]]


class Writer:
    """Turns a chunk's plan into the rows of the four tables and COPYs them."""

    def __init__(self, conn: Any, t: Tables, world: World, *, person_id: int = 0) -> None:
        self.conn = conn
        self.t = t
        self.types = {m: column_types(conn, t.raw_table(m)) for m in (*MODELS, *FACT_MODELS)}
        self.world = world
        #: The last ``PersonFact`` id written (ids are given, the sequence set after).
        self.person_id = person_id
        self.cat_labels = [name + "：" for name in world.cat_names]
        self.details = [d.split("{p}", 1) for d in DETAILS]
        self.numeric: dict[float, bytes] = {}

    def _with_others(self, model: str, cols: dict[str, list[Any]], n: int) -> Columns:
        """``cols`` (field name -> values) as (column, values), plus every other field's
        default."""
        t = self.t
        out = [(t.column(model, name), values) for name, values in cols.items()]
        for column, value in t.others(model, list(cols)):
            kind = COPY_AS.get(self.types[model][column][0], "bytea")
            if kind == "bytea":
                value = send(self.conn, self.types[model], column, value)
            out.append((column, [value] * n))
        return out

    def write(self, plan: dict[str, dict[str, np.ndarray]], phase: _Timer) -> None:
        for model, key, build in (
            ("Case", "cases", self.case_rows),
            ("CaseEvent", "events", self.event_rows),
            ("Deadline", "deadlines", self.deadline_rows),
            ("Approval", "approvals", self.approval_rows),
        ):
            part = plan[key]
            n = len(next(iter(part.values())))
            if not n:
                continue
            with phase(f"copy {key}"):
                for start in range(0, n, 100_000):
                    sub = {k: v[start : start + 100_000] for k, v in part.items()}
                    copy_columns(self.conn, self.t.raw_table(model), build(sub), self.types[model])

    def write_facts(self, conn: Any, plan: dict[str, dict[str, np.ndarray]], phase: _Timer) -> None:
        """The chunk's statistics facts, in one transaction of ``conn``."""
        with conn.transaction():
            for model, key in (("CaseFact", "casefacts"), ("PersonFact", "personfacts")):
                part = plan[key]
                n = len(part["case"])
                with phase(f"copy {key}"):
                    for start in range(0, n, 100_000):
                        sub = {k: v[start : start + 100_000] for k, v in part.items()}
                        fixed, texts = self.fact_rows(model, sub)
                        copy_arrays(conn, self.t.raw_table(model), fixed, texts, self.types[model])

    def fact_rows(
        self, model: str, f: dict[str, np.ndarray]
    ) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray, Sequence[str]]]]:
        """A chunk of ``_fact_plan``'s rows as ``copy_arrays`` columns."""
        t = self.t
        choices = {
            "grid_idx": ("grid_path", self.world.grid_paths),
            "channel": ("channel", CHANNELS),
            "request_type": ("request_type", REQUEST_TYPES),
            "role": ("role", ROLE_NAMES),
        }
        n = len(f["case"])
        fixed: list[tuple[str, np.ndarray]] = []
        texts: list[tuple[str, np.ndarray, Sequence[str]]] = []
        if model == "PersonFact":
            fixed.append((t.column(model, "id"), self.person_id + 1 + np.arange(n)))
            self.person_id += n
        for name, values in f.items():
            if name in choices:
                field_name, options = choices[name]
                texts.append((t.column(model, field_name), values, options))
            else:
                fixed.append((t.column(model, name), values))
        known = [choices[k][0] if k in choices else k for k in f]
        for column, value in t.others(model, known):
            if isinstance(value, bool | int):
                fixed.append((column, np.full(n, value)))
            elif isinstance(value, str):
                texts.append((column, np.zeros(n, dtype=np.int64), [value]))
            else:
                raise RuntimeError(f"casegen: teach the facts' writer {model}'s {column}")
        return fixed, texts

    def case_rows(self, c: dict[str, np.ndarray]) -> Columns:
        w = self.world
        n = len(c["id"])
        number = [str(x) for x in c["number"].tolist()]
        hotline = (c["channel"] == CHANNELS.index("hotline")).tolist()
        places = cat(c["grid_idx"], w.grid_places)
        heads = cat(c["detail"], [a for a, _ in self.details])
        tails = cat(c["detail"], [b for _, b in self.details])
        labels = cat(c["cat_idx"], self.cat_labels)
        names = cat(c["surname"] + 1, ["", *SURNAMES])
        titles = cat(
            np.where(c["surname"] < 0, 0, 1 + c["female"].astype(np.int64)), ["", "先生", "女士"]
        )
        cols: dict[str, list[Any]] = {
            "id": c["id"].tolist(),
            "number": number,
            "tracking_code": [x.decode() for x in c["tracking"].tolist()],
            "channel": cat(c["channel"], CHANNELS),
            "request_type": cat(c["request_type"], REQUEST_TYPES),
            "category": c["category"].tolist(),
            "urgency": cat(c["urgency"], URGENCIES),
            "status": cat(c["status"], STATUSES),
            "status_before_park": cat(c["before_park"] + 1, ["", *STATUSES]),
            "title": [""] * n,
            "description": [
                a + b + p + d for a, b, p, d in zip(labels, heads, places, tails, strict=True)
            ],
            "address": [
                f"{p}{b}号楼附近" for p, b in zip(places, c["building"].tolist(), strict=True)
            ],
            "lon": c["lon"].tolist(),
            "lat": c["lat"].tolist(),
            "input_crs": cat(c["gcj"].astype(np.int64), ["wgs84", "gcj02"]),
            "grid": w.grid_ids[c["grid_idx"]].tolist(),
            "grid_path": cat(c["grid_idx"], w.grid_paths),
            "needs_location": [False] * n,
            "requester_name": [a + b for a, b in zip(names, titles, strict=True)],
            "requester_phone": [str(x) if x else "" for x in c["phone"].tolist()],
            "is_confidential": c["confidential"].tolist(),
            "external_id": [
                "GD" + num if h else "" for num, h in zip(number, hotline, strict=True)
            ],
            "idempotency_key": [None] * n,
            "suggested_unit": nullable(c["suggested"], c["suggested"] == 0),
            "lead_unit": nullable(c["lead"], c["lead"] == 0),
            "merged_into": nullable(c["merged_into"], c["merged_into"] == 0),
            "result": cat(c["result"] + 1, ["", *REASONS["handle"]]),
            "rework_count": c["rework"].tolist(),
            "reopen_count": [0] * n,
            "return_count": c["returns"].tolist(),
            "urge_count": c["urges"].tolist(),
            "satisfaction": nullable(c["satisfaction"], c["satisfaction"] == 0),
            "is_overdue": c["overdue"].tolist(),
            "due_at": ts_values(c["due"]),
            "version": c["version"].tolist(),
            "created_by": nullable(c["created_by"], c["created_by"] == 0),
            "received_at": ts_values(c["received"]),
            "closed_at": ts_values(c["closed"]),
            "created_at": ts_values(c["received"]),
            "updated_at": ts_values(c["updated"]),
        }
        return self._with_others("Case", cols, n)

    def event_rows(self, e: dict[str, np.ndarray]) -> Columns:
        n = len(e["case"])
        public = np.isin(e["action"], [A[x] for x in PUBLIC])
        iso = np.datetime_as_string(
            np.where(e["pts"] == NULL_TS, 0, e["pts"]).astype("datetime64[s]"), unit="s"
        )
        # Payloads repeat (a channel, a unit pair, a satisfaction level, or none) but for
        # overdue marks, merges and voids, which are written one by one.
        special = np.isin(
            e["action"], [A["overdue"], A["merge"], A["request_void"], A["approve_void"]]
        )
        key = np.where(special, -1, (e["action"] << 40) + (e["p1"] << 20) + e["p2"])
        uniq, codes = np.unique(key, return_inverse=True)
        choices = [
            self._payload(ACTIONS[k >> 40], (k >> 20) & 0xFFFFF, k & 0xFFFFF) if k >= 0 else b""
            for k in uniq.tolist()
        ]
        payloads = cat(codes, choices)
        rows = np.flatnonzero(special)
        stages = [x.encode() for x in STAGES]
        for row, action_i, p1, p2, when in zip(
            rows.tolist(),
            e["action"][rows].tolist(),
            e["p1"][rows].tolist(),
            e["p2"][rows].tolist(),
            iso[rows].tolist(),
            strict=True,
        ):
            if action_i == A["overdue"]:
                payloads[row] = b'\x01{"stage": "%s", "due_at": "%s+00:00"}' % (
                    stages[p1],
                    when.encode(),
                )
            else:
                payloads[row] = self._payload(ACTIONS[action_i], p1, p2)
        cols: dict[str, list[Any]] = {
            "case": e["case"].tolist(),
            "action": cat(e["action"], ACTIONS),
            "actor": nullable(e["actor"], e["actor"] == 0),
            "actor_role": cat(e["role"], ROLE_NAMES),
            "actor_unit": nullable(e["unit"], e["unit"] == 0),
            "at": ts_values(e["at"]),
            "from_status": cat(e["from"] + 1, ["", *STATUSES]),
            "to_status": cat(e["to"] + 1, ["", *STATUSES]),
            "reason": cat(e["reason"] + 1, ["", *REASON_LIST]),
            "is_public": public.tolist(),
            "payload": payloads,
        }
        return self._with_others("CaseEvent", cols, n)

    @staticmethod
    def _payload(action: str, p1: int, p2: int) -> bytes:
        """The event payload the service writes for ``action`` (jsonb's binary form)."""
        body: dict[str, Any] = {}
        if action == "create":
            body = {"channel": CHANNELS[p1]}
        elif action in ("dispatch", "redispatch"):
            body = {
                "lead_unit": p1,
                "assisting_units": [],
                "suggested_unit": p2,
                "followed_suggestion": p1 == p2,
            }
        elif action == "follow_up":
            body = {"satisfaction": p1}
        elif action == "merge":
            body = {"into": p1, "into_number": str(p2)}
        elif action in ("request_void", "approve_void"):
            body = {"approval": p1}
        return b"\x01" + json.dumps(body, ensure_ascii=False).encode()

    def deadline_rows(self, d: dict[str, np.ndarray]) -> Columns:
        n = len(d["case"])
        uniq, codes = np.unique(np.round(d["amount"], 2), return_inverse=True)
        column = self.t.column("Deadline", "amount")
        for a in uniq.tolist():
            if a not in self.numeric:
                data = send(self.conn, self.types["Deadline"], column, f"{a:.2f}")
                assert data is not None
                self.numeric[a] = data
        cols: dict[str, list[Any]] = {
            "case": d["case"].tolist(),
            "stage": cat(d["stage"], STAGES),
            "started_at": ts_values(d["started"]),
            "due_at": ts_values(d["due"]),
            "finished_at": ts_values(d["finished"]),
            "overdue_at": ts_values(d["overdue"]),
            "paused_at": ts_values(d["paused"]),
            "amount": cat(codes.astype(np.int64), [self.numeric[a] for a in uniq.tolist()]),
            "unit": cat(d["unit"], ["work_hours", "work_days", "natural_hours"]),
        }
        return self._with_others("Deadline", cols, n)

    def approval_rows(self, p: dict[str, np.ndarray]) -> Columns:
        n = len(p["id"])
        decided = p["decided_by"] != 0
        cols: dict[str, list[Any]] = {
            "id": p["id"].tolist(),
            "case": p["case"].tolist(),
            "kind": ["void"] * n,
            "status": cat(decided.astype(np.int64), ["pending", "approved"]),
            "reason": cat(p["reason"], REASON_LIST),
            "requested_by": p["requested_by"].tolist(),
            "requested_at": ts_values(p["requested_at"]),
            "extra_amount": [None] * n,
            "decided_by": nullable(p["decided_by"], ~decided),
            "decided_at": ts_values(p["decided_at"]),
            "decision_note": [""] * n,
        }
        return self._with_others("Approval", cols, n)


# -- command line ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument(
        "--dsn",
        default="",
        help="libpq connection string of a migrated database with a grid tree "
        "(default: a new temporary database with the demo district)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary database, renamed civicgrid_casegen_<cases> (or --name)",
    )
    parser.add_argument("--name", default="", help="the kept database's name")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--flow", choices=["full", "filed"], default="full")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    parser.add_argument(
        "--facts",
        action="store_true",
        help="also write the statistics facts (stats_casefact, stats_personfact)",
    )
    args = parser.parse_args(argv)

    import psycopg

    from bench.common import Context
    from bench.pg import CivicgridDB

    setup_django_once()
    db = None
    if args.dsn:
        dsn = args.dsn
    else:
        db = CivicgridDB.open(Context(), "casegen")
        if db is None:
            return 1
        dsn = db.dsn
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            t0 = time.perf_counter()
            result = generate(
                conn,
                args.cases,
                seed=args.seed,
                days=args.days,
                flow=args.flow,
                chunk=args.chunk,
                facts=args.facts,
            )
            seconds = time.perf_counter() - t0
        report = result.as_dict() | {"total_seconds": round(seconds, 1)}
        say(json.dumps(report, ensure_ascii=False, indent=2))
        if db is not None and args.keep:
            from bench.pg import admin_connect

            name = args.name or f"civicgrid_casegen_{args.cases}"
            with admin_connect() as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {q(name)} WITH (FORCE)")
                admin.execute(f"ALTER DATABASE {q(db.name)} RENAME TO {q(name)}")
            db.closed = True  # kept
            shutil.rmtree(db.var_dir, ignore_errors=True)
            say(f'kept: database {name}; drop it with: DROP DATABASE "{name}"')
    finally:
        if db is not None:
            db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
