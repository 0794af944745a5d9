"""``import-grids``, ``export-grids`` and ``locate``: files in, files out, all or nothing."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapefile
import shapely
import shapely.geometry
from django.core.management import call_command
from django.core.management.base import CommandError
from pyproj import CRS, Transformer
from pyproj.enums import WktVersion

from civicgrid.grids import crs
from civicgrid.grids import io as grid_io
from civicgrid.grids.management.commands import __name__ as commands_package
from civicgrid.grids.models import Grid
from civicgrid.grids.tests.fixtures import (
    COMMUNITY_A,
    DISTRICT,
    GRID_A1,
    GRID_A2,
    WEST,
    Tree,
    box,
    tree_items,
)
from civicgrid.grids.validation import GridInput

pytestmark = pytest.mark.django_db


# -- helpers ----------------------------------------------------------------------


def feature(item: GridInput, **extra: Any) -> dict[str, Any]:
    assert item.geometry is not None
    props: dict[str, Any] = {
        "code": item.code,
        "name": item.name,
        "level": item.level,
        "parent_code": item.parent_code,
    }
    if item.households is not None:
        props["households"] = item.households
    props.update(extra)
    return {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(item.geometry),
        "properties": props,
    }


def collection(features: Sequence[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **extra}


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def tree_file(tmp_path: Path) -> Path:
    return write(tmp_path / "tree.geojson", collection([feature(i) for i in tree_items()]))


def run(*args: str) -> tuple[str, str]:
    """Run a command; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> tuple[CommandError, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=out, stderr=err)
    return raised.value, out.getvalue(), err.getvalue()


def same_shape(a: shapely.Geometry, b: shapely.Geometry, metres: float = 0.01) -> bool:
    """Every vertex of ``a`` within ``metres`` of ``b``'s, and the same area."""
    ca = shapely.get_coordinates(shapely.normalize(a))
    cb = shapely.get_coordinates(shapely.normalize(b))
    if ca.shape != cb.shape:
        return False
    worst = max(crs.distance_m(x0, y0, x1, y1) for (x0, y0), (x1, y1) in zip(ca, cb, strict=True))
    return worst < metres


# -- import: GeoJSON ----------------------------------------------------------------


def test_a_good_file_imports_the_whole_tree(tmp_path: Path) -> None:
    out, _err = run("import-grids", str(tree_file(tmp_path)))
    assert "已导入 15 个网格（新增 15，更新 0），源坐标系 wgs84" in out
    a1 = Grid.objects.get(code=GRID_A1)
    assert a1.area_m2 == pytest.approx(crs.area_m2(box(103.70, 35.95, 103.75, 36.00)), abs=0.01)
    assert 20e6 < a1.area_m2 < 26e6  # about 4.5 km × 5.6 km
    assert (a1.centroid_lon, a1.centroid_lat) == pytest.approx((103.725, 35.975))
    assert [g.code for g in a1.ancestors()] == [DISTRICT, WEST, COMMUNITY_A, GRID_A1]
    assert a1.households == 301
    district = Grid.objects.get(code=DISTRICT)
    assert Grid.objects.in_subtree(district).count() == 15
    assert district.area_m2 == pytest.approx(
        sum(g.area_m2 for g in Grid.objects.filter(level=3)), rel=1e-6
    )


def test_one_bad_feature_among_good_ones_writes_nothing_and_says_which(tmp_path: Path) -> None:
    items = tree_items()
    bad = items[8]  # the 9th feature
    bad.geometry = shapely.Polygon(
        [(103.75, 36.00), (103.80, 36.05), (103.80, 36.00), (103.75, 36.05), (103.75, 36.00)]
    )
    path = write(tmp_path / "bad.geojson", collection([feature(i) for i in items]))
    error, _out, err = run_failing("import-grids", str(path))
    assert str(error) == "1 处问题，未写入任何网格"
    assert error.returncode == 1
    assert f"- 第 9 个要素，编码 {bad.code}：边界无效：边界自相交（位置 103.775, 36.025）" in err
    assert Grid.objects.count() == 0


