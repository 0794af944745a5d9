"""The outbox: written with the change, for the subscriptions that want the event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import Integration, User
from civicgrid.accounts.services import create_integration, revoke_integration
from civicgrid.cases import services as cases
from civicgrid.cases.models import Case, Status
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.webhooks import outbox, services
from civicgrid.webhooks.models import Delivery, EventType, Subscription
from civicgrid.webhooks.tests.conftest import Receiver

URL = "http://127.0.0.1:9/hook"


def _webhook_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "webhooks_" in q["sql"]]


def test_each_event_of_a_case_is_queued_in_order_with_its_type(
    subscription: Subscription, drive: Callable[[str], Case]
) -> None:
    case = drive(Status.CLOSED)
    types = list(
        Delivery.objects.filter(case=case).order_by("id").values_list("event_type", flat=True)
    )
    assert types == [
        EventType.CREATED,
        EventType.ACCEPTED,
        EventType.DISPATCHED,
        EventType.ACKNOWLEDGED,
        EventType.HANDLED,
        EventType.CLOSED,  # the passed verification closed it
    ]
    closing = Delivery.objects.filter(case=case).order_by("id").last()
    assert closing is not None
    assert closing.snapshot["action"] == "verify_pass"
    assert closing.snapshot["case"]["status"] == Status.CLOSED


def test_a_rolled_back_change_leaves_no_event(
    subscription: Subscription, new_case: IntakeFactory, dispatcher: User, city_unit: HandlingUnit
) -> None:
    case = new_case()
    case = cases.accept_case(case=case, actor=case.created_by)  # type: ignore[arg-type]
    before = Delivery.objects.count()

    def dispatch_then_die() -> None:
        with transaction.atomic():
            cases.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
            assert Delivery.objects.count() == before + 1  # written inside the transaction
            raise RuntimeError("the request died before the commit")

    with pytest.raises(RuntimeError):
        dispatch_then_die()
    assert Delivery.objects.count() == before


def test_the_snapshot_holds_no_personal_data(
    subscription: Subscription, new_case: IntakeFactory
) -> None:
    case = new_case(description="张先生家门口有人占道，电话13912345678", requester_name="张先生")
    snap = Delivery.objects.get(case=case).snapshot
    text = str(snap)
    assert "13912345678" not in text
    assert "张先生" not in text
    assert "description" not in snap["case"]
    assert snap["case"]["number"] == case.number
    assert snap["case"]["lon"] == case.lon


def test_a_confidential_case_is_sent_without_its_place(
    subscription: Subscription, new_case: IntakeFactory
) -> None:
    case = new_case(is_confidential=True, address="七里河区某小区3号楼")
    snap = Delivery.objects.get(case=case).snapshot["case"]
    assert snap["address"] == ""
    assert snap["lon"] is None
    assert snap["lat"] is None


def test_a_subscription_gets_only_its_event_types_and_its_grid(
    partner: Integration, tree: Tree, new_case: IntakeFactory, call_taker: User
) -> None:
    only_closed = services.create_subscription(
        integration=partner, target_url=URL, event_types=[EventType.ACCEPTED]
    )
    west_only = services.create_subscription(integration=partner, target_url=URL, grid=tree.west)
    east = new_case()
    west = new_case(lon=WEST_POINT[0], lat=WEST_POINT[1])
    cases.accept_case(case=east, actor=call_taker)
    assert list(
        Delivery.objects.filter(subscription=only_closed).values_list("case", "event_type")
    ) == [(east.pk, EventType.ACCEPTED)]
    assert set(Delivery.objects.filter(subscription=west_only).values_list("case", flat=True)) == {
        west.pk
    }


def test_an_integration_limited_to_districts_hears_only_of_cases_located_in_them(
    tree: Tree, new_case: IntakeFactory
) -> None:
    elsewhere = create_integration(name="区平台", scopes=[], districts=[tree.district])
    sub = services.create_subscription(integration=elsewhere, target_url=URL)
    located = new_case()
    unlocated = new_case(lon=None, lat=None, address="地址待核实")
    assert set(Delivery.objects.filter(subscription=sub).values_list("case", flat=True)) == {
        located.pk
    }
    assert unlocated.grid_path == ""


def test_inactive_subscriptions_and_revoked_integrations_get_nothing(
    partner: Integration, new_case: IntakeFactory
) -> None:
    sub = services.create_subscription(integration=partner, target_url=URL)
    services.set_subscription_active(subscription=sub, active=False)
    new_case()
    assert not Delivery.objects.exists()
    services.set_subscription_active(subscription=sub, active=True)
    new_case()
    assert Delivery.objects.count() == 1
    revoke_integration(integration=partner)
    new_case()
    assert Delivery.objects.count() == 1


def test_without_subscriptions_a_transition_asks_nothing_of_webhooks(
    db: None,
    settings: Settings,
    new_case: IntakeFactory,
    call_taker: User,
) -> None:
    settings.CIVICGRID_WEBHOOKS_RECHECK_SECONDS = 60
    case = new_case()  # the first event looks, finds none and remembers it
    with CaptureQueriesContext(connection) as ctx:
        cases.accept_case(case=case, actor=call_taker)
        new_case(description="另一处占道经营")
    assert _webhook_queries(ctx) == []


def test_with_subscriptions_a_transition_adds_one_select_and_one_insert(
    partner: Integration, new_case: IntakeFactory, call_taker: User
) -> None:
    services.create_subscription(integration=partner, target_url=URL)
    services.create_subscription(integration=partner, target_url=URL + "2")
    case = new_case()
    with CaptureQueriesContext(connection) as ctx:
        cases.accept_case(case=case, actor=call_taker)
    sql = _webhook_queries(ctx)
    assert len(sql) == 2, sql
    assert sql[0].lstrip().upper().startswith("SELECT")
    assert sql[1].lstrip().upper().startswith("INSERT")
    assert Delivery.objects.filter(case=case).count() == 4  # 2 events x 2 subscriptions


def test_a_new_subscription_in_this_process_is_seen_at_once(
    settings: Settings, partner: Integration, new_case: IntakeFactory
) -> None:
    settings.CIVICGRID_WEBHOOKS_RECHECK_SECONDS = 60
    new_case()
    assert outbox.active_targets() == []
    services.create_subscription(integration=partner, target_url=URL)
    new_case(description="另一处")
    assert Delivery.objects.count() == 1


def test_the_overdue_sweep_queues_a_full_snapshot(
    subscription: Subscription, new_case: IntakeFactory, receiver: Receiver
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    case = new_case()
    cases.mark_overdue(now=timezone.now() + timedelta(days=30))
    overdue = Delivery.objects.get(case=case, event_type=EventType.OVERDUE)
    assert overdue.snapshot["case"]["number"] == case.number
    assert overdue.snapshot["case"]["is_overdue"] is True
