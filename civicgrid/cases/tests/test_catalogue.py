"""The category catalogue shipped as data: loaded by the migration, reloaded and
exported by ``civicgrid load-categories``, searched by the call-taker's picker."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from openpyxl import Workbook, load_workbook
from pytest_django import DjangoAssertNumQueries

from civicgrid.accounts.models import User
from civicgrid.cases import catalogue
from civicgrid.cases.catalogue_format import (
    HEADERS_ZH,
    KINDS,
    STAGES,
    UNITS,
    URGENCIES,
    parse_limit,
    read_catalogue,
)
from civicgrid.cases.models import (
    Category,
    CategoryKind,
    RoutingRule,
    Stage,
    TimeLimit,
    TimeUnit,
    Urgency,
)
from civicgrid.grids import services as grid_services
from civicgrid.grids.models import HandlingUnit, UnitKind
from civicgrid.grids.tests.fixtures import Tree

SHIPPED_ROWS = 174
DEMO_UNITS = {
    "620103-CGJ": "七里河区城市管理局",
    "620103-HWJ": "七里河区环境卫生管理局",
    "620103-ZJJ": "七里河区住房和城乡建设局",
}
CJK = re.compile(r"^[\u4e00-\u9fff]+$")


def limit(code: str, stage: str, urgency: str) -> tuple[Decimal, str]:
    found = TimeLimit.objects.get(category__code=code, stage=stage, urgency=urgency)
    return found.amount, found.unit


def event(name: str) -> Category:
    return Category.objects.get(kind=CategoryKind.EVENT, name=name, parent__isnull=False)


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


@pytest.fixture
def demo_units(tree: Tree) -> dict[str, HandlingUnit]:
    """The demo district's three bureaus, by the codes the shipped catalogue names."""
    return {
        code: grid_services.create_handling_unit(
            code=code, name=name, kind=UnitKind.BUREAU, serves=tree.district
        )
        for code, name in DEMO_UNITS.items()
    }


# -- what the migration loaded --------------------------------------------------------
@pytest.mark.django_db
def test_the_migration_has_loaded_the_shipped_catalogue() -> None:
    majors = Counter(Category.objects.majors().values_list("kind", flat=True))
    minors = Counter(Category.objects.minors().values_list("kind", flat=True))
    assert majors == {"component": 6, "event": 6, "request": 15}
    assert minors == {"component": 50, "event": 34, "request": 63}
    assert Category.objects.count() == SHIPPED_ROWS
    assert [c.name for c in Category.objects.majors().filter(kind="component")] == [
        "公用设施",
        "道路交通",
        "市容环境",
        "园林绿化",
        "房屋土地",
        "其他设施",
    ]
    assert [c.name for c in Category.objects.majors().filter(kind="event")] == [
        "市容环境",
        "宣传广告",
        "施工管理",
        "突发事件",
        "街面秩序",
        "扩展事件",
    ]
    first = Category.objects.get(code="BJ0101")
    assert (first.name, first.parent and first.parent.code) == ("上水井盖", "BJ01")
    stall = Category.objects.get(code="SJ0502")
    assert (stall.name, stall.parent and stall.parent.name) == ("占道经营", "街面秩序")
    assert stall.filing_criteria
    assert stall.closing_criteria
    assert stall.default_unit is None  # no unit with code 620103-CGJ yet


@pytest.mark.django_db
def test_the_standards_subcategories_are_there() -> None:
    def names(code: str) -> list[str]:
        return list(Category.objects.filter(parent__code=code).values_list("name", flat=True))

    assert names("BJ01")[:7] == [
        "上水井盖",
        "污水井盖",
        "雨水井盖",
        "雨水箅子",
        "电力井盖",
        "路灯井盖",
        "通信井盖",
    ]
    assert names("SJ01")[:6] == [
        "私搭乱建",
        "暴露垃圾",
        "积存垃圾渣土",
        "道路不洁",
        "水域不洁",
        "绿地脏乱",
    ]
    assert names("SJ02")[:2] == ["非法小广告", "违规户外广告"]
    assert names("SJ03")[:3] == ["施工扰民", "施工占道", "工地扬尘"]
    assert names("SJ04")[:4] == ["管道破裂", "路面塌陷", "道路积水", "道路结冰"]
    assert names("SJ05")[:4] == ["无照经营", "占道经营", "流浪乞讨", "黑车拉客"]
    assert {"施工噪声", "商业噪声", "社会生活噪声", "交通噪声"} <= set(names("SJ06"))
    hotline = set(Category.objects.majors().filter(kind="request").values_list("name", flat=True))
    assert {"供水", "供电", "供暖", "燃气", "物业管理", "劳动保障", "教育", "医疗卫生"} <= hotline
    assert {"交通出行", "住房", "市场监管", "社会治安", "政策咨询"} <= hotline


