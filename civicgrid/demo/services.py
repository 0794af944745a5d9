"""Load the demo district: the grid tree, its units, its staff and the demo logins.

Loading is idempotent: what is already there is left as it is and only what
is missing is written. The grid tree is written whole when the district
(620103) is missing, and otherwise used as stored; a unit is known by its code,
a person by their username; a level-3 grid with any grid worker, or a community
with a 社区书记, is staffed and gets nobody new. A second run, with any seed,
writes nothing.

The grid tree goes through ``grids.services.save_grids``, the units through
``create_handling_unit`` and the secretaries through ``assign_community_staff``.
The 1,644 grid workers and their memberships are bulk-inserted, writing exactly
the rows ``assign_grid_worker`` would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Q

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases.catalogue import link_default_units
from civicgrid.demo import district
from civicgrid.demo.accounts import DEMO_ACCOUNTS, DemoAccount
from civicgrid.demo.people import SECRETARY_PREFIX, WORKER_PREFIX, People, plan_grid_workers
from civicgrid.grids.models import Grid, HandlingUnit, Level, UnitKind
from civicgrid.grids.services import (
    assign_community_staff,
    assign_grid_worker,
    create_handling_unit,
    save_grids,
)

#: Grid workers in the demo district (the seed district's real figure).
GRID_WORKER_COUNT = 1644
SECRETARY_TITLE = "社区书记"
GRID_LEADER_TITLE = "网格长"
#: District bureaus (code, name), each serving the whole district.
BUREAUS = (
    ("620103-CGJ", "七里河区城市管理局"),
    ("620103-HWJ", "七里河区环境卫生管理局"),
    ("620103-ZJJ", "七里河区住房和城乡建设局"),
)


@dataclass
class DemoSummary:
    """What the demo district holds after loading, and how much of it is new."""

    grids: Counter[int] = field(default_factory=Counter)
    units: int = 0
    grid_workers: int = 0
    secretaries: int = 0
    accounts: int = 0
    #: Rows written by this run: ``grids``, ``units``, ``users``, ``memberships``.
    created: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Person:
    username: str
    display_name: str
    phone: str


def load_demo(*, seed: int = district.DEFAULT_SEED) -> DemoSummary:
    """Write the demo district, or what of it is missing, in one transaction.

    The grid tree is written whole or not at all: when the district's grid
    exists, the tree stored under it is used as it is, whatever seed made it.
    """
    summary = DemoSummary()
    # One source of names for units, workers and secretaries, always drawn in
    # the same order, so a second run plans the same people as the first.
    people = People(seed)
    with transaction.atomic():
        grids = _load_grids(seed, summary)
        units = _load_units(grids, people, summary)
        _load_grid_workers(grids, seed, people, summary)
        _load_secretaries(grids, people, summary)
        for account in DEMO_ACCOUNTS:
            _load_account(account, grids, units, summary)
        # The shipped catalogue names the demo's bureaus as default units; the
        # migration that loaded it ran before the units existed.
        summary.created["category_units"] = link_default_units()
        _count(grids, summary)
    return summary


def scope_grid(scope: str, grids: dict[str, Grid]) -> Grid | None:
    """The grid a demo account's scope names, if the tree has it.

    ``GRID_SCOPE`` is written with a 3-digit grid sequence; under another
    ``CIVICGRID_GRID_SEQUENCE_DIGITS`` the same grid has another code.
    """
    if scope in grids or len(scope) <= 12:
        return grids.get(scope)
    community, sequence = scope[:12], int(scope[12:])
    digits = settings.CIVICGRID_GRID_SEQUENCE_DIGITS
    return grids.get(f"{community}{sequence:0{digits}d}")


def _load_grids(seed: int, summary: DemoSummary) -> dict[str, Grid]:
    """The demo district's tree by code, generated and saved when the district is missing."""
    root = Grid.objects.filter(code=district.DISTRICT_CODE).first()
    if root is None:
        items = district.generate_partition(
            seed, sequence_digits=settings.CIVICGRID_GRID_SEQUENCE_DIGITS
        )
        save_grids(items=items)
        summary.created["grids"] = len(items)
        root = Grid.objects.get(code=district.DISTRICT_CODE)
    return {g.code: g for g in Grid.objects.in_subtree(root)}


