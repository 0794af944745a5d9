"""Every check of grids/validation.py names the feature and says what is wrong."""

from __future__ import annotations

import pytest
import shapely
from pytest_django.fixtures import Settings as SettingsWrapper

from civicgrid.grids import crs
from civicgrid.grids.models import Grid
from civicgrid.grids.services import GridError, save_grids
from civicgrid.grids.tests.fixtures import COMMUNITY_A, DISTRICT, GRID_A1, WEST, Tree, box
from civicgrid.grids.validation import GridInput, Problem, validate

pytestmark = pytest.mark.django_db

# A second, separate district east of the fixture's, built in the batch itself.
NEW = "620199"
NEW_WEST, NEW_EAST = "620199001", "620199002"


def fresh_batch() -> list[GridInput]:
    """A valid batch: a district split in two subdistricts."""
    return [
        GridInput(code=NEW, name="新区", level=0, geometry=box(104.00, 36.00, 104.10, 36.10)),
        GridInput(
            code=NEW_WEST,
            name="新区西街道",
            level=1,
            parent_code=NEW,
            geometry=box(104.00, 36.00, 104.05, 36.10),
        ),
        GridInput(
            code=NEW_EAST,
            name="新区东街道",
            level=1,
            parent_code=NEW,
            geometry=box(104.05, 36.00, 104.10, 36.10),
        ),
    ]


def numbered(items: list[GridInput]) -> list[GridInput]:
    for index, item in enumerate(items, start=1):
        item.index = index
    return items


def only_problem(items: list[GridInput], **kwargs: bool) -> Problem:
    report = validate(numbered(items), **kwargs)
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def test_a_valid_batch_has_no_problems() -> None:
    assert validate(numbered(fresh_batch())).ok


def test_the_fixture_tree_is_valid(tree: Tree) -> None:
    assert Grid.objects.count() == 15


def test_a_problem_names_the_feature_index_and_code() -> None:
    items = fresh_batch()
    items[2].name = ""
    problem = only_problem(items)
    assert (problem.index, problem.code) == (3, NEW_EAST)
    assert str(problem) == f"第 3 个要素，编码 {NEW_EAST}：缺少名称"


def test_it_rejects_a_polygon_with_a_hole_outside_its_shell() -> None:
    items = fresh_batch()
    shell = [(104.05, 36.00), (104.10, 36.00), (104.10, 36.10), (104.05, 36.10)]
    hole = [(104.20, 36.20), (104.21, 36.20), (104.21, 36.21), (104.20, 36.21)]
    items[2].geometry = shapely.Polygon(shell, [hole])
    problem = only_problem(items)
    assert problem.code == NEW_EAST
    assert "边界无效：内环位于外环之外" in str(problem)
    assert "（位置 104.2, 36.2）" in str(problem)


def test_it_rejects_a_bow_tie_polygon_and_says_where_it_crosses_itself() -> None:
    items = fresh_batch()
    items[2].geometry = shapely.Polygon(
        [(104.05, 36.00), (104.10, 36.10), (104.10, 36.00), (104.05, 36.10), (104.05, 36.00)]
    )
    problem = only_problem(items)
    assert str(problem).startswith(f"第 3 个要素，编码 {NEW_EAST}：")
    assert "边界无效：边界自相交（位置 104.075, 36.05）" in str(problem)


@pytest.mark.parametrize(
    ("geometry", "type_name"),
    [
        (shapely.LineString([(104.05, 36.0), (104.1, 36.1)]), "LineString"),
        (shapely.Point(104.07, 36.05), "Point"),
        (
            shapely.GeometryCollection([shapely.box(104.05, 36.0, 104.1, 36.1)]),
            "GeometryCollection",
        ),
    ],
)
def test_it_rejects_a_geometry_that_is_not_a_polygon(
    geometry: shapely.Geometry, type_name: str
) -> None:
    items = fresh_batch()
    items[2].geometry = geometry
    problem = only_problem(items)
    assert problem.index == 3
    assert f"边界必须是面（Polygon 或 MultiPolygon），实为 {type_name}" in str(problem)