@pytest.mark.django_db
def test_every_subcategory_has_a_handle_limit_for_every_urgency() -> None:
    have = Counter(
        TimeLimit.objects.filter(category__parent__isnull=False, stage=Stage.HANDLE).values_list(
            "category_id", flat=True
        )
    )
    minors = list(Category.objects.minors().values_list("pk", flat=True))
    assert {pk: have[pk] for pk in minors} == {pk: 3 for pk in minors}


@pytest.mark.django_db
def test_every_major_category_carries_a_limit_for_every_stage_and_urgency() -> None:
    for major in Category.objects.majors():
        stages = set(major.time_limits.values_list("stage", "urgency"))
        assert stages == {(s, u) for s in Stage.values for u in Urgency.values}, major.code


@pytest.mark.django_db
def test_time_limits_follow_the_city_manuals() -> None:
    days, hours, natural = TimeUnit.WORK_DAYS, TimeUnit.WORK_HOURS, TimeUnit.NATURAL_HOURS
    assert limit(event("暴露垃圾").code, "handle", "normal") == (1, days)
    assert limit(event("积存垃圾渣土").code, "handle", "normal") == (4, days)
    assert limit(event("道路不洁").code, "handle", "normal") == (5, hours)
    assert limit(event("私搭乱建").code, "handle", "normal") == (15, days)
    assert limit(event("私搭乱建").code, "handle", "urgent") == (4, hours)  # stop work
    ice = event("道路结冰").code
    assert [limit(ice, "handle", u) for u in Urgency.values] == [
        (8, natural),
        (4, natural),
        (2, natural),
    ]


@pytest.mark.django_db
def test_hotline_limits_follow_the_12345_rules() -> None:
    for major in Category.objects.majors().filter(kind=CategoryKind.REQUEST):
        assert limit(major.code, "acknowledge", "normal") == (1, TimeUnit.WORK_DAYS)
    for minor in Category.objects.minors().filter(kind=CategoryKind.REQUEST):
        amount, unit = limit(minor.code, "handle", "normal")
        assert (unit == TimeUnit.WORK_DAYS and amount <= 15) or (
            unit == TimeUnit.NATURAL_HOURS and amount <= 24
        ), minor.code
        amount, unit = limit(minor.code, "handle", "emergency")
        assert unit == TimeUnit.NATURAL_HOURS, minor.code
        assert amount <= 8, minor.code  # the same day
    enquiries = Category.objects.filter(parent__code="SQ13")
    assert {limit(c.code, "handle", "normal") for c in enquiries} == {(5, TimeUnit.WORK_DAYS)}


@pytest.mark.django_db
def test_the_pinyin_initials_are_those_of_the_names() -> None:
    assert Category.objects.get(name="占道经营").pinyin.split()[0] == "zdjy"
    assert event("道路结冰").pinyin.split()[0] == "dljb"
    assert Category.objects.get(code="BJ0101").pinyin == "ssjg"
    assert Category.objects.get(name="雨水箅子").pinyin.split()[0] == "ysbz"
    assert Category.objects.get(name="行道树").pinyin.split()[0] == "xds"
    assert event("积存垃圾渣土").pinyin.split()[0] == "jcljzt"
    for category in Category.objects.all():
        initials = category.pinyin.split()[0]
        assert initials.isascii(), category.code
        assert initials.islower(), category.code
        if CJK.match(category.name):
            assert len(initials) == len(category.name), category.code


def test_the_file_vocabulary_matches_the_models() -> None:
    assert set(STAGES) == set(Stage.values)
    assert set(URGENCIES) == set(Urgency.values)
    assert set(UNITS) == set(TimeUnit.values)
    assert set(KINDS) == set(CategoryKind.values)
    assert parse_limit("4工作时") == parse_limit("4h") == catalogue.Limit(Decimal(4), "work_hours")
    assert parse_limit("5工作日") == parse_limit("5 d") == catalogue.Limit(Decimal(5), "work_days")
    assert parse_limit("0.5自然小时") == catalogue.Limit(Decimal("0.5"), "natural_hours")
    assert parse_limit("2NH").unit == "natural_hours"
    assert str(parse_limit("0.50工作时")) == "0.5工作时"
    for bad in ("三天", "4", "4周", "0工作时", "1.5工作日", "0.125工作时", "-1h"):
        with pytest.raises(ValueError, match=r"时限|工作日"):
            parse_limit(bad)