def _load_units(
    grids: dict[str, Grid], people: People, summary: DemoSummary
) -> dict[str, HandlingUnit]:
    """The 15 subdistrict offices and the district bureaus, by code."""
    wanted: list[tuple[str, str, str, Grid | None]] = []
    for sub in district.subdistricts():
        street = district.subdistrict_kind(sub.code) == district.STREET
        name = sub.name + ("办事处" if street else "人民政府")
        wanted.append((sub.code, name, UnitKind.SUBDISTRICT_OFFICE, grids.get(sub.code)))
    for code, name in BUREAUS:
        wanted.append((code, name, UnitKind.BUREAU, grids[district.DISTRICT_CODE]))
    existing = {u.code: u for u in HandlingUnit.objects.filter(code__in=[w[0] for w in wanted])}
    taken = set(
        HandlingUnit.objects.filter(name__in=[w[1] for w in wanted]).values_list("name", flat=True)
    )
    units: dict[str, HandlingUnit] = {}
    for code, name, kind, serves in wanted:
        contact_name, contact_phone = people.name(), people.landline()
        if code in existing:
            units[code] = existing[code]
        elif serves is not None and name not in taken:  # a unit made by hand is left alone
            units[code] = create_handling_unit(
                code=code,
                name=name,
                kind=kind,
                serves=serves,
                contact_name=contact_name,
                contact_phone=contact_phone,
            )
            summary.created["units"] += 1
    return units


def _demo_account(role: str) -> DemoAccount:
    return next(a for a in DEMO_ACCOUNTS if a.role == role)


def _load_grid_workers(
    grids: dict[str, Grid], seed: int, people: People, summary: DemoSummary
) -> None:
    """1,644 grid workers on the grids that have none yet.

    The demo ``gridworker`` is one of them: the 网格长 of 银滩花园社区第1网格.
    """
    level3 = {code: g for code, g in grids.items() if g.level == Level.GRID}
    plan = plan_grid_workers(sorted(level3), total=GRID_WORKER_COUNT, seed=seed, people=people)
    demo = _demo_account(Role.GRID_WORKER)
    demo_grid = scope_grid(demo.scope, grids)
    for worker in plan:
        if demo_grid is not None and worker.grids[0] == (demo_grid.code, GRID_LEADER_TITLE):
            worker.username, worker.display_name = demo.username, demo.display_name
    staffed = set(
        Membership.objects.filter(role=Role.GRID_WORKER, grid__in=list(level3.values()))
        .values_list("grid_id", flat=True)
        .distinct()
    )
    placements = [
        (worker, level3[code], title)
        for worker in plan
        for code, title in worker.grids
        if level3[code].pk not in staffed
    ]
    placed = {id(worker): worker for worker, _grid, _title in placements}.values()
    users = _ensure_users(
        [_Person(w.username, w.display_name, w.phone) for w in placed],
        prefix=WORKER_PREFIX,
        demo=demo,
        summary=summary,
    )
    memberships = [
        # What assign_grid_worker writes, one row at a time.
        Membership(user=users[w.username], role=Role.GRID_WORKER, grid=g, title=t, is_active=True)
        for w, g, t in placements
    ]
    Membership.objects.bulk_create(memberships, batch_size=500)
    summary.created["memberships"] += len(memberships)


def _load_secretaries(grids: dict[str, Grid], people: People, summary: DemoSummary) -> None:
    """A 社区书记 for every community that has none; the demo ``community`` is 银滩花园社区's."""
    demo = next(a for a in DEMO_ACCOUNTS if a.title == SECRETARY_TITLE)
    staffed = set(
        Membership.objects.filter(
            role=Role.COMMUNITY_STAFF,
            title=SECRETARY_TITLE,
            grid__in=[g for g in grids.values() if g.level == Level.COMMUNITY],
        ).values_list("grid_id", flat=True)
    )
    wanted: list[tuple[_Person, Grid]] = []
    for item in district.communities():
        person = _Person(f"{SECRETARY_PREFIX}{item.code}", people.name(), people.mobile())
        if item.code == demo.scope:
            person = _Person(demo.username, demo.display_name, person.phone)
        community = grids.get(item.code)
        if community is not None and community.pk not in staffed:
            wanted.append((person, community))
    users = _ensure_users(
        [person for person, _grid in wanted], prefix=SECRETARY_PREFIX, demo=demo, summary=summary
    )
    for person, community in wanted:
        assign_community_staff(grid=community, user=users[person.username], title=SECRETARY_TITLE)
        summary.created["memberships"] += 1