def test_it_accepts_a_multipolygon() -> None:
    items = fresh_batch()
    items[2].geometry = shapely.MultiPolygon(
        [box(104.05, 36.00, 104.10, 36.04), box(104.05, 36.06, 104.10, 36.10)]
    )
    assert validate(numbered(items)).ok


def test_it_rejects_an_empty_polygon() -> None:
    items = fresh_batch()
    items[2].geometry = shapely.Polygon()
    assert "边界为空" in str(only_problem(items))


def test_it_rejects_a_missing_polygon() -> None:
    items = fresh_batch()
    items[2].geometry = None
    assert "缺少边界" in str(only_problem(items))


def test_it_rejects_swapped_longitude_and_latitude() -> None:
    items = fresh_batch()
    items[2].geometry = box(36.00, 104.05, 36.10, 104.10)
    message = str(only_problem(items))
    assert message.startswith(f"第 3 个要素，编码 {NEW_EAST}：坐标 (36.")
    assert ", 104.0" in message
    assert "超出允许范围" in message
    assert "经度 73.0～136.0，纬度 3.0～54.0" in message
    assert "经纬度顺序" in message


def test_it_rejects_projected_metres_given_as_degrees() -> None:
    items = fresh_batch()
    items[2].geometry = box(500000, 3985000, 504000, 3990000)  # Gauss-Krüger metres
    assert "超出允许范围" in str(only_problem(items))


def test_it_rejects_a_child_sticking_out_of_its_parent_and_says_by_how_much_and_where() -> None:
    items = fresh_batch()
    items[2].geometry = box(104.05, 36.00, 104.11, 36.10)  # 0.01° east of the district
    problem = only_problem(items)
    assert problem.code == NEW_EAST
    outside = crs.area_m2(box(104.10, 36.00, 104.11, 36.10))
    assert f"超出上级 {NEW} 的范围 {outside:.1f} 平方米" in str(problem)
    assert "104.10" in str(problem)  # a place in the strip outside
    assert "允许 1.0 平方米" in str(problem)


def test_it_rejects_overlapping_siblings_in_the_batch() -> None:
    items = fresh_batch()
    items[2].geometry = box(104.04, 36.00, 104.10, 36.10)  # 0.01° over its west neighbour
    problem = only_problem(items)
    overlap = crs.area_m2(box(104.04, 36.00, 104.05, 36.10))
    assert problem.index in (2, 3)
    assert "与同级网格" in str(problem)
    assert f"重叠 {overlap:.1f} 平方米" in str(problem)


def test_it_rejects_a_new_grid_overlapping_a_stored_sibling(tree: Tree) -> None:
    new = GridInput(
        code=f"{COMMUNITY_A}009",
        name="甲社区新网格",
        level=3,
        parent_code=COMMUNITY_A,
        geometry=box(103.74, 35.96, 103.76, 35.97),
        index=1,
    )
    report = validate([new])
    messages = [str(p) for p in report.problems]
    assert any(GRID_A1 in m and "重叠" in m for m in messages), messages
    assert all(m.startswith(f"第 1 个要素，编码 {COMMUNITY_A}009：") for m in messages)


def test_it_rejects_a_code_twice_in_the_batch() -> None:
    items = fresh_batch()
    items.append(
        GridInput(
            code=NEW_WEST,
            name="重复",
            level=1,
            parent_code=NEW,
            geometry=box(104.0, 36.0, 104.01, 36.01),
        )
    )
    problem = only_problem(items)
    assert str(problem) == f"第 4 个要素，编码 {NEW_WEST}：编码重复：与第 2 个要素相同"


