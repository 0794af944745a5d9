"""``civicgrid import-cases``: cases from a 12345 platform's export.

Two modes:

- **historical** keeps the export's times and final states. Each case's story
  (received → accepted → dispatched → acknowledged → handled → closed, a rejection,
  a follow-up with its satisfaction) is played on the demo history's ``CaseSim``,
  which leaves exactly the rows the case services would have written at those times:
  the case, its events, its stage deadlines from the category's time limits on the
  work calendar, the sweep's overdue marks. Rows are inserted in batches
  (``BATCH`` rows; ``COPY`` on PostgreSQL), **one transaction per batch** together
  with the cases' statistics facts and their rollups (``rollups.record_bulk_intake``),
  so a batch is in the statistics the moment it is committed, and an interrupted
  import keeps the batches it finished (running it again skips them).
- **live** takes every valid row in through ``cases.services.create_case``, the
  intake of every channel: location, routing suggestion, idempotency, the accept
  stage's deadline; the case waits in 待受理 for a call-taker.

Either way a case is known by the 12345 channel and its 工单编号 (external id): a row
whose case is already here is skipped, so a file imported twice adds nothing. A row
with any problem is refused with its row number, column and reason, and written to
the error report beside the input; every valid row is kept.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import secrets
import time as monotime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases import routing
from civicgrid.cases.errors import IntakeError
from civicgrid.cases.models import (
    Case,
    Category,
    Channel,
    RoutingRule,
    Status,
)
from civicgrid.cases.services import Intake, create_case
from civicgrid.cases.services.engine import time_limit
from civicgrid.cases.services.intake import TRACKING_ALPHABET
from civicgrid.demo.history_engine import CaseSim, SimError, Step
from civicgrid.demo.history_engine import Intake as SimIntake
from civicgrid.exchange import report
from civicgrid.exchange.mapping import Mapping
from civicgrid.exchange.reader import open_sheet
from civicgrid.exchange.rows import (
    DISPATCHED_STATUSES,
    HISTORICAL,
    LIVE,
    Columns,
    Problem,
    Row,
    parse_row,
)
from civicgrid.exchange.writer import Analyzer, Batch, Writer, present_external_ids
from civicgrid.grids import crs as crs_mod
from civicgrid.grids import locator
from civicgrid.grids.models import Grid, HandlingUnit

CHANNEL = Channel.HOTLINE
BATCH = 5000
MODES = (HISTORICAL, LIVE)
#: How far apart steps the export gives no time for are put (see ``schedule``).
STEP_GAP = timedelta(minutes=1)
EARLY_STEPS = frozenset({"accept", "dispatch", "acknowledge"})
ROLE_OF_STEP = {
    "accept": Role.CALL_TAKER,
    "reject": Role.CALL_TAKER,
    "dispatch": Role.DISPATCHER,
    "acknowledge": Role.UNIT_HANDLER,
    "handle": Role.UNIT_HANDLER,
    "verify": Role.SUPERVISOR,
    "close": Role.SUPERVISOR,
    "follow_up": Role.CALL_TAKER,
}

Progress = Callable[[int, int | None], None]


@dataclass
class Refused:
    number: int
    cells: list[Any]
    problems: list[Problem]


@dataclass
class ImportResult:
    path: Path
    mode: str
    dry_run: bool
    read: int = 0
    imported: int = 0
    skipped: int = 0
    refused: int = 0
    #: Imported without a grid, waiting for someone to locate them.
    needs_location: int = 0
    events: int = 0
    deadlines: int = 0
    report: Path | None = None
    seconds: float = 0.0
    refused_rows: list[Refused] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    encoding: str = ""


# -- the import ---------------------------------------------------------------------------
def import_cases(
    *,
    path: Path,
    mapping: Mapping,
    mode: str = HISTORICAL,
    dry_run: bool = False,
    batch: int = BATCH,
    actor: User | None = None,
    report_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import an export (CSV or XLSX) through ``mapping``. Raises ``ReadError`` or
    ``HeaderError`` before anything is written when the file cannot be used."""
    if mode not in MODES:
        raise ValueError(mode)
    started = monotime.monotonic()
    sheet = open_sheet(path, mapping)
    columns = Columns.find(sheet.headers, mapping)
    result = ImportResult(path=path, mode=mode, dry_run=dry_run, headers=sheet.headers)
    result.encoding = sheet.encoding
    context = _Context(mapping, actor)
    seen: dict[str, int] = {}
    threaded = mode == HISTORICAL and not dry_run
    writer = Writer(threaded=threaded, done=functools.partial(_written, result))
    analyzer = Analyzer(enabled=threaded)
    with _fewer_collections(), writer:
        for rows in _batches(sheet.rows, batch):
            parsed = [parse_row(n, cells, columns, mapping, mode=mode) for n, cells in rows]
            result.read += len(parsed)
            good = _prepare(parsed, columns, context, seen, result)
            if mode == HISTORICAL:
                _write_history(good, columns, context, result, dry_run, writer)
                analyzer.grown(result.imported)
            else:
                _write_live(good, columns, context, result, dry_run)
            if progress:
                progress(result.read, sheet.total)
        writer.wait()
    analyzer.finished(result.imported)
    result.refused = len(result.refused_rows)
    result.refused_rows.sort(key=lambda r: r.number)
    result.report = report.write_report(
        report_path or report.report_path(path), sheet.headers, result.refused_rows
    )
    result.seconds = monotime.monotonic() - started
    return result


