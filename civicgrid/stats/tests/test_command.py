"""``civicgrid stats``: JSON, CSV and XLSX output, the centre's report, rebuilds."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from openpyxl import load_workbook

from civicgrid.accounts.models import User
from civicgrid.cases.models import Case, Status
from civicgrid.grids.models import HandlingUnit


@pytest.fixture
def cases(drive: Callable[[str], Case]) -> list[Case]:
    return [drive(s) for s in (Status.CLOSED, Status.CLOSED, Status.IN_PROGRESS, Status.NEW)]


def _period() -> list[str]:
    today = timezone.localdate().isoformat()
    return ["--from", today, "--to", today]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("stats", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.usefixtures("cases")
def test_json_has_the_totals_the_domains_the_kpis_and_the_rows(city_unit: HandlingUnit) -> None:
    data = json.loads(_run(*_period()))

    assert (data["totals"]["received"], data["totals"]["closed"]) == (4, 2)
    assert data["totals"]["in_progress"] == 2
    assert data["totals"]["close_rate"] == pytest.approx(0.5)
    assert {d["key"]: d["received"] for d in data["domains"]} == {"urban": 4, "public_service": 0}
    assert data["units_involved"] == 1
    assert data["hotline"]["received"] == 4
    assert data["by"] == "unit"
    [row] = data["rows"]
    assert (row["unit_id"], row["name"], row["received"], row["rank"]) == (
        city_unit.pk,
        "城管执法局东街道中队",
        3,
        1,
    )


@pytest.mark.usefixtures("cases")
def test_json_by_subdistrict_within_a_scope() -> None:
    data = json.loads(_run(*_period(), "--by", "subdistrict", "--scope", "620103"))

    assert data["scope"] == {"code": "620103", "name": "示范区"}
    assert [(r["name"], r["received"]) for r in data["rows"]] == [("西街道", 0), ("东街道", 4)]


@pytest.mark.usefixtures("cases")
def test_csv_has_chinese_headers_and_one_row_per_category(tmp_path: Path) -> None:
    rows = list(csv.reader(StringIO(_run(*_period(), "--by", "category", "--format", "csv"))))

    assert rows[0][:5] == ["类别编码", "小类", "接办", "办结", "在办"]
    assert rows[1][:5] == ["T0502", "占道经营（测试）", "4", "2", "2"]
    target = tmp_path / "分类.csv"
    _run(*_period(), "--by", "category", "--format", "csv", "-o", str(target))
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    assert list(csv.reader(target.open(encoding="utf-8-sig")))[1][0] == "T0502"


@pytest.mark.usefixtures("cases")
def test_xlsx_has_a_frozen_header_and_number_formats(tmp_path: Path) -> None:
    target = tmp_path / "单位.xlsx"

    _run(*_period(), "--format", "xlsx", "-o", str(target))

    book = load_workbook(target)
    assert book.sheetnames == ["处置单位", "合计"]
    sheet = book["处置单位"]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["单位编号", "处置单位", "接办", "办结"]
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].font.bold
    rate = header.index("结案率") + 1
    hours = header.index("平均办理时长（小时）") + 1
    assert sheet.cell(2, rate).value == pytest.approx(2 / 3)
    assert sheet.cell(2, rate).number_format == "0.0%"
    assert sheet.cell(2, hours).number_format == "0.0"
    assert sheet.cell(2, header.index("等级") + 1).value in {"优秀", "良好", "合格", "不合格"}
    totals = book["合计"]
    assert [c.value for c in totals[1]][:2] == ["接办", "办结"]
    assert [c.value for c in totals[2]][:2] == [4, 2]


@pytest.mark.usefixtures("cases")
def test_the_report_is_one_workbook_of_the_centres_tables(tmp_path: Path) -> None:
    target = tmp_path / "周报.xlsx"
    out = StringIO()
    call_command(
        "stats",
        "report",
        "--period",
        "week",
        "--date",
        timezone.localdate().isoformat(),
        "-o",
        str(target),
        stdout=out,
        stderr=out,
    )

    book = load_workbook(target)
    assert book.sheetnames == [
        "周报",
        "概况",
        "12345考核指标",
        "趋势",
        "业务领域",
        "热点",
        "大类",
        "责任单位",
        "区域",
        "渠道",
        "区域考评",
        "网格员考评",
        "派遣员考评",
    ]
    assert all(book[name].freeze_panes == "A2" for name in book.sheetnames)
    assert len(list(book["趋势"].iter_rows(min_row=2))) == 7
    overview = book["概况"]
    assert overview["A2"].value == 4  # received
    assert "已写入" in out.getvalue()


@pytest.mark.usefixtures("cases")
def test_evaluation_tables_of_areas_and_positions(dispatcher: User) -> None:
    areas = json.loads(_run(*_period(), "--by", "areas", "--scope", "620103"))["rows"]
    people = json.loads(_run(*_period(), "--by", "positions", "--role", "dispatcher"))["rows"]

    assert [(a["name"], a["received"], a["rank"]) for a in areas] == [
        ("东街道", 4, 1),
        ("西街道", 0, 2),
    ]
    assert areas[0]["close_rate"] == pytest.approx(2 / 4)
    [person] = people
    assert (person["name"], person["dispatches"], person["role_label"]) == ("王敏", 3, "派遣员")
    assert person["dispatch_ontime_rate"] == pytest.approx(1.0)
    rows = list(
        csv.reader(
            StringIO(
                _run(*_period(), "--by", "positions", "--role", "dispatcher", "--format", "csv")
            )
        )
    )
    assert rows[0][:4] == ["账号", "姓名", "派遣", "按时派遣率"]
    assert rows[1][:3] == ["wangmin", "王敏", "3"]


@pytest.mark.usefixtures("cases")
def test_rebuild_rewrites_the_rollups_of_the_period() -> None:
    text = _run("rebuild", *_period(), "--refresh")

    assert "已重建" in text
    assert json.loads(_run(*_period()))["totals"]["received"] == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--from"),
        (("--from", "2020-01-01", "--to", "2019-01-01"), "早于"),
        (("--from", "2020-13-01", "--to", "2020-12-01"), "YYYY-MM-DD"),
        (("--from", "2020-01-01", "--to", "2020-01-02", "--format", "xlsx"), "-o"),
        (("--from", "2020-01-01", "--to", "2020-01-02", "--scope", "999"), "999"),
        (("report", "--period", "week"), "--date"),
    ],
)
def test_it_explains_what_is_wrong(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _run(*args)