def test_every_problem_of_a_file_is_listed_with_its_index(tmp_path: Path) -> None:
    features = [feature(i) for i in tree_items()]
    del features[3]["properties"]["code"]  # 4th, grid A1: no code
    features[5]["properties"]["name"] = ""  # 6th, community B: no name
    features[6]["geometry"] = {"type": "Polygon", "coordinates": [[103.7, 36.0]]}  # 7th, B1
    features[9]["geometry"]["coordinates"] = [  # 10th, community C: lat/lon swapped
        [[y, x] for x, y in features[9]["geometry"]["coordinates"][0]]
    ]
    path = write(tmp_path / "bad.geojson", collection(features))
    error, _out, err = run_failing("import-grids", str(path))
    lines = err.strip().splitlines()
    assert lines[0] == "- 第 4 个要素：缺少编码（字段 code）"
    assert lines[1].startswith(f"- 第 6 个要素，编码 {features[5]['properties']['code']}：缺少名称")
    assert lines[2].startswith("- 第 7 个要素，编码 620103001002001：边界无法解析：")
    assert lines[3].startswith("- 第 10 个要素，编码 620103002001：坐标 (")
    assert "超出允许范围" in lines[3]
    assert "经纬度顺序" in lines[3]
    # B2, whose parent B has no name, is not reported as an orphan, nor is
    # B1 also reported for a missing polygon.
    assert str(error) == f"{len(lines)} 处问题，未写入任何网格"
    assert len(lines) == 4
    assert Grid.objects.count() == 0


def test_a_feature_that_is_not_a_feature_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    features: list[Any] = [feature(i) for i in tree_items()[:1]]
    features.append({"type": "Polygon", "coordinates": []})
    path = write(tmp_path / "odd.geojson", collection(features))
    _error, _out, err = run_failing("import-grids", str(path))
    assert "- 第 2 个要素：不是 GeoJSON 要素（Feature）" in err


def test_reimporting_without_update_refuses_duplicates(tmp_path: Path) -> None:
    path = tree_file(tmp_path)
    run("import-grids", str(path))
    error, _out, err = run_failing("import-grids", str(path))
    assert str(error) == "15 处问题，未写入任何网格"
    assert f"- 第 1 个要素，编码 {DISTRICT}：编码重复：系统中已有网格“示范区”使用此编码" in err
    assert Grid.objects.count() == 15


def test_reimporting_with_update_replaces(tmp_path: Path) -> None:
    run("import-grids", str(tree_file(tmp_path)))
    before = {g.code: g.pk for g in Grid.objects.all()}
    items = tree_items()
    items[0].name = "示范新区"
    path = write(tmp_path / "v2.geojson", collection([feature(i) for i in items]))
    out, _err = run("import-grids", str(path), "--update")
    assert "已导入 15 个网格（新增 0，更新 15）" in out
    assert Grid.objects.get(code=DISTRICT).name == "示范新区"
    assert {g.code: g.pk for g in Grid.objects.all()} == before  # same rows, updated


def test_a_dry_run_checks_and_writes_nothing(tmp_path: Path) -> None:
    out, _err = run("import-grids", str(tree_file(tmp_path)), "--dry-run")
    assert "检查通过：15 个网格可导入（新增 15，更新 0）" in out
    assert "未写入" in out
    assert Grid.objects.count() == 0


def test_level_parent_and_field_names_can_be_given(tree: Tree, tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(box(103.70, 35.95, 103.75, 36.00)),
            "properties": {"WGBM": GRID_A1, "WGMC": "甲一网格"},
        },
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(box(103.75, 35.95, 103.80, 36.00)),
            "properties": {"WGBM": int(GRID_A2), "WGMC": "甲二网格"},  # a number, as in a DBF
        },
    ]
    path = write(tmp_path / "a.geojson", collection(features))
    args = ["--level", "3", "--parent", COMMUNITY_A, "--code-field", "WGBM", "--name-field", "WGMC"]
    out, _err = run("import-grids", str(path), *args, "--update")
    assert "更新 2" in out
    assert Grid.objects.get(code=GRID_A1).name == "甲一网格"
    assert Grid.objects.get(code=GRID_A2).name == "甲二网格"
    assert Grid.objects.get(code=GRID_A2).parent == tree.community_a