@cache
def _hashed(password: str) -> str:
    """A demo password's hash, made once: hashing is slow on purpose."""
    return make_password(password)


def _ensure_users(
    wanted: Iterable[_Person], *, prefix: str, demo: DemoAccount, summary: DemoSummary
) -> dict[str, User]:
    """The users in ``wanted`` by username, bulk-created where missing.

    Generated staff get unusable passwords; the demo account among them gets
    the demo password.
    """
    wanted = list(wanted)
    if not wanted:
        return {}
    names = {p.username for p in wanted}

    def lookup() -> dict[str, User]:
        # By prefix rather than a list of 1,644 names: SQLite caps query parameters.
        found = User.objects.filter(Q(username__startswith=prefix) | Q(username=demo.username))
        return {u.username: u for u in found if u.username in names}

    users = lookup()
    new = [
        User(
            username=p.username,
            display_name=p.display_name,
            phone=p.phone,
            password=_hashed(demo.password) if p.username == demo.username else make_password(None),
        )
        for p in wanted
        if p.username not in users
    ]
    if new:
        User.objects.bulk_create(new, batch_size=500)
        summary.created["users"] += len(new)
        users = lookup()
    return users


def _load_account(
    account: DemoAccount,
    grids: dict[str, Grid],
    units: dict[str, HandlingUnit],
    summary: DemoSummary,
) -> None:
    """The demo login and its membership, where missing (the admin is also a superuser)."""
    user = User.objects.filter(username=account.username).first()
    if user is None:
        admin = account.role == Role.ADMIN
        user = User.objects.create(
            username=account.username,
            display_name=account.display_name,
            password=_hashed(account.password),
            is_staff=admin,
            is_superuser=admin,
        )
        summary.created["users"] += 1
    if account.role == Role.UNIT_HANDLER:
        unit = units.get(account.scope)
        if unit is None:  # a unit of that name was made by hand; nothing to join
            return
        if not Membership.objects.filter(user=user, role=account.role, unit=unit).exists():
            Membership.objects.create(user=user, role=account.role, unit=unit, title=account.title)
            summary.created["memberships"] += 1
        return
    grid = scope_grid(account.scope, grids)
    if grid is None or Membership.objects.filter(user=user, role=account.role, grid=grid).exists():
        return
    if account.role == Role.GRID_WORKER:
        assign_grid_worker(grid=grid, user=user, title=account.title)
    elif account.role == Role.COMMUNITY_STAFF:
        assign_community_staff(grid=grid, user=user, title=account.title)
    else:
        Membership.objects.create(user=user, role=account.role, grid=grid, title=account.title)
    summary.created["memberships"] += 1


def _count(grids: dict[str, Grid], summary: DemoSummary) -> None:
    root = grids[district.DISTRICT_CODE].path
    summary.grids = Counter(g.level for g in grids.values())
    summary.units = HandlingUnit.objects.filter(
        code__in=[s.code for s in district.subdistricts()] + [code for code, _n in BUREAUS]
    ).count()
    summary.grid_workers = (
        User.objects.filter(
            memberships__role=Role.GRID_WORKER, memberships__grid__path__startswith=root
        )
        .distinct()
        .count()
    )
    summary.secretaries = Membership.objects.filter(
        role=Role.COMMUNITY_STAFF,
        title=SECRETARY_TITLE,
        grid__level=Level.COMMUNITY,
        grid__path__startswith=root,
    ).count()
    summary.accounts = User.objects.filter(username__in=[a.username for a in DEMO_ACCOUNTS]).count()