#: The garbage collector's thresholds during an import (at least these).
GC_THRESHOLDS = (20_000, 20, 100)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The cyclic garbage collector run less often while importing, as it was after.

    A batch makes hundreds of thousands of objects that live until it is written
    (cases, events, deadlines, facts), none of them in a reference cycle: with the
    default thresholds (700, 10, 10) the collector walks them over and over, a third
    of the simulation's time. Garbage without cycles is freed at once whatever the
    thresholds; the rare cycles wait a little longer."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(a, b) for a, b in zip(before, GC_THRESHOLDS, strict=False)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _batches(rows: Iterator[tuple[int, list[Any]]], size: int) -> Iterator[list[Any]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _refuse(result: ImportResult, row: Row, *problems: Problem) -> None:
    result.refused_rows.append(Refused(row.number, row.cells, [*row.problems, *problems]))


class _Context:
    """What every batch needs: grids, the locator, time limits and routing, cached."""

    def __init__(self, mapping: Mapping, actor: User | None) -> None:
        self.mapping = mapping
        self.actor = actor
        self.now = timezone.now()
        self.grids = {
            pk: (path, code)
            for pk, path, code in Grid.objects.active().values_list("pk", "path", "code")
        }
        self.grid_by_code = {code: pk for pk, (_path, code) in self.grids.items()}
        self.locator = locator.get_locator()
        self.categories: dict[int, Category] = {
            c.pk: c
            for c in Category.objects.select_related(
                "parent", "default_unit__serves", "parent__default_unit__serves"
            )
        }
        self.anchors = set(
            RoutingRule.objects.filter(is_active=True).values_list("grid_id", flat=True)
        ) | set(HandlingUnit.objects.active().values_list("serves_id", flat=True))
        self._limits: dict[tuple[int, str, str], tuple[Decimal, str]] = {}
        self._suggest: dict[tuple[int, int], int | None] = {}
        self._grid_objects: dict[int, Grid] = {}
        #: Per grid: its nearest ancestor (itself included) with a rule or a unit, else 0.
        self._anchor: dict[int, int] = {}
        #: The time zone case numbers are dated in (``create_case``: the current one).
        self.zone = timezone.get_current_timezone()

    def time_limit(self, category_id: int, urgency: str, stage: str) -> tuple[Decimal, str]:
        found_key = (category_id, urgency, stage)
        found = self._limits.get(found_key)
        if found is None:
            case = Case(category=self.categories[category_id], urgency=urgency)
            found = self._limits[found_key] = time_limit(case, stage)
        return found

    def suggest(self, category_id: int, grid_id: int) -> int | None:
        """``routing.suggest``, cached: its answer depends only on the category and on
        which of the grid's ancestors have a routing rule or a unit serving them."""
        anchor = self._anchor.get(grid_id)
        if anchor is None:
            path = self.grids[grid_id][0]
            ids = [int(p) for p in path.strip("/").split("/") if p]
            anchor = self._anchor[grid_id] = next(
                (i for i in reversed(ids) if i in self.anchors), 0
            )
        cache_key = (category_id, anchor)
        if cache_key not in self._suggest:
            if not self._grid_objects:
                self._grid_objects = Grid.objects.active().in_bulk()
            grid = self._grid_objects[grid_id]
            found = routing.suggest(category=self.categories[category_id], grid=grid)
            self._suggest[cache_key] = found.lead.pk if found else None
        return self._suggest[cache_key]