def test_the_parent_can_come_from_a_named_field(tmp_path: Path) -> None:
    items = tree_items()
    features = []
    for item in items:
        f = feature(item)
        f["properties"]["SQBM"] = f["properties"].pop("parent_code")
        features.append(f)
    path = write(tmp_path / "t.geojson", collection(features))
    run("import-grids", str(path), "--parent-field", "SQBM")
    assert Grid.objects.get(code=GRID_A1).parent.code == COMMUNITY_A  # type: ignore[union-attr]


def test_a_wrong_field_name_is_reported_with_the_fields_the_file_has(tmp_path: Path) -> None:
    _error, _out, err = run_failing(
        "import-grids", str(tree_file(tmp_path)), "--code-field", "WGBM"
    )
    first = err.splitlines()[0]
    assert first.startswith("- 没有任何要素有字段 WGBM；文件中的字段有：")
    assert "code" in first
    assert "name" in first


def test_gcj02_coordinates_are_converted_on_import(tmp_path: Path) -> None:
    items = tree_items()
    features = []
    for item in items:
        gcj = shapely.transform(
            item.geometry,
            lambda c: np.array([crs.from_storage(x, y, "gcj02") for x, y in c]),
        )
        features.append(feature(GridInput(**{**item.__dict__, "geometry": gcj})))
    path = write(tmp_path / "gcj.geojson", collection(features))
    out, _err = run("import-grids", str(path), "--crs", "gcj02")
    assert "源坐标系 gcj02" in out
    for item in items:
        assert same_shape(Grid.objects.get(code=item.code).geometry, item.geometry, metres=0.5)


def test_a_geojson_crs_member_picks_the_source_system(tmp_path: Path) -> None:
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4544", always_xy=True)
    items = tree_items()
    features = []
    for item in items:
        gk = shapely.transform(item.geometry, lambda c: np.column_stack(to_gk.transform(*c.T)))
        features.append(feature(GridInput(**{**item.__dict__, "geometry": gk})))
    doc = collection(
        features, crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4544"}}
    )
    out, _err = run("import-grids", str(write(tmp_path / "gk.geojson", doc)))
    assert "源坐标系 EPSG:4544" in out
    assert same_shape(Grid.objects.get(code=GRID_A1).geometry, items[3].geometry)


def test_a_missing_file_is_a_plain_error(tmp_path: Path) -> None:
    error, _out, _err = run_failing("import-grids", str(tmp_path / "nope.geojson"))
    assert "文件不存在" in str(error)


