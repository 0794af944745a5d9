"""Live imports through intake, GB18030 files, refused rows and broken mappings."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
from django.core.management import CommandError

from civicgrid.cases.models import Action, Case, CaseEvent, Deadline, Stage, Status
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT, WEST_POINT
from civicgrid.exchange.mapping import DEFAULT_MAPPING, load_mapping
from civicgrid.exchange.reader import detect_encoding
from civicgrid.exchange.rows import parse_time, valid_phone
from civicgrid.exchange.tests.conftest import HEADERS, Run, write_csv, write_xlsx
from civicgrid.grids.models import HandlingUnit


def row(n: int, **changes: object) -> dict[str, object]:
    lon, lat = EAST_POINT
    base: dict[str, object] = {
        "工单编号": f"GD20251101{n:05d}",
        "受理时间": datetime(2025, 11, 3, 9, n % 60),
        "诉求类型": "投诉",
        "诉求内容": f"第{n}号：夜间广场舞音响声音太大",
        "问题分类": "噪音扰民",
        "事发地址": "丙社区广场",
        "经度": lon,
        "纬度": lat,
        "来电人": "李女士",
        "联系电话": "13812345678",
        "工单状态": "待受理",
    }
    base.update(changes)
    return base


def report_rows(path: Path) -> dict[str, list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0][:3] == ["行号", "出错列", "原因"]
    assert lines[0][3:] == HEADERS
    return {line[0]: line for line in lines[1:]}


def test_a_gb18030_csv_goes_through_intake_in_live_mode(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    source = write_csv(tmp_path / "工单.csv", [row(1), row(2, 经度="", 纬度="")])
    assert detect_encoding(source)[0] == "gb18030"
    out = run(str(source), "--mapping", str(wgs84_mapping), "--mode", "live")
    assert "gb18030" in out
    assert "导入 2" in out
    located = Case.objects.get(external_id="GD2025110100001")
    assert located.status == Status.NEW
    assert located.description == "第1号：夜间广场舞音响声音太大"
    assert located.requester_name == "李女士"
    assert located.category.code == "SJ0603"
    assert located.grid is not None
    assert located.grid.code == "620103002001001"
    # The intake's routing suggestion and the accept stage's deadline.
    assert located.suggested_unit == city_unit
    assert list(Deadline.objects.filter(case=located).values_list("stage", flat=True)) == [
        Stage.ACCEPT
    ]
    assert list(CaseEvent.objects.filter(case=located).values_list("action", flat=True)) == [
        Action.CREATE
    ]
    unlocated = Case.objects.get(external_id="GD2025110100002")
    assert unlocated.needs_location
    # Again: nothing new.
    again = run(str(source), "--mapping", str(wgs84_mapping), "--mode", "live")
    assert "已存在跳过 2" in again
    assert Case.objects.count() == 2


def test_utf8_with_a_bom_reads_too(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    source = write_csv(tmp_path / "工单.csv", [row(1)], encoding="utf-8-sig")
    assert detect_encoding(source)[0] == "utf-8-sig"
    out = run(str(source), "--mapping", str(wgs84_mapping), "--mode", "live")
    assert "导入 1" in out
    assert Case.objects.get().description.startswith("第1号")


@pytest.mark.parametrize("mode", ["historical", "live"])
def test_bad_rows_are_refused_with_row_number_column_and_reason(
    mode: str, tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    rows = [
        row(1),
        row(2, 受理时间="2025-13-45 25:00"),
        row(3, 问题分类="外星人入侵"),
        row(4, 经度=OUTSIDE_POINT[0], 纬度=OUTSIDE_POINT[1]),
        row(5, 诉求内容=""),
        row(6, 联系电话="call me"),
        row(7),
        row(8, 工单编号="GD2025110100001"),
    ]
    source = write_csv(tmp_path / "工单.csv", rows)
    out = run(str(source), "--mapping", str(wgs84_mapping), "--mode", mode)
    assert "读取 8 行" in out
    assert "导入 2" in out
    assert "拒绝 6" in out
    report = tmp_path / "工单.errors.csv"
    assert str(report) in out
    lines = report_rows(report)
    # Row numbers as a spreadsheet shows them: the header is row 1.
    assert set(lines) == {"3", "4", "5", "6", "7", "9"}
    assert lines["3"][1] == "受理时间"
    assert "无法识别的时间" in lines["3"][2]
    assert lines["4"][1] == "问题分类"
    assert "未知的问题分类“外星人入侵”" in lines["4"][2]
    assert lines["5"][1] == "经度"
    assert "不在辖区内" in lines["5"][2]
    assert lines["6"][1] == "诉求内容"
    assert "必填项为空" in lines["6"][2]
    assert lines["7"][1] == "联系电话"
    assert "格式不对" in lines["7"][2]
    assert "与第 2 行重复" in lines["9"][2]
    # The row's own cells follow, so the report can be fixed and imported again.
    assert lines["7"][3] == "GD2025110100006"
    assert sorted(Case.objects.values_list("external_id", flat=True)) == [
        "GD2025110100001",
        "GD2025110100007",
    ]


def test_a_clean_run_removes_an_old_report(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    source = write_csv(tmp_path / "工单.csv", [row(1), row(2, 问题分类="外星人入侵")])
    run(str(source), "--mapping", str(wgs84_mapping))
    report = tmp_path / "工单.errors.csv"
    assert report.exists()
    write_csv(source, [row(1), row(2)])
    out = run(str(source), "--mapping", str(wgs84_mapping))
    assert "没有被拒绝的行" in out
    assert not report.exists()


def test_an_xlsx_export_gets_an_xlsx_report(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    from openpyxl import load_workbook

    source = write_xlsx(tmp_path / "工单.xlsx", [row(1), row(2, 联系电话="12-34")])
    run(str(source), "--mapping", str(wgs84_mapping))
    book = load_workbook(tmp_path / "工单.errors.xlsx")
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]][:4] == ["行号", "出错列", "原因", "工单编号"]
    assert [c.value for c in sheet[2]][:2] == [3, "联系电话"]


def test_closed_rows_need_a_closing_time_and_a_known_unit(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    west_lon, west_lat = WEST_POINT  # no unit serves the west: no routing fallback
    rows = [
        row(1, 工单状态="已办结"),
        row(2, 工单状态="已办结", 办结时间="2025-11-04 10:00", 承办单位="不存在的局"),
        row(3, 工单状态="已办结", 办结时间="2025-11-02 10:00"),
        row(4, 工单状态="已办结", 办结时间="2025-11-04 10:00", 经度=west_lon, 纬度=west_lat),
        row(5, 工单状态="已办结", 办结时间="2025-11-04 10:00"),
        row(6, 工单状态="挂起待议"),
        row(7, 工单状态="已办结", 办结时间="2099-01-01 10:00"),
    ]
    source = write_csv(tmp_path / "工单.csv", rows)
    out = run(str(source), "--mapping", str(wgs84_mapping))
    assert "导入 1" in out
    lines = report_rows(tmp_path / "工单.errors.csv")
    assert "已办结的工单须有办结时间" in lines["2"][2]
    assert "未知的承办单位“不存在的局”" in lines["3"][2]
    assert "办结时间早于受理时间" in lines["4"][2]
    assert "缺少承办单位" in lines["5"][2]
    assert "未知的工单状态“挂起待议”" in lines["7"][2]
    assert lines["8"][1] == "办结时间"
    assert "时间晚于当前时间" in lines["8"][2]
    # Routing named the unit of the one that went in.
    assert Case.objects.get().lead_unit == city_unit


def test_a_file_without_a_required_column_is_refused_whole(
    tmp_path: Path, city_unit: HandlingUnit, wgs84_mapping: Path, run: Run
) -> None:
    headers = [h for h in HEADERS if h != "问题分类"]
    source = write_csv(tmp_path / "工单.csv", [row(1)], headers=headers)
    with pytest.raises(CommandError, match="文件缺少必需的列“问题分类”或“诉求分类”或“事项分类”"):
        run(str(source), "--mapping", str(wgs84_mapping))
    assert not Case.objects.exists()
    assert not (tmp_path / "工单.errors.csv").exists()


def test_a_mapping_with_errors_is_refused_before_anything_is_written(
    tmp_path: Path, city_unit: HandlingUnit, run: Run
) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text(
        """