# -- loading again ---------------------------------------------------------------------
@pytest.mark.django_db
def test_loading_the_shipped_catalogue_again_changes_nothing(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    before = set(TimeLimit.objects.values_list("pk", "category_id", "stage", "urgency", "amount"))
    with django_assert_max_num_queries(10):
        result = catalogue.load_catalogue()
    assert (result.rows, result.created, result.updated, result.unchanged) == (174, 0, 0, 174)
    assert (result.limits_created, result.limits_updated, result.limits_deleted) == (0, 0, 0)
    assert result.units_unset == 92
    assert result.unknown_units == sorted(DEMO_UNITS)
    assert Category.objects.count() == SHIPPED_ROWS
    assert set(
        TimeLimit.objects.values_list("pk", "category_id", "stage", "urgency", "amount")
    ) == (before)


@pytest.mark.django_db
def test_the_migrations_loader_works_with_historical_models() -> None:
    state = MigrationExecutor(connection).loader.project_state(("cases", "0004_load_categories"))
    models = catalogue.CatalogueModels(
        category=state.apps.get_model("cases", "Category"),
        time_limit=state.apps.get_model("cases", "TimeLimit"),
        unit=state.apps.get_model("grids", "HandlingUnit"),
    )
    Category.objects.filter(code="SJ0502").update(name="改过的名字")
    result = catalogue.load_catalogue_with(models)
    assert (result.created, result.updated) == (0, 1)
    assert Category.objects.get(code="SJ0502").name == "占道经营"


@pytest.mark.django_db
def test_a_changed_file_updates_in_place(tmp_path: Path) -> None:
    stall = Category.objects.get(code="SJ0502")
    path = write_csv(
        tmp_path / "changed.csv",
        [
            "code,name,kind,parent_code,pinyin,aliases,handle_normal,handle_urgent",
            "SJ05,街面秩序,event,,jmzx,,,",
            "SJ0502,占道经营,event,SJ05,zdjy,摆摊设点 btsd 夜市 ys,2工作时,1h",
            "SJ0507,违规夜市,event,SJ05,wgys,,1工作日,4工作时",
        ],
    )
    result = catalogue.load_catalogue(path=path)
    assert (result.created, result.updated, result.unchanged) == (1, 2, 0)
    stall.refresh_from_db()
    assert stall.pinyin == "zdjy 摆摊设点 btsd 夜市 ys"
    assert stall.filing_criteria  # no such column in the file: left alone
    assert limit("SJ0502", "handle", "normal") == (2, TimeUnit.WORK_HOURS)
    assert limit("SJ0502", "handle", "urgent") == (1, TimeUnit.WORK_HOURS)
    assert limit("SJ0502", "handle", "emergency") == (1, TimeUnit.NATURAL_HOURS)  # no column
    assert not TimeLimit.objects.filter(category__code="SJ05", stage="handle", urgency="normal")
    assert TimeLimit.objects.filter(category__code="SJ05", stage="verify").count() == 3
    new = Category.objects.get(code="SJ0507")
    assert new.parent == stall.parent
    assert new.is_active
    assert Category.objects.count() == SHIPPED_ROWS + 1
    again = catalogue.load_catalogue(path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


@pytest.mark.django_db
def test_without_update_existing_categories_are_left_alone(tmp_path: Path) -> None:
    Category.objects.filter(code="SJ0502").update(name="占道经营（本地）")
    result = catalogue.load_catalogue(update=False)
    assert (result.created, result.updated, result.skipped) == (0, 0, SHIPPED_ROWS)
    assert Category.objects.get(code="SJ0502").name == "占道经营（本地）"


@pytest.mark.django_db
def test_default_units_are_set_only_for_units_that_exist(tree: Tree) -> None:
    cgj = grid_services.create_handling_unit(
        code="620103-CGJ", name="七里河区城市管理局", kind=UnitKind.BUREAU, serves=tree.district
    )
    result = catalogue.load_catalogue()
    assert result.unknown_units == ["620103-HWJ", "620103-ZJJ"]
    assert result.units_unset == 92 - Category.objects.filter(default_unit=cgj).count()
    assert Category.objects.get(code="SJ0502").default_unit == cgj
    assert Category.objects.get(code="SJ0404").default_unit is None  # 道路结冰: 环卫局


@pytest.mark.django_db
def test_default_units_can_be_linked_once_the_units_exist(
    demo_units: dict[str, HandlingUnit],
) -> None:
    Category.objects.filter(code="SJ0101").update(default_unit=demo_units["620103-ZJJ"])
    assert catalogue.link_default_units() == 91
    assert catalogue.link_default_units() == 0
    assert Category.objects.get(code="SJ0404").default_unit == demo_units["620103-HWJ"]
    assert Category.objects.get(code="SJ0101").default_unit == demo_units["620103-ZJJ"]  # kept


# -- bad files ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_bad_csv_is_refused_with_every_problem_and_nothing_written(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            "code,name,kind,parent_code,handle_normal,handle_soon,fix_normal",
            "X01,测试大类,部门,,,,",
            "X0101,甲,event,X99,4工作时,,",
            "X02,测试大类二,event,,,,",
            "X0201,乙,event,X02,4工作时,,",
            "X020101,丙,event,X0201,4工作时,,",
            "X0201,丁,event,X02,4工作时,,",
            "X0202,戊,event,X02,3天,,",
            "X0203,己,事件,X02,1.5工作日,,",
            "X0204,庚,component,SJ05,1工作日,,",
        ],
    )
    count = Category.objects.count()
    with pytest.raises(catalogue.CatalogueError) as caught:
        catalogue.load_catalogue(path=path)
    found = {(p.row, p.column) for p in caught.value.problems}
    assert found == {
        (1, "F（handle_soon）"),
        (1, "G（fix_normal）"),
        (2, "C（kind）"),
        (3, "D（parent_code）"),
        (6, "D（parent_code）"),
        (7, "A（code）"),
        (8, "E（handle_normal）"),
        (9, "E（handle_normal）"),
        (10, "C（kind）"),
    }
    text = str(caught.value)
    assert "第 1 行，F（handle_soon）列：未知的紧急程度“soon”" in text
    assert "第 1 行，G（fix_normal）列：未知的环节“fix”" in text
    assert "第 2 行，C（kind）列：未知的类型“部门”" in text
    assert "第 3 行，D（parent_code）列：大类“X99”不存在" in text
    assert "小类下不能再分小类" in text
    assert "第 7 行，A（code）列：编码“X0201”与第 5 行重复" in text
    assert "第 8 行，E（handle_normal）列：无法识别的时限“3天”" in text
    assert "工作日须为整数" in text
    assert "第 10 行，C（kind）列：类型与大类“SJ05”不一致" in text
    assert Category.objects.count() == count
    assert not Category.objects.filter(code__startswith="X").exists()


