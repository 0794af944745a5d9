from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from civicgrid.accounts.models import Membership
from civicgrid.grids.access import scope_roots


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.active().filter(user=request.user).select_related("grid", "unit")
    )
    return render(
        request,
        "web/home.html",
        {"memberships": memberships, "roots": scope_roots(request.user)},  # type: ignore[arg-type]
    )


@login_required
def grid_map(request: HttpRequest) -> HttpResponse:
    return render(request, "web/map.html", {"roots": scope_roots(request.user)})  # type: ignore[arg-type]
