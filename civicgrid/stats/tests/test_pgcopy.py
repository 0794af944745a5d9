"""``pgcopy``: rows written through ``COPY`` text are the rows the ORM would write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, models

from civicgrid.cases.models import Action, Case, CaseEvent, Category, Channel, Deadline, Status
from civicgrid.stats import pgcopy

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="COPY is PostgreSQL's (SQLite: executemany)"
)
TZ = ZoneInfo("Asia/Shanghai")
#: Every character the COPY text format escapes, and things that look like its escapes.
AWKWARD = "tab\there, new\nline, return\r, back\\slash, \\N, \\t, 中文「引号」\"'"
UNIQUE = ("id", "number", "tracking_code", "external_id")


def a_case(category: Category, n: int, **values: Any) -> Case:
    fields: dict[str, Any] = {
        "number": f"2025030300000{n}",
        "tracking_code": f"COPYTEST{n}",
        "external_id": f"GD-{n}",
        "channel": Channel.HOTLINE,
        "category": category,
        "status": Status.CLOSED,
        "title": AWKWARD[:200],
        "description": AWKWARD,
        "address": "",
        "lon": 103.83417892345678,
        "lat": 36.06123456789012,
        "requester_phone": "138****5678",
        "satisfaction": 4,
        "is_overdue": True,
        "received_at": datetime(2025, 3, 3, 9, 0, 0, 123456, tzinfo=TZ),
        "closed_at": datetime(2025, 3, 4, 8, 0, tzinfo=UTC),
        "created_at": datetime(2025, 3, 3, 9, 0, tzinfo=TZ),
        "updated_at": datetime(2025, 3, 4, 16, 1, tzinfo=TZ),
    }
    fields.update(values)
    return Case(**fields)


def rows(queryset: models.QuerySet[Any], *leave_out: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k not in leave_out}
        for row in queryset.order_by("pk").values()
    ]


def test_copied_cases_events_and_deadlines_read_back_as_the_orms(category: Category) -> None:
    copied, created = a_case(category, 1, id=900001), a_case(category, 2, id=900002)
    pgcopy.send(pgcopy.prepare_objects(Case, [copied]))
    Case.objects.bulk_create([created])
    # bulk_create stamps the auto_now(_add) fields; the import keeps the times given.
    Case.objects.filter(pk=created.pk).update(
        created_at=copied.created_at, updated_at=copied.updated_at
    )
    by_copy, by_orm = (
        rows(Case.objects.filter(pk=copied.pk), *UNIQUE),
        rows(Case.objects.filter(pk=created.pk), *UNIQUE),
    )
    assert by_copy == by_orm
    assert by_copy[0]["description"] == AWKWARD

    def events(case: Case) -> list[CaseEvent]:
        return [
            CaseEvent(
                case_id=case.pk,
                action=Action.OVERDUE,
                at=datetime(2025, 3, 3, 12, 1, tzinfo=TZ),
                reason=AWKWARD,
                payload={"stage": "accept", "due_at": "2025-03-03T04:00:00+00:00", "x": AWKWARD},
            ),
            CaseEvent(
                case_id=case.pk,
                action=Action.DISPATCH,
                actor_role="dispatcher",
                at=datetime(2025, 3, 3, 12, 2, tzinfo=UTC),
                from_status=Status.FILED,
                to_status=Status.DISPATCHED,
                is_public=True,
                payload={"lead_unit": 3, "assisting_units": [], "followed_suggestion": False,
                         "suggested_unit": None, "share": 2.5},
            ),
        ]  # fmt: skip

    pgcopy.send(pgcopy.prepare_objects(CaseEvent, events(copied)))
    CaseEvent.objects.bulk_create(events(created))
    assert rows(CaseEvent.objects.filter(case=copied), "id", "case_id") == rows(
        CaseEvent.objects.filter(case=created), "id", "case_id"
    )

    def deadlines(case: Case) -> list[Deadline]:
        return [
            Deadline(
                case_id=case.pk,
                stage="accept",
                started_at=datetime(2025, 3, 3, 9, tzinfo=TZ),
                due_at=datetime(2025, 3, 3, 12, tzinfo=TZ),
                finished_at=None,
                overdue_at=datetime(2025, 3, 3, 12, 1, tzinfo=TZ),
                amount=Decimal("2.50"),
                unit="work_hours",
            )
        ]

    pgcopy.send(pgcopy.prepare_objects(Deadline, deadlines(copied)))
    Deadline.objects.bulk_create(deadlines(created))
    copied_deadlines = rows(Deadline.objects.filter(case=copied), "id", "case_id")
    assert copied_deadlines == rows(Deadline.objects.filter(case=created), "id", "case_id")
    assert copied_deadlines[0]["amount"] == Decimal("2.50")


def test_a_field_without_a_formatter_is_refused() -> None:
    with pytest.raises(TypeError):
        pgcopy.formatter(models.UUIDField())
