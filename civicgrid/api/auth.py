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


#: Every endpoint accepts either (session first, so the pages' own calls need no token).
AUTH = [django_auth, BearerToken()]
