"""Helpers of the case page tests: signed-in clients, reading the pages, personas
on demand, cases waiting for a decision."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.models import Case, Status

HTMX = {"HX-Request": "true"}
Drive = Callable[[str], Case]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def numbers(html: str) -> list[str]:
    """The case numbers of a list page's table, in order."""
    return re.findall(r'<td class="col-number"><a href="/cases/\d+/">([^<]+)</a>', html)


def field_block(html: str, form: str, field: str) -> str:
    """The HTML of one field of one action form (its input, label and errors)."""
    start = html.index(f'id="action-{form}"')
    start = html.index(f'class="field field-{field}', start)
    return html[start : html.index("</div>", start)]


def actions_shown(html: str) -> set[str]:
    return set(re.findall(r'<details class="action action-([a-z_]+)', html))


def jpeg(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "JPEG")
    return buffer.getvalue()


class Ctx:
    """The personas and helpers a story needs, taken from the fixtures on demand."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def __getattr__(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


def pending_extension(ctx: Ctx) -> Case:
    """A case in progress whose unit asked for two more working days."""
    case = ctx.drive(Status.IN_PROGRESS)
    services.request_extension(
        case=case, actor=ctx.unit_handler, reason="需要采购配件", extra_amount=Decimal(2)
    )
    return Case.objects.get(pk=case.pk)


def pending_void(ctx: Ctx) -> Case:
    """A filed case the call-taker asked to void."""
    case = ctx.drive(Status.FILED)
    services.request_void(case=case, actor=ctx.call_taker, reason="重复登记")
    return Case.objects.get(pk=case.pk)
