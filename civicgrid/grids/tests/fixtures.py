"""A small hand-built grid tree near Lanzhou, and the people who work on it.

The district is a 0.2° × 0.1° rectangle (about 18 km × 11 km) around lon 103.8,
lat 36.0, split in two subdistricts (west, east), each in two communities
(south, north), each in two level-3 grids (west, east)::

    lat 36.05 +--------+--------+--------+--------+
              | 乙社区  (B)     | 丁社区  (D)     |
              |  B1    |  B2    |  D1    |  D2    |
    lat 36.00 +--------+--------+--------+--------+
              | 甲社区  (A)     | 丙社区  (C)     |
              |  A1    |  A2    |  C1    |  C2    |
    lat 35.95 +--------+--------+--------+--------+
          103.70   103.75   103.80   103.85   103.90
              |   西街道 (S1)   |   东街道 (S2)   |

The root conftest loads this module as a plugin, so every app's tests have them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import shapely

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.grids import services
from civicgrid.grids.models import Grid, HandlingUnit, UnitKind
from civicgrid.grids.validation import GridInput

DISTRICT = "620103"
WEST, EAST = "620103001", "620103002"
COMMUNITY_A, COMMUNITY_B = "620103001001", "620103001002"
COMMUNITY_C, COMMUNITY_D = "620103002001", "620103002002"
GRID_A1, GRID_A2 = "620103001001001", "620103001001002"

LON0, LON1 = 103.70, 103.90
LAT0, LAT1 = 35.95, 36.05


def box(lon0: float, lat0: float, lon1: float, lat1: float) -> shapely.Geometry:
    return shapely.box(lon0, lat0, lon1, lat1)


#: Edges of the tree's rectangles; neighbours share them exactly.
LONS = (103.70, 103.75, 103.80, 103.85, 103.90)
LATS = (35.95, 36.00, 36.05)


def tree_items() -> list[GridInput]:
    """The whole tree as one batch, parents first, features counted from 1."""
    items = [GridInput(code=DISTRICT, name="示范区", level=0, geometry=box(LON0, LAT0, LON1, LAT1))]
    subdistricts = [(WEST, "西街道", 0), (EAST, "东街道", 2)]
    communities = {
        WEST: [(COMMUNITY_A, "甲社区", 0), (COMMUNITY_B, "乙社区", 1)],
        EAST: [(COMMUNITY_C, "丙社区", 0), (COMMUNITY_D, "丁社区", 1)],
    }
    for s_code, s_name, i in subdistricts:
        west_edge, east_edge = LONS[i], LONS[i + 2]
        items.append(
            GridInput(
                code=s_code,
                name=s_name,
                level=1,
                parent_code=DISTRICT,
                geometry=box(west_edge, LAT0, east_edge, LAT1),
            )
        )
        for c_code, c_name, j in communities[s_code]:
            south, north = LATS[j], LATS[j + 1]
            items.append(
                GridInput(
                    code=c_code,
                    name=c_name,
                    level=2,
                    parent_code=s_code,
                    geometry=box(west_edge, south, east_edge, north),
                )
            )
            for n in (1, 2):
                items.append(
                    GridInput(
                        code=f"{c_code}{n:03d}",
                        name=f"{c_name}第{n}网格",
                        level=3,
                        parent_code=c_code,
                        geometry=box(LONS[i + n - 1], south, LONS[i + n], north),
                        households=300 + n,
                    )
                )
    for index, item in enumerate(items, start=1):
        item.index = index
    return items


@dataclass
class Tree:
    grids: dict[str, Grid] = field(default_factory=dict)

    def __getitem__(self, code: str) -> Grid:
        return self.grids[code]

    @property
    def district(self) -> Grid:
        return self.grids[DISTRICT]

    @property
    def west(self) -> Grid:
        return self.grids[WEST]

    @property
    def east(self) -> Grid:
        return self.grids[EAST]

    @property
    def community_a(self) -> Grid:
        return self.grids[COMMUNITY_A]

    @property
    def community_b(self) -> Grid:
        return self.grids[COMMUNITY_B]

    @property
    def grid_a1(self) -> Grid:
        return self.grids[GRID_A1]


@pytest.fixture
def tree(db: None) -> Tree:
    saved = services.save_grids(items=tree_items())
    return Tree({g.code: g for g in saved})


@pytest.fixture
def city_unit(tree: Tree) -> HandlingUnit:
    """A handling unit serving the east subdistrict."""
    return services.create_handling_unit(
        code="CG-E",
        name="城管执法局东街道中队",
        kind=UnitKind.BUREAU,
        serves=tree.east,
        contact_name="周强",
        contact_phone="0931-0000000",
    )


def _user(username: str, display_name: str, phone: str = "") -> User:
    return User.objects.create_user(
        username=username, password=None, display_name=display_name, phone=phone
    )


@pytest.fixture
def dispatcher(tree: Tree) -> User:
    """王敏, a dispatcher at the district's digital centre: the whole district."""
    user = _user("wangmin", "王敏")
    Membership.objects.create(user=user, role=Role.DISPATCHER, grid=tree.district)
    return user


@pytest.fixture
def community_staff(tree: Tree) -> User:
    """李华, staff of 甲社区 (community A) only."""
    user = _user("lihua", "李华")
    services.assign_community_staff(grid=tree.community_a, user=user, title="社区书记")
    return user


@pytest.fixture
def grid_worker(tree: Tree) -> User:
    """赵磊, the grid worker of 甲社区第1网格 (grid A1)."""
    user = _user("zhaolei", "赵磊", phone="13800000001")
    services.assign_grid_worker(grid=tree.grid_a1, user=user, title="专职网格员")
    return user


@pytest.fixture
def unit_handler(city_unit: HandlingUnit) -> User:
    """陈静, who handles cases for the unit serving the east subdistrict."""
    user = _user("chenjing", "陈静")
    Membership.objects.create(user=user, role=Role.UNIT_HANDLER, unit=city_unit)
    return user


@pytest.fixture
def outsider(db: None) -> User:
    """孙悦, who has an account and no membership at all."""
    return _user("sunyue", "孙悦")


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(username="root", password=None, email="")
