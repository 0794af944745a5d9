"""How API callers prove who they are: the browser session, a personal bearer token,
or an integration key.

An integration key (``Authorization: Bearer cgk_…`` from ``civicgrid create-api-key``)
acts as the integration's service account, within the integration's scopes
(``api:cases:read``, ``api:cases:write``, ``api:grids:read``), districts and rate
limit; every call that carries one is written to the access log
(``civicgrid.api.middleware.IntegrationAccessLog``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer, django_auth

from civicgrid.accounts import services as accounts
from civicgrid.accounts.models import IntegrationKey, Scope
from civicgrid.grids.models import Grid

API_PREFIX = "/api/v1/"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyRefused(Exception):
    """An integration key's call refused: the status, a message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def required_scope(request: HttpRequest) -> str | None:
    """The scope a call needs, from its path and method; ``None``: no key may call it."""
    path = request.path_info
    rest = path[path.find(API_PREFIX) + len(API_PREFIX) :] if API_PREFIX in path else ""
    reading = (request.method or "GET") in READ_METHODS
    if rest == "cases" or rest.startswith("cases/"):
        return Scope.CASES_READ if reading else Scope.CASES_WRITE
    if rest in ("grids", "locate") or rest.startswith("grids/"):
        return Scope.GRIDS_READ if reading else None
    return None


def authenticate_integration(request: HttpRequest, raw: str) -> Any:
    key = accounts.authenticate_integration_key(raw)
    if key is None:
        request.integration_key = accounts.find_integration_key(raw)  # type: ignore[attr-defined]
        raise KeyRefused(401, _("接口密钥无效或已吊销"))
    request.integration_key = key  # type: ignore[attr-defined]
    scope = required_scope(request)
    if scope is None:
        raise KeyRefused(403, _("接口密钥不能调用此接口"))
    if not key.integration.has_scope(scope):
        raise KeyRefused(403, _("该接口密钥没有 %(s)s 权限") % {"s": scope})
    retry_after = accounts.take_rate_slot(key)
    if retry_after is not None:
        raise KeyRefused(
            429,
            _("调用过于频繁：每分钟最多 %(n)s 次，请 %(s)s 秒后再试")
            % {"n": key.integration.rate_limit_per_minute, "s": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    user = key.integration.acting_user
    request.user = user
    return user


class BearerToken(HttpBearer):
    """``Authorization: Bearer cg_…`` (a person's token, acting as that person) or
    ``Bearer cgk_…`` (an integration key, acting as its service account)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if token.startswith(accounts.INTEGRATION_KEY_PREFIX):
            return authenticate_integration(request, token)
        user = accounts.authenticate_token(token)
        if user is None:
            return None
        request.user = user
        return user


def integration_key(request: HttpRequest) -> IntegrationKey | None:
    return getattr(request, "integration_key", None)


def district_roots(request: HttpRequest) -> list[Grid] | None:
    """The districts an integration key is limited to; ``None``: no such limit."""
    key = integration_key(request)
    if key is None:
        return None
    cached = getattr(request, "_integration_roots", None)
    if cached is None:
        cached = list(key.integration.districts.all())
        request._integration_roots = cached  # type: ignore[attr-defined]
    return cached or None


def in_districts(request: HttpRequest, grid_path: str) -> bool:
    roots = district_roots(request)
    return roots is None or any(grid_path.startswith(r.path) for r in roots)


def districts_q(request: HttpRequest, field: str) -> Q:
    """A filter keeping rows whose ``field`` (a grid path) lies in the key's districts."""
    roots = district_roots(request)
    if roots is None:
        return Q()
    q = Q()
    for root in roots:
        q |= Q(**{f"{field}__startswith": root.path})
    return q


#: Every endpoint accepts either. The bearer token comes first: django-ninja's session
#: auth checks CSRF before it looks for a session, and a failed check ends the request
#: (403) without trying the next method, so with the session first every POST from an
#: integration (no CSRF cookie) was refused. A request without an Authorization header
#: falls through to the session, CSRF-checked as before.
AUTH = [BearerToken(), django_auth]