[columns]
external_id = "工单编号"
received_at = "受理时间"
description = "诉求内容"
colour = "颜色"

[dates]
formats = ["YYYY-MM-DD"]

[coordinates]
crs = "mars2000"

[values.category]
"占道经营" = "SJ05"
"摆摊" = "XX9999"

[values.status]
"已办结" = "archived"
""",
        encoding="utf-8",
    )
    source = write_csv(tmp_path / "工单.csv", [row(1)])
    with pytest.raises(CommandError) as caught:
        run(str(source), "--mapping", str(mapping))
    message = str(caught.value)
    assert "未导入任何数据" in message
    for expected in (
        "未知的字段 colour",
        "缺少必需字段 category",
        "日期格式 YYYY-MM-DD 无效",
        "未知的坐标系：mars2000",
        "“占道经营” 指向的 SJ05 不是启用的小类编码（这是大类，请指向小类）",
        "“摆摊” 指向的 XX9999 不是启用的小类编码",
        "“已办结” 指向 archived",
    ):
        assert expected in message
    assert not Case.objects.exists()
    assert not (tmp_path / "工单.errors.csv").exists()


def test_a_mapping_that_is_not_toml_says_where(tmp_path: Path, db: None, run: Run) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text("[columns\nexternal_id = 1\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"不是有效的 TOML.*line 1"):
        run(str(tmp_path / "x.csv"), "--mapping", str(mapping))


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("13912345678", True),
        ("139 1234 5678", True),
        ("+86 139-1234-5678", True),
        ("139****5678", True),
        ("0931-8123456", True),
        ("(0931)8123456转123", True),
        ("8123456", True),
        ("12345", True),
        ("13912345678/0931-8123456", True),
        ("1391234567", False),
        ("call me", False),
        ("12-34", False),
        ("2391234567890", False),
    ],
)
def test_phone_numbers(phone: str, valid: bool) -> None:
    assert valid_phone(phone) is valid


def test_the_progress_line_rewrites_itself() -> None:
    from importlib import import_module
    from io import StringIO

    command = import_module("civicgrid.exchange.management.commands.import-cases")
    stream = StringIO()
    progress = command.ProgressLine(stream)
    progress(500, 2000)
    progress(2000, 2000)
    progress.close()
    shown = stream.getvalue()
    assert shown.count("\r") == 2
    assert " 25% 500/2000 行" in shown
    assert "100% 2000/2000 行" in shown
    assert shown.endswith("\n")


@pytest.mark.parametrize(
    "raw",
    [
        "2025-03-03 09:05:07",
        "2025-3-3 9:05:07",
        "2025-03-03T09:05:07",
        "2025-02-29 10:00:00",
        "2024-02-29 23:59:59",
        "2025-03-03 24:00:00",
        "2025-03-03 09:05",
        "2025/03/03 09:05",
        "２０２５-03-03 09:05:07",
    ],
)
def test_the_quick_reading_of_a_time_is_what_the_formats_give(raw: str, db: None) -> None:
    mapping = load_mapping(DEFAULT_MAPPING)

    def by_formats() -> datetime | None:
        cleaned = raw.replace("T", " ") if raw[:4].isdigit() and raw[10:11] == "T" else raw
        for fmt in mapping.date_formats:
            try:
                return datetime.strptime(cleaned, fmt).replace(tzinfo=mapping.timezone)
            except ValueError:
                continue
        try:
            return datetime.fromisoformat(cleaned).replace(tzinfo=mapping.timezone)
        except ValueError:
            return None

    try:
        got: datetime | None = parse_time(raw, mapping)
    except ValueError:
        got = None
    assert got == by_formats()
    assert got is None or got.tzinfo is not None
