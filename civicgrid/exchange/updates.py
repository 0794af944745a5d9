"""Status and replies flowing back to the 12345 platform (``civicgrid export-updates``).

Every event since a time that the platform needs to hear about, on the cases it sent
(the 12345 channel, with its 工单编号): accepted, rejected, dispatched and
re-dispatched, sent back, handled (the unit's reply), closed, reopened, rated. One
line per event, in the order they happened, with the order number, the time, the
status the case is in after the event, the unit, and the public reply text (the
text of an event citizens may see; the reason of a send-back goes in its own column,
as the platform needs it to re-dispatch). CSV is UTF-8 with a byte-order mark; XLSX
has a bold frozen header row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.cases.models import Action, CaseEvent, Status
from civicgrid.exchange.importer import CHANNEL
from civicgrid.exchange.mapping import BUILTIN_SATISFACTION

#: What each exported event is called on the 12345 side.
EVENTS: dict[str, str] = {
    Action.ACCEPT: "受理",
    Action.REJECT: "不予受理",
    Action.DISPATCH: "派单",
    Action.REDISPATCH: "改派",
    Action.SEND_BACK: "退回",
    Action.HANDLE: "办理反馈",
    Action.CLOSE: "办结",
    Action.VERIFY_PASS: "办结",  # only when it closes the case
    Action.REOPEN: "重办",
    Action.FOLLOW_UP: "回访评价",
}
#: Events done by the centre for the lead unit's case: the unit column shows the lead.
LEAD_UNIT_EVENTS = frozenset({Action.CLOSE, Action.VERIFY_PASS, Action.REOPEN, Action.FOLLOW_UP})
SATISFACTION_WORDS = {
    level: word
    for word, level in BUILTIN_SATISFACTION.items()
    if not word.isdigit() and word != "一般"
}


def headers() -> list[str]:
    return [
        _("工单编号"),
        _("本系统案件编号"),
        _("事件"),
        _("时间"),
        _("工单状态"),
        _("办理单位"),
        _("答复内容"),
        _("退回理由"),
        _("满意度"),
    ]


def events_since(since: datetime, until: datetime | None = None) -> Iterator[CaseEvent]:
    exported = [a for a in EVENTS if a != Action.VERIFY_PASS]
    closing = Q(action=Action.VERIFY_PASS, to_status=Status.CLOSED)
    query = (
        CaseEvent.objects.filter(Q(action__in=exported) | closing, at__gte=since)
        .filter(case__channel=CHANNEL)
        .exclude(case__external_id="")
        .select_related("case", "case__lead_unit", "actor_unit")
        .order_by("at", "id")
    )
    if until is not None:
        query = query.filter(at__lt=until)
    return query.iterator(chunk_size=2000)


def line(event: CaseEvent) -> list[Any]:
    case = event.case
    status = event.to_status or case.status
    unit = event.actor_unit
    if unit is None and event.action in LEAD_UNIT_EVENTS:
        unit = case.lead_unit
    reply = event.reason if event.is_public else ""
    if event.action in (Action.CLOSE, Action.VERIFY_PASS):
        reply = case.result or reply
    satisfaction = ""
    if event.action == Action.FOLLOW_UP:
        level = (event.payload or {}).get("satisfaction")
        satisfaction = SATISFACTION_WORDS.get(int(level), str(level)) if level else ""
    return [
        case.external_id,
        case.number,
        EVENTS[event.action],
        timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S"),
        str(Status(status).label) if status else "",
        unit.name if unit else "",
        reply,
        event.reason if event.action == Action.SEND_BACK else "",
        satisfaction,
    ]


def write_csv(events: Iterator[CaseEvent], handle: Any) -> int:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(headers())
    count = 0
    for event in events:
        writer.writerow(line(event))
        count += 1
    return count


WIDTHS = (20, 18, 10, 20, 10, 24, 60, 30, 10)


def write_xlsx(events: Iterator[CaseEvent], path: Path) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("办理情况"))
    sheet.freeze_panes = "A2"
    for i, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    header_cells = []
    for title in headers():
        cell = WriteOnlyCell(sheet, value=title)
        cell.font, cell.fill = bold, fill
        header_cells.append(cell)
    sheet.append(header_cells)
    count = 0
    for event in events:
        sheet.append(line(event))
        count += 1
    book.save(path)
    return count


__all__ = ["EVENTS", "events_since", "headers", "line", "write_csv", "write_xlsx"]
