"""How API callers prove who they are: the browser session, or a bearer token."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from civicgrid.accounts.services import authenticate_token


class BearerToken(HttpBearer):
    """``Authorization: Bearer cg_…`` from ``civicgrid create-api-token``; acts as its user."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = authenticate_token(token)
        if user is None:
            return None
        request.user = user
        return user


#: Every endpoint accepts either. The bearer token comes first: django-ninja's session
#: auth checks CSRF before it looks for a session, and a failed check ends the request
#: (403) without trying the next method, so with the session first every POST from an
#: integration (no CSRF cookie) was refused. A request without an Authorization header
#: falls through to the session, CSRF-checked as before.
AUTH = [BearerToken(), django_auth]
