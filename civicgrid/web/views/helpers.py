"""Small things every page module needs."""

from __future__ import annotations

from typing import cast

from django.http import Http404, HttpRequest

from civicgrid.accounts.models import User
from civicgrid.cases.access import is_staff


def current_user(request: HttpRequest) -> User:
    """The signed-in user of a ``login_required`` view."""
    return cast(User, request.user)


def staff_user(request: HttpRequest) -> User:
    """The signed-in user if they work on the platform (a membership, or a superuser);
    anyone else gets the same 404 as for a page that does not exist."""
    user = current_user(request)
    if not is_staff(user):
        raise Http404
    return user


def is_htmx(request: HttpRequest) -> bool:
    """Whether htmx made the request (it then wants a fragment, not a whole page)."""
    return request.headers.get("HX-Request") == "true"


def htmx_target(request: HttpRequest) -> str:
    """The id of the element an htmx request swaps (empty for a plain request)."""
    return request.headers.get("HX-Target", "") if is_htmx(request) else ""