def test_a_file_that_is_not_geojson_is_a_plain_error(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("{not json", encoding="utf-8")
    error, _out, _err = run_failing("import-grids", str(path))
    assert "不是有效的 GeoJSON" in str(error)
    path.write_text('{"type": "Polygon", "coordinates": []}', encoding="utf-8")
    error, _out, _err = run_failing("import-grids", str(path))
    assert "顶层类型须为 FeatureCollection" in str(error)


def test_an_unknown_crs_is_a_plain_error(tmp_path: Path) -> None:
    error, _out, _err = run_failing("import-grids", str(tree_file(tmp_path)), "--crs", "mars")
    assert "未知的坐标系：mars" in str(error)


# -- the reader itself ------------------------------------------------------------------


def test_reading_counts_features_from_one_and_touches_no_database() -> None:
    doc = collection([feature(i) for i in tree_items()[:3]])
    result = grid_io.read_geojson(doc, grid_io.ReadOptions())
    assert [i.index for i in result.items] == [1, 2, 3]
    assert result.problems == []
    assert result.count == 3


def test_an_explicit_crs_wins_over_the_declared_one_and_says_so() -> None:
    doc = collection([feature(tree_items()[0])], crs="EPSG:4544")
    result = grid_io.read_geojson(doc, grid_io.ReadOptions(crs="wgs84"))
    assert result.source.label == "wgs84"
    assert result.notes == ["文件声明的坐标系为 EPSG:4544，按指定的 wgs84 读取"]


def test_crs84_is_storage() -> None:
    doc = collection(
        [feature(tree_items()[0])],
        crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
    )
    result = grid_io.read_geojson(doc, grid_io.ReadOptions())
    assert result.source.is_storage
    assert result.items[0].geometry == tree_items()[0].geometry


def test_kind_and_households_are_read_and_checked() -> None:
    item = tree_items()[1]
    good = grid_io.read_geojson(
        collection([feature(item, kind="镇", households="1200")]), grid_io.ReadOptions()
    )
    assert (good.items[0].kind, good.items[0].households) == ("town", 1200)
    bad = grid_io.read_geojson(
        collection([feature(item, kind="城堡", households="-3")]), grid_io.ReadOptions()
    )
    assert [p.message.split("：")[0] for p in bad.problems] == [
        "类型“城堡”无效",
        "户数“-3”不是非负整数",
    ]


def test_z_coordinates_are_dropped() -> None:
    f = feature(tree_items()[0])
    f["geometry"]["coordinates"] = [[[x, y, 1500.0] for x, y in f["geometry"]["coordinates"][0]]]
    result = grid_io.read_geojson(collection([f]), grid_io.ReadOptions())
    assert not shapely.has_z(result.items[0].geometry)


# -- import: Shapefile ---------------------------------------------------------------------


def shapefile_zip(
    items: Sequence[GridInput],
    *,
    to_crs: str | None = "EPSG:4544",
    encoding: str = "utf-8",
    cpg: bool = True,
    folder: str = "wangge/",
) -> bytes:
    """A zipped Shapefile of ``items`` (fields WGBM, WGMC, SQBM), in ``to_crs`` with its .prj."""
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    writer = shapefile.Writer(
        shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding=encoding
    )
    writer.field("WGBM", "C", size=32)
    writer.field("WGMC", "C", size=60)
    writer.field("SQBM", "C", size=32)
    transformer = Transformer.from_crs("EPSG:4490", to_crs, always_xy=True) if to_crs else None
    for item in items:
        geom = item.geometry
        if transformer is not None:
            geom = shapely.transform(geom, lambda c: np.column_stack(transformer.transform(*c.T)))
        # Shapefile rings: exterior clockwise.
        geom = shapely.orient_polygons(geom, exterior_cw=True)
        writer.poly([shapely.get_coordinates(geom.exterior).tolist()])
        writer.record(item.code, item.name, item.parent_code or "")
    writer.close()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{folder}网格.shp", shp.getvalue())
        z.writestr(f"{folder}网格.shx", shx.getvalue())
        z.writestr(f"{folder}网格.dbf", dbf.getvalue())
        if to_crs:
            z.writestr(f"{folder}网格.prj", CRS(to_crs).to_wkt(WktVersion.WKT1_ESRI))
        if cpg:
            z.writestr(f"{folder}网格.cpg", encoding.upper())
    return archive.getvalue()


SHP_ARGS = ("--code-field", "WGBM", "--name-field", "WGMC", "--parent-field", "SQBM")


def grids_of_west(tree: Tree) -> list[GridInput]:
    """New level-3 grids for community B (its two grids, redrawn as four)."""
    return [
        GridInput(
            code=f"62010300100201{n}",
            name=f"乙社区新{n}号网格",
            level=3,
            parent_code="620103001002",
            geometry=box(103.70 + 0.025 * (n - 1), 36.00, 103.70 + 0.025 * n, 36.05),
        )
        for n in range(1, 5)
    ]


def test_a_zipped_shapefile_in_gauss_kruger_imports_through_its_prj(
    tree: Tree, tmp_path: Path
) -> None:
    # Retire community B's two stored grids' codes by moving them into the batch:
    # the batch redraws B as four grids, so B's old grids must go first.
    Grid.objects.filter(code__in=["620103001002001", "620103001002002"]).delete()
    items = grids_of_west(tree)
    path = tmp_path / "grids.zip"
    path.write_bytes(shapefile_zip(items))
    out, _err = run("import-grids", str(path), "--level", "3", *SHP_ARGS)
    assert "已导入 4 个网格（新增 4，更新 0），源坐标系 EPSG:4544" in out
    for item in items:
        stored = Grid.objects.get(code=item.code)
        assert stored.name == item.name
        assert stored.parent == tree.community_b
        assert same_shape(stored.geometry, item.geometry, metres=0.01)
        assert stored.area_m2 == pytest.approx(crs.area_m2(item.geometry), rel=1e-6)


def test_a_shapefile_in_gbk_without_a_cpg_is_read_as_gbk_and_says_so(
    tree: Tree, tmp_path: Path
) -> None:
    Grid.objects.filter(code__in=["620103001002001", "620103001002002"]).delete()
    items = grids_of_west(tree)
    path = tmp_path / "gbk.zip"
    path.write_bytes(shapefile_zip(items, encoding="gbk", cpg=False))
    _out, err = run("import-grids", str(path), "--level", "3", *SHP_ARGS)
    assert "已按 GBK 读取" in err
    assert Grid.objects.get(code=items[0].code).name == "乙社区新1号网格"


def test_a_bad_shapefile_feature_is_reported_by_index(tree: Tree, tmp_path: Path) -> None:
    items = grids_of_west(tree)  # B's stored grids are still there: all four overlap them
    path = tmp_path / "overlap.zip"
    path.write_bytes(shapefile_zip(items))
    error, _out, err = run_failing("import-grids", str(path), "--level", "3", *SHP_ARGS)
    assert "未写入任何网格" in str(error)
    assert "- 第 1 个要素，编码 620103001002011：与同级网格 620103001002001 重叠" in err
    assert not Grid.objects.filter(code__startswith="62010300100201").exists()


def test_a_shapefile_without_prj_uses_the_crs_option(tree: Tree, tmp_path: Path) -> None:
    Grid.objects.filter(code__in=["620103001002001", "620103001002002"]).delete()
    items = grids_of_west(tree)
    data = shapefile_zip(items, to_crs=None)
    path = tmp_path / "plain.zip"
    path.write_bytes(data)
    out, _err = run("import-grids", str(path), "--level", "3", "--crs", "cgcs2000", *SHP_ARGS)
    assert "源坐标系 cgcs2000" in out
    assert Grid.objects.filter(code__startswith="62010300100201").count() == 4


def test_a_prj_with_no_epsg_code_is_used_through_its_wkt(tree: Tree, tmp_path: Path) -> None:
    Grid.objects.filter(code__in=["620103001002001", "620103001002002"]).delete()
    items = grids_of_west(tree)
    local = "+proj=tmerc +lat_0=0 +lon_0=103.8 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m"
    assert CRS(local).to_epsg() is None
    path = tmp_path / "local.zip"
    path.write_bytes(shapefile_zip(items, to_crs=local))
    run("import-grids", str(path), "--level", "3", *SHP_ARGS)
    for item in items:
        assert same_shape(Grid.objects.get(code=item.code).geometry, item.geometry)


def test_geojson_can_come_from_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tree_file(tmp_path).read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    out, _err = run("import-grids", "-")
    assert "已导入 15 个网格" in out


def test_a_shp_on_disk_is_read_with_the_files_beside_it(tree: Tree, tmp_path: Path) -> None:
    Grid.objects.filter(code__in=["620103001002001", "620103001002002"]).delete()
    items = grids_of_west(tree)
    with zipfile.ZipFile(io.BytesIO(shapefile_zip(items, folder=""))) as z:
        z.extractall(tmp_path)
    out, _err = run("import-grids", str(tmp_path / "网格.shp"), "--level", "3", *SHP_ARGS)
    assert "已导入 4 个网格" in out


def test_a_zip_without_exactly_one_shapefile_is_a_plain_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "nothing here")
    error, _out, _err = run_failing("import-grids", str(empty))
    assert "压缩包中没有 .shp 文件" in str(error)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.shp", b"")
        z.writestr("b.shp", b"")
    error, _out, _err = run_failing("import-grids", str(two))
    assert "压缩包中有多个 .shp 文件" in str(error)