@pytest.mark.django_db
def test_a_bad_xlsx_is_refused_with_rows_and_columns_and_nothing_written(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "bad.xlsx",
        [
            ["编码", "名称", "类型", "大类编码", "处置时限（一般）", "处置时限（紧急）"],
            ["Y01", "测试大类", "事件", None, "5工作日", None],
            ["Y0101", "小类一", "事件", "Y01", "三天", "2h"],
            [None, None, None, None, None, None],
            ["Y0102", "小类二", "部门", "Y01", 5, None],
        ],
    )
    with pytest.raises(catalogue.CatalogueError) as caught:
        catalogue.load_catalogue(path=path)
    assert [str(p) for p in caught.value.problems] == [
        "第 3 行，E（处置时限（一般））列：无法识别的时限“三天”："
        "请写成 4工作时、5工作日、2自然小时（或 4h、5d、2nh）",
        "第 5 行，C（类型）列：未知的类型“部门”：请填 部件、事件 或 诉求（component、event、request）",
        "第 5 行，E（处置时限（一般））列：无法识别的时限“5”："
        "请写成 4工作时、5工作日、2自然小时（或 4h、5d、2nh）",
    ]
    assert not Category.objects.filter(code__startswith="Y").exists()


@pytest.mark.django_db
def test_a_file_without_the_required_columns_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", ["编码,名称", "SJ0502,占道经营"])
    with pytest.raises(catalogue.CatalogueError, match="缺少必填列 kind（类型）"):
        catalogue.load_catalogue(path=path)
    with pytest.raises(catalogue.CatalogueError, match="不支持的文件类型"):
        catalogue.load_catalogue(path=tmp_path / "catalogue.xls")