def test_it_rejects_a_code_already_stored(tree: Tree) -> None:
    items = [
        GridInput(code=DISTRICT, name="又一个区", level=0, geometry=box(104.0, 36.0, 104.1, 36.1))
    ]
    problem = only_problem(items)
    assert (
        str(problem) == f"第 1 个要素，编码 {DISTRICT}：编码重复：系统中已有网格“示范区”使用此编码"
    )


def test_a_stored_code_is_an_update_when_replacing(tree: Tree) -> None:
    items = [
        GridInput(code=DISTRICT, name="示范区", level=0, geometry=box(103.6, 35.9, 104.0, 36.1))
    ]
    assert validate(numbered(items), replace_existing=True).ok


def test_it_rejects_a_malformed_code() -> None:
    items = fresh_batch()
    items[2].code = "东 1"
    assert "编码“东 1”无效" in str(only_problem(items))


def test_it_rejects_an_unknown_level() -> None:
    items = fresh_batch()
    items[2].level = 7
    assert "层级 7 无效：须为 0～3" in str(only_problem(items))


def test_it_rejects_a_kind_that_does_not_fit_the_level() -> None:
    items = fresh_batch()
    items[2].kind = "village"
    message = str(only_problem(items))
    assert "类型“village”无效" in message
    assert "street（街道）" in message


def test_it_accepts_a_town_as_a_subdistrict() -> None:
    items = fresh_batch()
    items[2].kind = "town"
    assert validate(numbered(items)).ok


def test_it_rejects_a_grid_without_a_parent() -> None:
    items = fresh_batch()
    items[2].parent_code = None
    assert "缺少上级编码：街道/乡镇 必须属于一个上级" in str(only_problem(items))


def test_it_rejects_an_unknown_parent() -> None:
    items = fresh_batch()
    items[2].parent_code = "620100"
    assert "上级编码 620100 不存在" in str(only_problem(items))


def test_it_rejects_a_district_with_a_parent(tree: Tree) -> None:
    items = fresh_batch()
    items[0].parent_code = DISTRICT
    assert "区县是网格树的根，不能有上级" in str(only_problem(items))


def test_it_rejects_a_parent_of_the_wrong_level(tree: Tree) -> None:
    item = GridInput(
        code=f"{WEST}777",
        name="跨级网格",
        level=3,
        parent_code=DISTRICT,
        geometry=box(103.70, 35.95, 103.71, 35.96),
        index=1,
    )
    problem = only_problem([item])
    assert str(problem) == (
        f"第 1 个要素，编码 {WEST}777：层级不符：网格 的上级应为社区/村，而 {DISTRICT} 是区县"
    )


def test_it_reports_every_problem_of_a_batch_at_once() -> None:
    items = fresh_batch()
    items[1].name = ""
    items[2].geometry = box(36.0, 104.0, 36.1, 104.1)
    items.append(
        GridInput(
            code="x", name="坏编码", level=1, parent_code=NEW, geometry=box(104, 36, 104.01, 36.01)
        )
    )
    report = validate(numbered(items))
    assert [p.index for p in report.problems] == [2, 3, 4]


def test_children_of_a_broken_parent_are_not_reported_as_orphans() -> None:
    items = fresh_batch()
    items[1].geometry = None  # the west subdistrict: its own problem
    items.append(
        GridInput(
            code=f"{NEW_WEST}001",
            name="新社区",
            level=2,
            parent_code=NEW_WEST,
            geometry=box(104.00, 36.00, 104.05, 36.05),
        )
    )
    report = validate(numbered(items))
    assert [(p.code, p.message) for p in report.problems] == [(NEW_WEST, "缺少边界")]


def test_a_replaced_parent_must_still_contain_its_stored_children(tree: Tree) -> None:
    shrunk = GridInput(
        code=COMMUNITY_A,
        name="甲社区",
        level=2,
        parent_code=WEST,
        geometry=box(103.75, 35.95, 103.80, 36.00),  # no longer covers grid A1
        index=1,
    )
    report = validate([shrunk], replace_existing=True)
    assert len(report.problems) == 1
    assert f"新边界未包含已有下级网格 {GRID_A1}" in str(report.problems[0])


