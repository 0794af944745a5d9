"""Cases on the small hand-built tree of the grids tests, and the people on duty.

The east subdistrict (东街道) is served by 城管执法局东街道中队 (``city_unit``);
a second unit serves the west. Case locations: ``EAST_POINT`` lies in grid C1,
``WEST_POINT`` in grid A1.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Category, CategoryKind, Channel, Status
from civicgrid.grids import services as grid_services
from civicgrid.grids.models import HandlingUnit, UnitKind
from civicgrid.grids.tests.fixtures import Tree

EAST_POINT = (103.825, 35.975)  # grid C1, 丙社区, 东街道
WEST_POINT = (103.725, 35.975)  # grid A1, 甲社区, 西街道
OUTSIDE_POINT = (104.5, 36.5)


def _user(username: str, name: str) -> User:
    return User.objects.create_user(username=username, password=None, display_name=name)


@pytest.fixture
def call_taker(tree: Tree) -> User:
    """刘芳, a 12345 call-taker at the district centre."""
    user = _user("liufang", "刘芳")
    Membership.objects.create(user=user, role=Role.CALL_TAKER, grid=tree.district)
    return user


@pytest.fixture
def supervisor(tree: Tree) -> User:
    """马军, the shift supervisor (值班长)."""
    user = _user("majun", "马军")
    Membership.objects.create(user=user, role=Role.SUPERVISOR, grid=tree.district)
    return user


@pytest.fixture
def leader(tree: Tree) -> User:
    user = _user("leader", "领导")
    Membership.objects.create(user=user, role=Role.LEADER, grid=tree.district)
    return user


@pytest.fixture
def east_worker(tree: Tree) -> User:
    """吴刚, the grid worker of grid C1 where the east cases are."""
    user = _user("wugang", "吴刚")
    grid_services.assign_grid_worker(grid=tree["620103002001001"], user=user)
    return user


@pytest.fixture
def west_unit(tree: Tree) -> HandlingUnit:
    return grid_services.create_handling_unit(
        code="W-OFFICE", name="西街道办事处", kind=UnitKind.SUBDISTRICT_OFFICE, serves=tree.west
    )


@pytest.fixture
def west_handler(west_unit: HandlingUnit) -> User:
    user = _user("west", "西街道经办人")
    Membership.objects.create(user=user, role=Role.UNIT_HANDLER, unit=west_unit)
    return user


@pytest.fixture
def category(db: None) -> Category:
    """街面秩序 / 占道经营."""
    major = Category.objects.create(code="T05", name="街面秩序（测试）", kind=CategoryKind.EVENT)
    return Category.objects.create(
        code="T0502", name="占道经营（测试）", kind=CategoryKind.EVENT, parent=major, pinyin="zdjy"
    )


IntakeFactory = Callable[..., Case]


@pytest.fixture
def new_case(category: Category, call_taker: User, city_unit: HandlingUnit) -> IntakeFactory:
    """Make a case as the hotline would, at ``EAST_POINT`` unless told otherwise."""

    def make(**overrides: object) -> Case:
        fields: dict[str, object] = {
            "channel": Channel.HOTLINE,
            "category": category,
            "description": "桥下环岛有人占道摆摊，影响通行",
            "lon": EAST_POINT[0],
            "lat": EAST_POINT[1],
            "requester_name": "张先生",
            "requester_phone": "13912345678",
        }
        fields.update(overrides)
        case, _created = services.create_case(
            data=services.Intake(**fields),  # type: ignore[arg-type]
            actor=call_taker,
        )
        return case

    return make


@pytest.fixture
def drive(
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    supervisor: User,
    east_worker: User,
    city_unit: HandlingUnit,
) -> Callable[[str], Case]:
    """Bring a fresh case to a status through the real services."""

    def to(status: str) -> Case:
        case = new_case()
        if status == Status.NEW:
            return case
        if status == Status.REJECTED:
            return services.reject_case(case=case, actor=call_taker, reason="不属于受理范围")
        if status == Status.MERGED:
            original = new_case(description="同一处占道经营")
            return services.merge_case(case=case, into=original, actor=call_taker)
        case = services.accept_case(case=case, actor=call_taker)
        if status == Status.FILED:
            return case
        if status == Status.VOIDED:
            services.request_void(case=case, actor=call_taker, reason="重复登记")
            return services.decide_void(case=case, actor=supervisor, approve=True)
        if status == Status.PARKED:
            return services.park_case(case=case, actor=supervisor, reason="待道路改造")
        case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
        if status == Status.DISPATCHED:
            return case
        if status == Status.RETURNED:
            return services.send_back_case(case=case, actor=unit_handler, reason="非我单位职责")
        case = services.acknowledge_case(case=case, actor=unit_handler)
        if status == Status.IN_PROGRESS:
            return case
        case = services.handle_case(case=case, actor=unit_handler, result="已劝离摊贩，恢复通行")
        if status == Status.HANDLED:
            return case
        case = services.verify_case(case=case, actor=east_worker, passed=True)
        assert status == Status.CLOSED, status
        return case

    return to
