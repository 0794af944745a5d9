"""The main navigation: which pages a user's roles lead to.

Every role page adds ONE line to ``NAV`` (in the order the top bar shows them);
``web/_nav.html`` renders ``nav_items(user)`` in the top bar of every page. An item
shows to users holding one of its ``roles`` in an active membership (``STAFF``: any
membership; ``EVERYONE``: any signed-in user); superusers see every item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import memberships
from civicgrid.stats.access import STATS_ROLES

#: Marker roles: any signed-in user, or anyone holding some membership.
EVERYONE = "*"
STAFF = "staff"

ALL_ROLES = frozenset(Role.values)


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    #: The URL name the item links to.
    url_name: str
    #: Who sees it: role values, or ``STAFF`` / ``EVERYONE``.
    roles: frozenset[str]
    #: Other URL names under this item (its detail pages), to mark it active there.
    also: tuple[str, ...] = ()


def _roles(*roles: str) -> frozenset[str]:
    return frozenset(roles)


NAV: list[NavItem] = [
    NavItem(_("工作台"), "home", _roles(EVERYONE)),
    # -- role pages: one line each, e.g.
    # NavItem(_("热线受理"), "intake", _roles(Role.CALL_TAKER, Role.SUPERVISOR)),
    # NavItem(_("派遣队列"), "dispatch-queue", _roles(Role.DISPATCHER, Role.SUPERVISOR)),
    NavItem(_("热线受理"), "intake", _roles(Role.CALL_TAKER, Role.SUPERVISOR, Role.DISPATCHER)),
    NavItem(_("派遣队列"), "dispatch-queue", _roles(Role.DISPATCHER, Role.SUPERVISOR)),
    NavItem(_("单位待办"), "inbox", _roles(Role.UNIT_HANDLER)),
    NavItem(_("值班长工作台"), "desk", _roles(Role.SUPERVISOR)),
    NavItem(
        _("网格员"), "field-home", _roles(Role.GRID_WORKER), also=("field-verify", "field-report")
    ),
    NavItem(_("辖区概览"), "overview", _roles(Role.COMMUNITY_STAFF, Role.LEADER, Role.SUPERVISOR)),
    NavItem(
        _("统计分析"),
        "stats-dashboard",
        frozenset(STATS_ROLES),
        also=("stats-screen",),
    ),
    # -- role pages end
    NavItem(_("案件"), "case-list", _roles(STAFF), also=("case-detail",)),
    NavItem(_("网格地图"), "grid-map", _roles(EVERYONE)),
]


@dataclass(frozen=True)
class NavLink:
    label: str | Promise
    url: str
    active: bool


def user_roles(user: User) -> set[str]:
    """The roles of ``user``'s active memberships (one query per request, shared with
    the case access checks)."""
    return {m.role for m in memberships(user)}


def _visible(item: NavItem, user: User, roles: set[str]) -> bool:
    if EVERYONE in item.roles or user.is_superuser:
        return True
    if STAFF in item.roles and roles:
        return True
    return bool(item.roles & roles)


def nav_items(
    user: User, *, current: str = "", items: Iterable[NavItem] | None = None
) -> list[NavLink]:
    """The links of the top bar for ``user``; ``current`` is the URL name of the page
    shown, to mark its item active."""
    if not user.is_authenticated:
        return []
    roles = user_roles(user)
    links = []
    for item in NAV if items is None else items:
        if not _visible(item, user, roles):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:  # a page not wired up yet
            continue
        active = bool(current) and (current == item.url_name or current in item.also)
        links.append(NavLink(item.label, url, active))
    return links


def nav_for_request(request: HttpRequest) -> list[NavLink]:
    match = request.resolver_match
    current = (match.url_name or "") if match else ""
    return nav_items(request.user, current=current)  # type: ignore[arg-type]