def _prepare(
    parsed: list[Row],
    columns: Columns,
    context: _Context,
    seen: dict[str, int],
    result: ImportResult,
) -> list[tuple[Row, int | None, tuple[float, float] | None]]:
    """The rows of a batch that can go in, each with its grid and stored position;
    the others refused, those already here skipped."""
    candidates: list[Row] = []
    for row in parsed:
        if not row.ok:
            _refuse(result, row)
            continue
        first = seen.get(row.external_id)
        if first is not None:
            _refuse(
                result,
                row,
                Problem(
                    columns.label("external_id"),
                    _("工单编号与第 %(n)d 行重复") % {"n": first},
                ),
            )
            continue
        seen[row.external_id] = row.number
        moments = {
            "received_at": row.received_at,
            **row.times,
            "followed_up_at": row.followed_up_at,
        }
        late = [name for name, moment in moments.items() if moment and moment >= context.now]
        if late:
            _refuse(result, row, *(Problem(columns.label(n), _("时间晚于当前时间")) for n in late))
            continue
        candidates.append(row)
    present = present_external_ids([r.external_id for r in candidates])
    fresh = [r for r in candidates if r.external_id not in present]
    result.skipped += len(candidates) - len(fresh)
    located = _locate(fresh, context)
    out = []
    for row, (grid_id, stored) in zip(fresh, located, strict=True):
        if row.lon is not None and grid_id is None:
            _refuse(
                result,
                row,
                Problem(
                    columns.label("lon"),
                    _("位置 (%(lon)s, %(lat)s) 不在辖区内") % {"lon": row.lon, "lat": row.lat},
                ),
            )
            continue
        if row.lon is None and row.grid_code and result.mode == HISTORICAL:
            grid_id = context.grid_by_code.get(row.grid_code)
            if grid_id is None:
                _refuse(
                    result,
                    row,
                    Problem(
                        columns.label("grid_code"),
                        _("没有编码为 %(c)s 的网格") % {"c": row.grid_code},
                    ),
                )
                continue
        out.append((row, grid_id, stored))
    return out


def _locate(
    rows: list[Row], context: _Context
) -> list[tuple[int | None, tuple[float, float] | None]]:
    """Each row's grid and its position in storage coordinates, in one batch."""
    out: list[tuple[int | None, tuple[float, float] | None]] = [(None, None)] * len(rows)
    with_points = [i for i, r in enumerate(rows) if r.lon is not None and r.lat is not None]
    if not with_points:
        return out
    coords = np.array([[rows[i].lon, rows[i].lat] for i in with_points], dtype=float)
    stored = crs_mod.array_to_storage(coords, context.mapping.crs)
    grid_ids = context.locator.grid_ids_at(stored[:, 0], stored[:, 1])
    for n, i in enumerate(with_points):
        grid_id = int(grid_ids[n])
        point = (float(stored[n, 0]), float(stored[n, 1]))
        out[i] = (grid_id if grid_id >= 0 else None, point)
    return out


# -- historical ----------------------------------------------------------------------------
def schedule(start: datetime, plan: list[tuple[str, datetime | None]]) -> list[datetime]:
    """The time of each step: the export's where it gives one, else close to its neighbours.

    Steps without a time of their own that come early in a case (accept, dispatch,
    acknowledge) follow the previous known time a minute apart; later ones (handle,
    verify, close) precede the next known time a minute apart; when the two times
    are closer, the steps share the gap evenly. A step given the same time as the one
    before it is put a second after it (steps of a case are strictly ordered).
    """
    times: list[datetime] = []
    previous = start
    i = 0
    while i < len(plan):
        known = plan[i][1]
        if known is not None:
            moment = max(known, previous + timedelta(seconds=1))
            times.append(moment)
            previous = moment
            i += 1
            continue
        j = i
        while j < len(plan) and plan[j][1] is None:
            j += 1
        count = j - i
        following = plan[j][1] if j < len(plan) else None
        if following is None or following <= previous:
            gap = STEP_GAP
            for m in range(count):
                times.append(previous + (m + 1) * gap)
        else:
            gap = max(
                min(STEP_GAP, (following - previous) / (count + 1)), timedelta(microseconds=1)
            )
            for m in range(count):
                if plan[i + m][0] in EARLY_STEPS:
                    times.append(previous + (m + 1) * gap)
                else:
                    times.append(following - (count - m) * gap)
        previous = times[-1]
        i = j
    return times


