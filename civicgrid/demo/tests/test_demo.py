from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import shapely
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.db import transaction

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.demo import district
from civicgrid.demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
from civicgrid.demo.district import generate_partition
from civicgrid.grids import crs, locator
from civicgrid.grids.models import Grid, GridVersion, HandlingUnit, Level, UnitKind
from civicgrid.grids.validation import GridInput, validate

YINTAN = "620103009008"  # 银滩花园社区, named in the seed report
LIUJIAYING = "620103004007"  # 柳家营社区居委会
#: Square metres in a square degree at Lanzhou's latitude.
M2_PER_DEGREE2 = 111_320.0**2 * math.cos(math.radians(36.0))


@pytest.fixture(scope="module")
def partition() -> list[GridInput]:
    return generate_partition()


def by_code(items: list[GridInput]) -> dict[str, GridInput]:
    return {item.code: item for item in items}


# -- the partition -------------------------------------------------------------


@pytest.mark.django_db
def test_the_partition_validates_cleanly(partition: list[GridInput]) -> None:
    report = validate(partition)

    assert report.problems == []


def test_the_partition_has_the_real_district_subdistricts_and_communities(
    partition: list[GridInput],
) -> None:
    levels = Counter(item.level for item in partition)
    items = by_code(partition)

    assert levels == {0: 1, 1: 15, 2: 141, 3: 325}
    assert items["620103"].name == "七里河区"
    # The real boundary, with the generated edges' ends on it and snapped to 0.1 mm.
    boundary = district.district_boundary()
    assert shapely.hausdorff_distance(items["620103"].geometry, boundary) < 1e-8
    moved = shapely.symmetric_difference(items["620103"].geometry, boundary)
    assert moved.area * M2_PER_DEGREE2 < 10.0  # along some 130 km of boundary
    assert Counter(i.kind for i in partition if i.level == 1) == {
        "street": 9,
        "town": 5,
        "township": 1,
    }
    assert Counter(i.kind for i in partition if i.level == 2) == {"community": 82, "village": 59}
    assert items["620103001"].name == "西园街道"
    assert items["620103100"].name == "阿干镇"
    assert items["620103201"].name == "魏岭乡"
    assert items["620103201"].kind == "township"
    assert items["620103001005"].name == "雷坛河西街社区居民委员会"
    assert items["620103104211"].name == "鲁家村民委员会"
    assert items["620103104211"].kind == "village"
    assert {i.code for i in partition if i.level == 2} == {c.code for c in district.communities()}


def test_the_seed_report_communities_sit_in_their_real_subdistricts(
    partition: list[GridInput],
) -> None:
    items = by_code(partition)

    assert (items[YINTAN].name, items[YINTAN].parent_code) == ("银滩花园社区", "620103009")
    assert items["620103009"].name == "秀川街道"
    assert (items[LIUJIAYING].name, items[LIUJIAYING].parent_code) == (
        "柳家营社区居委会",
        "620103004",
    )
    assert items["620103004"].name == "敦煌路街道"


def test_level_3_grids_are_numbered_within_their_community(partition: list[GridInput]) -> None:
    grids = [item for item in partition if item.level == 3]
    names = {c.code: district.short_name(c.name) for c in district.communities()}
    by_community: dict[str, list[GridInput]] = {}
    for grid in grids:
        by_community.setdefault(grid.parent_code or "", []).append(grid)

    assert set(by_community) == set(names)
    for community, members in by_community.items():
        assert [g.code for g in members] == [
            f"{community}{n:03d}" for n in range(1, len(members) + 1)
        ]
        assert [g.name for g in members] == [
            f"{names[community]}第{n}网格" for n in range(1, len(members) + 1)
        ]
    assert by_community[YINTAN][0].name == "银滩花园社区第1网格"
    assert by_community["620103100201"][0].name == "马泉村第1网格"


def test_every_polygon_is_valid_and_has_real_area(partition: list[GridInput]) -> None:
    for item in partition:
        geom = item.geometry
        assert geom is not None
        assert geom.geom_type in ("Polygon", "MultiPolygon"), item.code
        assert shapely.is_valid(geom), item.code
        assert crs.area_m2(geom) > 10_000, item.code


def test_siblings_share_edges_exactly_and_tile_their_parent(partition: list[GridInput]) -> None:
    items = by_code(partition)
    children: dict[str, list[shapely.Geometry]] = {}
    for item in partition:
        if item.parent_code:
            children.setdefault(item.parent_code, []).append(item.geometry)

    for parent, geoms in children.items():
        gap = shapely.symmetric_difference(shapely.union_all(geoms), items[parent].geometry)
        # Measured in lon/lat, scaled: projecting float-noise slivers along long
        # edges would give them area they do not have.
        assert gap.area * M2_PER_DEGREE2 < 1.0, parent
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            if a < b:
                assert shapely.intersection(geoms[a], geoms[b]).area == 0.0, parent


