from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from civicgrid.accounts.models import User
from civicgrid.cases.models import Case, Status


def test_the_case_admin_shows_a_case_with_its_timeline_and_allows_no_edits(
    drive: Callable[[str], Case], superuser: User
) -> None:
    case = drive(Status.CLOSED)
    client = Client()
    client.force_login(superuser)
    listing = client.get("/admin/cases/case/")
    assert listing.status_code == 200
    assert case.number in listing.content.decode()
    page = client.get(f"/admin/cases/case/{case.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "核查通过" in html
    assert "派遣" in html
    assert client.get("/admin/cases/case/add/").status_code == 403
    before = Case.objects.get(pk=case.pk).status
    client.post(f"/admin/cases/case/{case.pk}/change/", {"status": "new"})
    assert Case.objects.get(pk=case.pk).status == before
