"""``civicgrid export-updates``: the events a 12345 platform needs, back to it."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Channel
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.models import HandlingUnit

START = datetime(2025, 11, 3, 9, 0, tzinfo=timezone.get_default_timezone())


@pytest.fixture
def story(
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    supervisor: User,
    east_worker: User,
    city_unit: HandlingUnit,
) -> Case:
    """A 12345 work order sent back once, handled, closed, rated and reopened; beside it a
    case of our own and one of the web portal, which the platform does not know."""
    with time_machine.travel(START, tick=False) as clock:
        case = new_case(external_id="GD2025110300001")
        new_case(description="网格员发现的问题")
        new_case(channel=Channel.WEB, external_id="W-1")

        def step() -> None:
            clock.shift(timedelta(minutes=10))

        step()
        case = services.accept_case(case=case, actor=call_taker)
        step()
        case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
        step()
        case = services.send_back_case(case=case, actor=unit_handler, reason="非我单位职责")
        step()
        case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
        step()
        case = services.acknowledge_case(case=case, actor=unit_handler)
        step()
        case = services.handle_case(case=case, actor=unit_handler, result="已劝离摊贩，恢复通行")
        step()
        case = services.verify_case(case=case, actor=east_worker, passed=True)
        step()
        case = services.follow_up_case(case=case, actor=call_taker, satisfaction=2)
        step()
        case = services.reopen_case(case=case, actor=call_taker, reason="摊贩又回来了")
    return case


def export(*args: str) -> list[list[str]]:
    out = StringIO()
    call_command("export-updates", *args, stdout=out, stderr=StringIO())
    return list(csv.reader(StringIO(out.getvalue())))


def test_every_event_the_platform_needs_with_order_number_status_and_reply(story: Case) -> None:
    lines = export("--since", "2025-11-03")
    assert lines[0] == [
        "工单编号",
        "本系统案件编号",
        "事件",
        "时间",
        "工单状态",
        "办理单位",
        "答复内容",
        "退回理由",
        "满意度",
    ]
    body = lines[1:]
    assert {line[0] for line in body} == {"GD2025110300001"}
    assert {line[1] for line in body} == {story.number}
    assert [(line[2], line[3][11:16], line[4]) for line in body] == [
        ("受理", "09:10", "待派遣"),
        ("派单", "09:20", "待签收"),
        ("退回", "09:30", "已回退"),
        ("改派", "09:40", "待签收"),
        ("办理反馈", "10:00", "待核查"),
        ("办结", "10:10", "已结案"),
        ("回访评价", "10:20", "已结案"),
        ("重办", "10:30", "待签收"),
    ]
    by_event = {line[2]: line for line in body}
    assert by_event["派单"][5] == "城管执法局东街道中队"
    assert by_event["受理"][5] == ""
    assert by_event["退回"][6] == ""  # the unit's reason is not a public reply…
    assert by_event["退回"][7] == "非我单位职责"  # …but the platform gets it
    assert by_event["办理反馈"][6] == "已劝离摊贩，恢复通行"
    assert by_event["办结"][6] == "已劝离摊贩，恢复通行"
    assert by_event["回访评价"][8] == "不满意"
    assert by_event["重办"][6] == "摊贩又回来了"
    assert lines[1][3] == "2025-11-03 09:10:00"


def test_since_and_until_cut_the_period(story: Case) -> None:
    lines = export("--since", "2025-11-03 09:35", "--until", "2025-11-03T10:05")
    assert [line[2] for line in lines[1:]] == ["改派", "办理反馈"]
    assert export("--since", "2025-11-04") == [export("--since", "2025-11-04")[0]]


def test_xlsx_has_chinese_headers_and_a_frozen_header_row(story: Case, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    target = tmp_path / "回传.xlsx"
    out = StringIO()
    call_command("export-updates", "--since", "2025-11-03", "-o", str(target), stdout=out)
    assert "已导出 8 条" in out.getvalue()
    sheet = load_workbook(target).worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].value == "工单编号"
    assert sheet["A1"].font.bold
    assert sheet["C9"].value == "重办"
    assert sheet.max_row == 9


def test_a_csv_file_has_a_byte_order_mark(story: Case, tmp_path: Path) -> None:
    target = tmp_path / "回传.csv"
    call_command("export-updates", "--since", "2025-11-03", "-o", str(target), stdout=StringIO())
    assert target.read_bytes().startswith(b"\xef\xbb\xbf\xe5\xb7\xa5")  # BOM, then 工