# -- export ---------------------------------------------------------------------------------


def snapshot() -> dict[str, tuple[Any, ...]]:
    """Each grid's fields that an export and re-import must keep, its polygon last."""
    return {
        g.code: (
            g.name,
            g.level,
            g.kind,
            g.parent.code if g.parent else None,
            g.households,
            g.area_m2,
            g.geometry,
        )
        for g in Grid.objects.select_related("parent")
    }


def test_export_then_import_reproduces_the_tree(tree: Tree, tmp_path: Path) -> None:
    target = tmp_path / "out.geojson"
    _out, err = run("export-grids", "-o", str(target))
    assert "已导出 15 个网格" in err
    before = snapshot()
    for level in (3, 2, 1, 0):
        Grid.objects.filter(level=level).delete()
    run("import-grids", str(target))
    after = snapshot()
    assert after.keys() == before.keys()
    for code, (*fields, geom) in before.items():
        assert after[code][:-1] == tuple(fields)
        assert shapely.equals(after[code][-1], geom)


def test_export_writes_rfc7946_geojson_to_stdout(tree: Tree) -> None:
    out, _err = run("export-grids")
    doc = json.loads(out)
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 15
    first = doc["features"][0]
    assert first["properties"]["code"] == DISTRICT
    assert first["properties"]["name"] == "示范区"
    assert "示范区" in out  # not \\u-escaped
    ring = shapely.LinearRing(first["geometry"]["coordinates"][0])
    assert ring.is_ccw  # exterior rings counter-clockwise