def story(row: Row, lead_unit: int | None, default_result: str, default_reason: str) -> list[Step]:
    """The steps that lead a case to the export's final state, at the export's times."""
    status = row.status
    t = row.times
    plan: list[tuple[str, datetime | None]] = []
    if status == Status.REJECTED:
        plan.append(("reject", t.get("closed_at") or t.get("accepted_at")))
    elif status != Status.NEW:
        plan.append(("accept", t.get("accepted_at")))
        if status in DISPATCHED_STATUSES:
            plan.append(("dispatch", t.get("dispatched_at")))
        if status in (Status.IN_PROGRESS, Status.HANDLED, Status.CLOSED):
            plan.append(("acknowledge", None))
        if status in (Status.HANDLED, Status.CLOSED):
            plan.append(("handle", t.get("handled_at")))
        if status == Status.CLOSED:
            if settings.CIVICGRID_CLOSE_ON_VERIFY:
                plan.append(("verify", t.get("closed_at")))
            else:
                plan.append(("verify", None))
                plan.append(("close", t.get("closed_at")))
            if row.satisfaction is not None:
                plan.append(("follow_up", row.followed_up_at))
    assert row.received_at is not None
    steps = []
    for (action, _known), moment in zip(plan, schedule(row.received_at, plan), strict=True):
        step = Step(at=moment, action=action, actor=None, role=ROLE_OF_STEP[action])
        if action == "dispatch":
            step.unit = lead_unit
        elif action == "handle":
            step.text = row.reply or default_result
        elif action == "reject":
            step.text = row.reply or default_reason
        elif action == "follow_up":
            step.satisfaction = row.satisfaction
        steps.append(step)
    return steps


class _Ids:
    """Case ids for a batch: taken from the sequence on PostgreSQL (safe beside live
    intake), after the highest id on SQLite (one writer at a time)."""

    def __init__(self) -> None:
        self.next_sqlite = 0

    def take(self, count: int) -> list[int]:
        if count == 0:
            return []
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [Case._meta.db_table, count],
                )
                return [r[0] for r in cursor.fetchall()]
        first = max(self.next_sqlite, (Case.objects.aggregate(top=Max("id"))["top"] or 0) + 1)
        self.next_sqlite = first + count
        return list(range(first, first + count))


_IDS = _Ids()


_CODE_LENGTH = 10
#: Random bytes to tracking code characters, uniformly: a byte below ``_UNBIASED`` (a
#: multiple of the alphabet's size) is a character, the others are thrown away.
_UNBIASED = 256 - 256 % len(TRACKING_ALPHABET)
_BYTE_TO_CHAR = bytes(
    ord(TRACKING_ALPHABET[b % len(TRACKING_ALPHABET)]) if b < _UNBIASED else 0 for b in range(256)
)
_BIASED_BYTES = bytes(range(_UNBIASED, 256))


def _random_codes(count: int) -> list[str]:
    """``count`` codes of characters drawn as ``secrets.choice(TRACKING_ALPHABET)``
    draws them (uniform, from the system's random source), from one random buffer."""
    need = count * _CODE_LENGTH
    chars = b""
    while len(chars) < need:
        raw = secrets.token_bytes(need - len(chars) + 16)
        chars += raw.translate(_BYTE_TO_CHAR, _BIASED_BYTES)
    text = chars[:need].decode("ascii")
    return [text[i : i + _CODE_LENGTH] for i in range(0, need, _CODE_LENGTH)]


def _tracking_codes(count: int) -> list[str]:
    while True:
        codes = _random_codes(count)
        if len(set(codes)) == count and not Case.objects.filter(tracking_code__in=codes).exists():
            return codes