@pytest.mark.django_db
def test_a_major_category_with_subcategories_cannot_become_one(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "move.csv",
        ["code,name,kind,parent_code", "SJ06,扩展事件,event,SJ05"],
    )
    with pytest.raises(catalogue.CatalogueError, match=r"第 2 行.*不能改为小类"):
        catalogue.load_catalogue(path=path)
    assert Category.objects.get(code="SJ06").parent is None


@pytest.mark.django_db
def test_an_xlsx_with_chinese_headers_loads(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "new.xlsx",
        [
            ["编码", "名称", "类型", "大类编码", "拼音首字母", "启用", "处置时限（紧急）", "排序"],
            ["SQ16", "网络理政", "诉求", None, "wllz", "是", "1工作日", 900],
            ["SQ1601", "政务服务评价", "12345 诉求", "SQ16", "zwfwpj", "否", "2h", 910],
        ],
    )
    result = catalogue.load_catalogue(path=path)
    assert result.created == 2
    minor = Category.objects.get(code="SQ1601")
    assert (minor.kind, minor.parent and minor.parent.code) == ("request", "SQ16")
    assert (minor.is_active, minor.sort_order) == (False, 910)
    assert limit("SQ1601", "handle", "urgent") == (2, TimeUnit.WORK_HOURS)


# -- export ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_xlsx_export_loads_back_unchanged_and_takes_edits(tmp_path: Path) -> None:
    path = tmp_path / "类别目录.xlsx"
    assert catalogue.export_catalogue(path) == SHIPPED_ROWS
    book = load_workbook(path)
    sheet = book["类别目录"]
    assert [c.value for c in sheet[1]] == list(HEADERS_ZH)
    assert sheet.freeze_panes == "C2"
    assert sheet["A2"].value == "BJ01"
    assert sheet["C2"].value == "部件"
    assert "填写说明" in book.sheetnames
    assert catalogue.load_catalogue(path=path).updated == 0

    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "SJ0502")
    handle_normal = HEADERS_ZH.index("处置时限（一般）")
    row[handle_normal].value = "3工作时"
    book.save(path)
    result = catalogue.load_catalogue(path=path)
    assert (result.updated, result.unchanged, result.limits_updated) == (1, 173, 1)
    assert limit("SJ0502", "handle", "normal") == (3, TimeUnit.WORK_HOURS)


@pytest.mark.django_db
def test_the_csv_export_reproduces_the_shipped_file(
    tmp_path: Path, demo_units: dict[str, HandlingUnit]
) -> None:
    assert catalogue.load_catalogue().units_unset == 0
    path = tmp_path / "categories.csv"
    catalogue.export_catalogue(path)
    assert path.read_bytes() == catalogue.DEFAULT_PATH.read_bytes()
    assert read_catalogue(path).problems == []


# -- search -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_search_finds_by_pinyin_initials_alias_name_and_code(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    def codes(text: str) -> list[str]:
        return [c.code for c in catalogue.search_categories(text)]

    with django_assert_num_queries(1):
        assert codes("zdjy") == ["SJ0502"]
    assert "SJ0502" in codes("zd")
    assert codes("摆摊") == ["SJ0502"]
    assert codes("bt")[0] == "SJ0502"
    assert codes("BTSD") == ["SJ0502"]
    assert set(codes("占道")[:2]) == {"SJ0203", "SJ0502"}  # 占道广告牌, 占道经营
    assert codes("SJ0502")[0] == "SJ0502"
    assert codes("sj0502") == ["SJ0502"]
    assert set(codes("0502")) == {"BJ0502", "SJ0502", "SQ0502"}
    assert codes("道路结冰") == ["SJ0404"]
    assert codes("dljb") == ["SJ0404"]
    assert set(codes("噪音")) == {"SJ0601", "SJ0602", "SJ0603", "SJ0604"}
    assert set(codes("市容市貌")) == set(
        Category.objects.filter(parent__code="SJ01").values_list("code", flat=True)
    )
    assert codes("井盖")[:3] == ["BJ0101", "BJ0102", "BJ0103"]
    assert codes("") == []
    assert codes("没有这种类别") == []