def test_export_of_a_subtree_and_a_level(tree: Tree) -> None:
    out, _err = run("export-grids", "--root", COMMUNITY_A)
    assert [f["properties"]["code"] for f in json.loads(out)["features"]] == [
        COMMUNITY_A,
        GRID_A1,
        GRID_A2,
    ]
    out, _err = run("export-grids", "--root", WEST, "--level", "3")
    assert len(json.loads(out)["features"]) == 4


def test_export_can_leave_out_retired_grids(tree: Tree) -> None:
    Grid.objects.filter(code=GRID_A1).update(is_active=False)
    assert len(json.loads(run("export-grids")[0])["features"]) == 15
    assert len(json.loads(run("export-grids", "--active-only")[0])["features"]) == 14


def test_export_of_an_unknown_root_is_a_plain_error(tree: Tree) -> None:
    error, _out, _err = run_failing("export-grids", "--root", "999")
    assert str(error) == "网格 999 不存在"


# -- locate ------------------------------------------------------------------------------


def test_locate_prints_the_location_as_json(tree: Tree) -> None:
    out, _err = run("locate", "103.72", "35.97")
    assert "甲社区第1网格" in out  # ensure_ascii=False
    doc = json.loads(out)
    assert doc["inside"] is True
    assert doc["grid"]["code"] == GRID_A1
    assert [p["code"] for p in doc["path"]] == [DISTRICT, WEST, COMMUNITY_A, GRID_A1]


def test_locate_outside_prints_inside_false_and_fails(tree: Tree) -> None:
    error, out, _err = run_failing("locate", "104.5", "36.5")
    assert error.returncode == 1
    assert json.loads(out)["inside"] is False


def test_locate_takes_gcj02(tree: Tree) -> None:
    gcj = crs.from_storage(103.7496, 35.975, "gcj02")
    out, _err = run("locate", str(gcj[0]), str(gcj[1]), "--crs", "gcj02")
    assert json.loads(out)["grid"]["code"] == GRID_A1


def test_locate_with_an_unknown_crs_is_a_usage_error(tree: Tree) -> None:
    error, _out, _err = run_failing("locate", "103.72", "35.97", "--crs", "mars")
    assert error.returncode == 2


@pytest.mark.parametrize(("lon", "lat", "code"), [("103.72", "35.97", 0), ("104.5", "36.5", 1)])
def test_locate_exit_codes_from_the_command_line(
    tree: Tree, capsys: pytest.CaptureFixture[str], lon: str, lat: str, code: int
) -> None:
    from django.core.management import load_command_class

    command = load_command_class("civicgrid.grids", "locate")
    if code:
        with pytest.raises(SystemExit) as raised:
            command.run_from_argv(["civicgrid", "locate", lon, lat])
        assert raised.value.code == code
        assert "该点不在辖区内" in capsys.readouterr().err
    else:
        command.run_from_argv(["civicgrid", "locate", lon, lat])
        assert json.loads(capsys.readouterr().out)["inside"] is True


def test_the_commands_live_where_django_finds_them() -> None:
    from django.core.management import get_commands

    commands = get_commands()
    for name in ("import-grids", "export-grids", "locate"):
        assert commands[name] == "civicgrid.grids"
    assert commands_package == "civicgrid.grids.management.commands"