def test_the_streets_are_the_dense_urban_core_in_the_north(partition: list[GridInput]) -> None:
    subdistricts = [i for i in partition if i.level == 1]
    streets = [shapely.centroid(i.geometry).y for i in subdistricts if i.kind == "street"]
    towns = [shapely.centroid(i.geometry).y for i in subdistricts if i.kind != "street"]
    street_kinds = {i.code for i in subdistricts if i.kind == "street"}
    urban = [
        crs.area_m2(i.geometry) for i in partition if i.level == 2 and i.parent_code in street_kinds
    ]
    villages = [crs.area_m2(i.geometry) for i in partition if i.kind == "village"]

    assert min(streets) > max(towns)
    assert sorted(urban)[len(urban) // 2] * 3 < sorted(villages)[len(villages) // 2]


def test_urban_communities_get_more_grids_and_every_community_one() -> None:
    counts = district.grid_counts()
    communities = district.communities()
    urban = [
        counts[c.code]
        for c in communities
        if district.subdistrict_kind(c.parent_code) == district.STREET
    ]
    villages = [counts[c.code] for c in communities if district.community_kind(c.code) == "village"]

    assert sum(counts.values()) == 325
    assert min(counts.values()) >= 1
    assert sum(urban) / len(urban) > 1.8 * sum(villages) / len(villages)


def test_the_partition_is_the_same_for_a_seed_and_differs_for_another(
    partition: list[GridInput],
) -> None:
    again = generate_partition()
    other = generate_partition(7)

    assert [(i.code, shapely.to_wkb(i.geometry)) for i in again] == [
        (i.code, shapely.to_wkb(i.geometry)) for i in partition
    ]
    assert [i.code for i in other if i.level < 3] == [i.code for i in partition if i.level < 3]
    assert not shapely.equals(
        by_code(other)["620103009"].geometry, by_code(partition)["620103009"].geometry
    )


# -- the command ----------------------------------------------------------------


@pytest.mark.django_db
def test_if_empty_loads_an_empty_database() -> None:
    call_command("demo", "--if-empty", "--no-recent", stdout=StringIO())

    assert Grid.objects.filter(level=Level.GRID).count() == 325


@pytest.mark.django_db
def test_it_numbers_grids_with_the_configured_sequence_digits(settings: Any) -> None:
    settings.CIVICGRID_GRID_SEQUENCE_DIGITS = 2

    call_command("demo", "--no-recent", stdout=StringIO())

    assert Grid.objects.filter(level=Level.GRID, code__regex=r"^\d{14}$").count() == 325
    worker = Membership.objects.get(user__username="gridworker", role=Role.GRID_WORKER)
    assert worker.grid is not None
    assert worker.grid.code == "62010300900801"


@pytest.fixture(scope="class")
def loaded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """The demo loaded once for the class, rolled back after it."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("demo", "--no-recent", stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def snapshot() -> dict[str, Any]:
    return {
        "grids": [
            (g.code, g.name, g.kind, g.path, bytes(g.geom_wkb), g.households, g.updated_at)
            for g in Grid.objects.order_by("code")
        ],
        "version": GridVersion.objects.values_list("version", "token").first(),
        "units": list(HandlingUnit.objects.order_by("code").values_list()),
        "users": list(User.objects.order_by("username").values_list()),
        "memberships": list(Membership.objects.order_by("pk").values_list()),
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("loaded")
class TestTheDemoCommand:
    def test_it_creates_the_grid_tree(self) -> None:
        levels = Counter(Grid.objects.values_list("level", flat=True))

        assert levels == {0: 1, 1: 15, 2: 141, 3: 325}
        yintan = Grid.objects.get(code=YINTAN)
        assert [g.code for g in yintan.ancestors()] == ["620103", "620103009", YINTAN]
        assert Grid.objects.get(code=LIUJIAYING).parent.code == "620103004"  # type: ignore[union-attr]

    def test_it_creates_18_handling_units(self) -> None:
        units = {u.name: u for u in HandlingUnit.objects.select_related("serves")}

        assert len(units) == 18
        assert Counter(u.kind for u in units.values()) == {
            UnitKind.SUBDISTRICT_OFFICE: 15,
            UnitKind.BUREAU: 3,
        }
        assert units["西园街道办事处"].serves.code == "620103001"
        assert units["阿干镇人民政府"].serves.code == "620103100"
        for name in ("七里河区城市管理局", "七里河区环境卫生管理局", "七里河区住房和城乡建设局"):
            assert units[name].serves.code == "620103"

    def test_it_places_1644_grid_workers_on_every_grid(self) -> None:
        rows = Membership.objects.filter(role=Role.GRID_WORKER, is_active=True)
        per_grid = Counter(rows.values_list("grid_id", flat=True))
        per_user = Counter(rows.values_list("user_id", flat=True))
        grids = set(Grid.objects.filter(level=Level.GRID).values_list("pk", flat=True))

        assert len(per_user) == 1644
        assert set(per_grid) == grids
        assert sum(4 <= n <= 6 for n in per_grid.values()) > 0.8 * len(grids)
        assert 0 < sum(n == 2 for n in per_user.values()) < 50
        assert max(per_user.values()) == 2

    def test_grid_workers_have_chinese_names_phones_and_no_usable_password(self) -> None:
        workers = User.objects.filter(username__startswith="gw")

        assert workers.count() == 1643  # and the demo gridworker
        assert len({w.phone for w in workers}) == 1643
        for worker in workers[:50]:
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", worker.display_name)
            assert re.fullmatch(r"1[3-9]\d{9}", worker.phone)
            assert not worker.has_usable_password()

    def test_every_community_has_a_secretary(self) -> None:
        secretaries = Membership.objects.filter(role=Role.COMMUNITY_STAFF, title="社区书记")

        assert sorted(secretaries.values_list("grid__code", flat=True)) == sorted(
            c.code for c in district.communities()
        )
        assert not User.objects.get(username="sj620103001001").has_usable_password()

    def test_it_creates_a_demo_account_for_every_role(self) -> None:
        roles = set()
        for account in DEMO_ACCOUNTS:
            user = User.objects.get(username=account.username)
            membership = Membership.objects.select_related("grid", "unit").get(
                user=user, role=account.role
            )
            scope = membership.unit or membership.grid
            assert scope is not None
            assert scope.code == account.scope
            roles.add(account.role)

        assert roles == set(Role.values)
        admin = User.objects.get(username="admin")
        assert admin.is_superuser
        assert admin.is_staff
        assert check_password(DEMO_PASSWORD, User.objects.get(username="gridworker").password)
        assert len({User.objects.get(username=a.username).password for a in DEMO_ACCOUNTS}) == 1

    def test_the_demo_grid_worker_and_secretary_are_part_of_the_real_staff(self) -> None:
        worker = Membership.objects.get(user__username="gridworker")
        secretary = Membership.objects.get(user__username="community")

        assert (worker.grid.code, worker.title) == ("620103009008001", "网格长")  # type: ignore[union-attr]
        assert (secretary.grid.code, secretary.title) == (YINTAN, "社区书记")  # type: ignore[union-attr]
        assert Membership.objects.filter(grid__code=YINTAN, title="社区书记").count() == 1

    def test_it_prints_the_counts_and_the_demo_logins(self, loaded: str) -> None:
        assert "网格 325（本次新建 482）" in loaded
        assert "网格员：1644，社区书记：141，演示账号：9" in loaded
        assert "处置单位：18" in loaded
        assert DEMO_PASSWORD in loaded
        for account in DEMO_ACCOUNTS:
            assert account.username in loaded

    def test_running_it_twice_changes_nothing(self) -> None:
        before = snapshot()

        out = StringIO()
        call_command("demo", "--no-recent", stdout=out)

        assert snapshot() == before
        assert "本次新建用户 0 个，岗位 0 个" in out.getvalue()

    def test_running_it_with_another_seed_changes_nothing_either(self) -> None:
        before = snapshot()

        call_command("demo", "--seed", "7", "--no-recent", stdout=StringIO())

        assert snapshot() == before

    def test_if_empty_does_nothing_on_a_non_empty_database(self) -> None:
        before = snapshot()

        out = StringIO()
        call_command("demo", "--if-empty", "--no-recent", stdout=out)

        assert snapshot() == before
        assert "已有网格" in out.getvalue()

    def test_a_point_at_a_communitys_centroid_locates_that_community(self) -> None:
        for community in Grid.objects.filter(level=Level.COMMUNITY):
            found = locator.locate(community.centroid_lon, community.centroid_lat)

            path = [ref.code for ref in found.path]
            assert path[:3] == ["620103", community.code[:9], community.code]
            assert len(path) == 4

        yintan = Grid.objects.get(code=YINTAN)
        found = locator.locate(yintan.centroid_lon, yintan.centroid_lat)
        assert [ref.name for ref in found.path[:3]] == ["七里河区", "秀川街道", "银滩花园社区"]