@pytest.mark.django_db
def test_search_ranks_exact_code_then_initials_then_names() -> None:
    found = [c.code for c in catalogue.search_categories("ld", limit=50)]
    # 路灯井盖, 路灯, 绿地, 乱堆物堆料, 绿地脏乱 …: their own initials begin with "ld",
    # before 占道广告牌 (alias 落地广告 ldgg) and 劳动合同's siblings under 劳动保障 (ldbz).
    own = ["BJ0106", "BJ0114", "BJ0403", "SJ0107", "SJ0106"]
    assert set(found[: len(own)]) == set(own)
    assert found.index("SJ0203") > len(own) - 1
    assert found[-1].startswith("SQ06")  # 大类 劳动保障 matched last
    assert catalogue.search_categories("SJ0502")[0].code == "SJ0502"
    by_code = [c.code for c in catalogue.search_categories("SJ05")]
    assert by_code == [f"SJ05{i:02d}" for i in range(1, 7)]
    assert [c.code for c in catalogue.search_categories("供水")][:1] == ["SQ0104"]
    assert {c.kind for c in catalogue.search_categories("漏水", kind="request")} == {"request"}


@pytest.mark.django_db
def test_search_leaves_out_major_and_inactive_categories() -> None:
    Category.objects.filter(code="SJ0502").update(is_active=False)
    Category.objects.filter(code="SJ04").update(is_active=False)
    assert catalogue.search_categories("zdjy") == []
    assert catalogue.search_categories("dljb") == []
    assert catalogue.search_categories("jmzx")  # the 大类's initials find its 小类
    assert all(c.parent_id for c in catalogue.search_categories("jmzx"))


# -- the command and the admin ---------------------------------------------------------------
@pytest.mark.django_db
def test_the_command_loads_checks_and_exports(tmp_path: Path) -> None:
    call_command("load-categories", stdout=(out := StringIO()))
    assert "174 个类别" in out.getvalue()
    assert "620103-CGJ" in out.getvalue()  # units that do not exist yet are named
    export = tmp_path / "out.xlsx"
    call_command("load-categories", "--export", str(export), stdout=(out := StringIO()))
    assert export.exists()
    assert "已导出 174 个类别" in out.getvalue()
    Category.objects.filter(code="SJ0502").update(name="改过")
    call_command("load-categories", str(export), "--check", stdout=StringIO())
    assert Category.objects.get(code="SJ0502").name == "改过"
    call_command("load-categories", str(export), stdout=StringIO())
    assert Category.objects.get(code="SJ0502").name == "占道经营"


@pytest.mark.django_db
def test_the_command_reports_every_problem_of_a_bad_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", ["code,name,kind", "Z1,甲,部门", "Z2,,event"])
    with pytest.raises(CommandError) as caught:
        call_command("load-categories", str(path), stdout=StringIO())
    message = str(caught.value)
    assert "2 处错误，未写入任何数据" in message
    assert "第 2 行，C（kind）列" in message
    assert "第 3 行，B（name）列：名称不能为空" in message
    with pytest.raises(CommandError, match=r"须为 \.xlsx 或 \.csv"):
        call_command("load-categories", "--export", str(tmp_path / "x.txt"))


@pytest.mark.django_db
def test_the_admin_lists_and_edits_categories_and_routing_rules(
    client: Client, superuser: User, tree: Tree, city_unit: HandlingUnit
) -> None:
    client.force_login(superuser)
    major = Category.objects.get(code="SJ05")
    minor = Category.objects.get(code="SJ0502")
    RoutingRule.objects.create(category=minor, grid=tree.east, lead_unit=city_unit)
    pages = [
        "/admin/cases/category/",
        f"/admin/cases/category/?kind=event&major={major.pk}",
        "/admin/cases/category/?major=none&q=zdjy",
        f"/admin/cases/category/{minor.pk}/change/",
        "/admin/cases/routingrule/",
        "/admin/cases/routingrule/add/",
    ]
    for page in pages:
        assert client.get(page).status_code == 200, page
    listed = client.get(f"/admin/cases/category/?major={major.pk}").content.decode()
    assert "占道经营" in listed
    assert "上水井盖" not in listed
    change = client.get(f"/admin/cases/category/{minor.pk}/change/").content.decode()
    assert "time_limits-TOTAL_FORMS" in change
