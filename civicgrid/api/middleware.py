"""The integration access log for ``/api/v1/``: one row per call with an integration key."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from civicgrid.accounts import services as accounts
from civicgrid.api.auth import API_PREFIX

BEARER = "bearer "


class IntegrationAccessLog:
    """Writes ``accounts.AccessLog`` for every API call carrying ``Bearer cgk_…``,
    allowed or refused (401, 403, 404, 429, 500 …), with its status and duration.

    The key is the one the API authenticated (``request.integration_key``); a call
    refused before authentication (an unknown path) is logged with the key it named.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        raw = header[len(BEARER) :].strip() if header.lower().startswith(BEARER) else ""
        if not raw.startswith(accounts.INTEGRATION_KEY_PREFIX) or not request.path.startswith(
            API_PREFIX
        ):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        key = getattr(request, "integration_key", None) or accounts.find_integration_key(raw)
        accounts.record_access(
            key=key,
            method=request.method or "",
            path=request.path,
            status=response.status_code,
            duration_ms=(time.perf_counter() - started) * 1000,
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
        return response