def _simulate(
    row: Row,
    grid_id: int | None,
    stored: tuple[float, float] | None,
    case_id: int,
    tracking_code: str,
    context: _Context,
) -> CaseSim:
    mapping = context.mapping
    assert row.received_at is not None
    assert row.category_id is not None
    suggested = context.suggest(row.category_id, grid_id) if grid_id is not None else None
    path = context.grids[grid_id][0] if grid_id is not None else ""
    intake = SimIntake(
        external_id=row.external_id,
        received_at=row.received_at,
        category_id=row.category_id,
        urgency=row.urgency,
        request_type=row.request_type,
        title=row.title,
        description=row.description,
        address=row.address,
        lon=0.0,
        lat=0.0,
        grid_id=0,
        grid_path=path,
        requester_name=row.requester_name,
        requester_phone=row.requester_phone,
        call_taker=context.actor.pk if context.actor else None,
        suggested_unit_id=suggested,
        tracking_code=tracking_code,
    )
    sim = CaseSim(
        intake=intake,
        case_id=case_id,
        time_limit=context.time_limit,
        roles={},
        approval_ids=iter(()),
        end=context.now,
        zone=context.zone,
    )
    # Where it is, as create_case would have placed it (or not: kept for manual location).
    located = stored is not None and grid_id is not None
    sim.case.grid_id = grid_id
    sim.case.lon = stored[0] if located and stored else None
    sim.case.lat = stored[1] if located and stored else None
    sim.case.input_crs = mapping.crs if located else ""
    sim.case.needs_location = grid_id is None
    sim.case.is_confidential = row.confidential
    lead = row.unit_id or suggested
    for step in story(row, lead, mapping.default_result, mapping.default_reject_reason):
        if step.at >= context.now:
            raise SimError(_("时间晚于当前时间"))
        sim.apply(step)
    sim.finish()
    return sim


def _problem_of(columns: Columns, exc: SimError) -> Problem:
    return Problem(columns.label("status"), _("无法按工单状态重建办理过程：%(e)s") % {"e": exc})


def _write_history(
    rows: list[tuple[Row, int | None, tuple[float, float] | None]],
    columns: Columns,
    context: _Context,
    result: ImportResult,
    dry_run: bool,
    writer: Writer,
) -> None:
    sims: list[CaseSim] = []
    ids = _IDS.take(len(rows)) if not dry_run else list(range(-len(rows), 0))
    codes = _tracking_codes(len(rows))
    for (row, grid_id, stored), case_id, code in zip(rows, ids, codes, strict=True):
        if row.status in DISPATCHED_STATUSES and grid_id is None and not row.unit_id:
            _refuse(
                result,
                row,
                Problem(columns.label("unit"), _("缺少承办单位，且案件没有位置，无法确定")),
            )
            continue
        try:
            sim = _simulate(row, grid_id, stored, case_id, code, context)
        except SimError as exc:
            _refuse(result, row, _problem_of(columns, exc))
            continue
        if row.status in DISPATCHED_STATUSES and sim.case.lead_unit_id is None:
            _refuse(
                result,
                row,
                Problem(columns.label("unit"), _("缺少承办单位，且无法按派单目录确定")),
            )
            continue
        sims.append(sim)
    if dry_run or not sims:
        _count(result, sims)
        return
    writer.submit(Batch.of(sims))


def _written(result: ImportResult, sims: list[CaseSim], skipped: int) -> None:
    result.skipped += skipped
    _count(result, sims)


def _count(result: ImportResult, sims: list[CaseSim]) -> None:
    result.imported += len(sims)
    result.needs_location += sum(1 for s in sims if s.case.needs_location)
    result.events += sum(len(s.events) for s in sims)
    result.deadlines += sum(len(s.deadlines) for s in sims)


# -- live ------------------------------------------------------------------------------------
def _write_live(
    rows: list[tuple[Row, int | None, tuple[float, float] | None]],
    columns: Columns,
    context: _Context,
    result: ImportResult,
    dry_run: bool,
) -> None:
    mapping = context.mapping
    for row, _grid_id, _stored in rows:
        if dry_run:
            result.imported += 1
            result.needs_location += row.lon is None
            continue
        assert row.category_id is not None
        data = Intake(
            channel=CHANNEL,
            category=context.categories[row.category_id],
            description=row.description,
            urgency=row.urgency,
            request_type=row.request_type,
            title=row.title,
            address=row.address,
            lon=row.lon,
            lat=row.lat,
            crs=mapping.crs,
            requester_name=row.requester_name,
            requester_phone=row.requester_phone,
            is_confidential=row.confidential,
            external_id=row.external_id,
            received_at=row.received_at,
        )
        try:
            case, created = create_case(data=data, actor=context.actor)
        except IntakeError as exc:
            column = columns.label("lon") if row.lon is not None else ""
            _refuse(result, row, Problem(column, str(exc)))
            continue
        if not created:
            result.skipped += 1
            continue
        result.imported += 1
        result.needs_location += case.needs_location


__all__ = [
    "BATCH",
    "CHANNEL",
    "MODES",
    "ImportResult",
    "Refused",
    "import_cases",
    "schedule",
    "story",
]