def test_a_replaced_grid_with_stored_children_keeps_its_level(tree: Tree) -> None:
    demoted = GridInput(
        code=COMMUNITY_A,
        name="甲社区",
        level=3,
        parent_code=COMMUNITY_A.replace("001001", "001002"),  # under community B
        geometry=box(103.70, 36.00, 103.72, 36.01),
        index=1,
    )
    messages = [str(p) for p in validate([demoted], replace_existing=True).problems]
    assert any(f"有下级网格（如 {GRID_A1}）时不能改变层级" in m for m in messages), messages


def test_a_replaced_parent_keeps_its_stored_children_as_siblings_of_new_ones(tree: Tree) -> None:
    parent = GridInput(
        code=COMMUNITY_A,
        name="甲社区",
        level=2,
        parent_code=WEST,
        geometry=box(103.70, 35.95, 103.80, 36.00),
        index=1,
    )
    overlapping = GridInput(
        code=f"{COMMUNITY_A}003",
        name="甲社区第3网格",
        level=3,
        parent_code=COMMUNITY_A,
        geometry=box(103.72, 35.96, 103.73, 35.97),  # inside grid A1
        index=2,
    )
    report = validate([parent, overlapping], replace_existing=True)
    assert any(p.index == 2 and GRID_A1 in p.message for p in report.problems)


def test_save_grids_writes_nothing_when_anything_is_wrong() -> None:
    items = fresh_batch()
    items[2].geometry = shapely.Point(104.07, 36.05)
    with pytest.raises(GridError) as raised:
        save_grids(items=numbered(items))
    assert Grid.objects.count() == 0
    assert "1 处问题，未写入任何网格" in str(raised.value)
    assert f"第 3 个要素，编码 {NEW_EAST}" in str(raised.value)


# -- tolerances -----------------------------------------------------------------


def sliver_batch(width: float) -> list[GridInput]:
    """The fresh batch with the east subdistrict reaching ``width``° into the west one."""
    items = fresh_batch()
    items[2].geometry = box(104.05 - width, 36.00, 104.10, 36.10)
    return numbered(items)


def test_a_tiny_overlap_is_within_the_default_tolerance() -> None:
    width = 5e-10  # about 0.5 m² over 11 km
    assert 0.1 < crs.area_m2(box(104.05 - width, 36.0, 104.05, 36.1)) < 1.0
    assert validate(sliver_batch(width)).ok


def test_the_overlap_tolerance_is_configurable(settings: SettingsWrapper) -> None:
    width = 5e-10
    settings.CIVICGRID_GRID_TOLERANCES = {
        **settings.CIVICGRID_GRID_TOLERANCES,
        "sibling_overlap_m2": 0.1,
    }
    report = validate(sliver_batch(width))
    assert len(report.problems) == 1
    assert "允许 0.1 平方米" in str(report.problems[0])


def test_the_outside_parent_tolerance_is_configurable(settings: SettingsWrapper) -> None:
    items = fresh_batch()
    items[2].geometry = box(104.05, 36.00, 104.10 + 5e-10, 36.10)  # ~0.5 m² outside
    assert validate(numbered(items)).ok
    settings.CIVICGRID_GRID_TOLERANCES = {
        **settings.CIVICGRID_GRID_TOLERANCES,
        "outside_parent_m2": 0.1,
    }
    message = str(only_problem(items))
    assert f"超出上级 {NEW} 的范围" in message
    assert "允许 0.1 平方米" in message


def test_the_coordinate_box_is_configurable(settings: SettingsWrapper) -> None:
    settings.CIVICGRID_GRID_TOLERANCES = {**settings.CIVICGRID_GRID_TOLERANCES, "lon_max": 104.05}
    report = validate(numbered(fresh_batch()))
    assert {p.code for p in report.problems} == {NEW, NEW_EAST}
    assert all("经度 73.0～104.05" in str(p) for p in report.problems)
