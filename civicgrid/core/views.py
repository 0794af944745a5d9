from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from civicgrid.core.selectors import health


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health()
    status = 503 if report["database"]["status"] != "ok" else 200
    return JsonResponse(report, status=status, json_dumps_params={"ensure_ascii": False})
