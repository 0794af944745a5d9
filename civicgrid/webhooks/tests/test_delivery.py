"""Delivery to a real HTTP receiver: signatures, retries, order, crashes, the log."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from civicgrid.accounts.models import User
from civicgrid.cases import services as cases
from civicgrid.cases.models import Case
from civicgrid.cases.tests.fixtures import IntakeFactory
from civicgrid.grids.models import HandlingUnit
from civicgrid.webhooks import delivery
from civicgrid.webhooks.models import Attempt, Delivery, DeliveryStatus, Subscription
from civicgrid.webhooks.tests.conftest import Receiver, documented_verifier


def _walk(case: Case, call_taker: User, dispatcher: User, unit: HandlingUnit) -> Case:
    case = cases.accept_case(case=case, actor=call_taker)
    return cases.dispatch_case(case=case, actor=dispatcher, unit=unit)


def _event_ids(case: Case, subscription: Subscription) -> list[str]:
    """The case's event ids for the subscription, in the order they happened."""
    return list(
        Delivery.objects.filter(case=case, subscription=subscription)
        .order_by("id")
        .values_list("event_id", flat=True)
    )


def test_the_documented_recipe_accepts_the_signature_and_refuses_forgeries(
    subscription: Subscription, receiver: Receiver, new_case: IntakeFactory
) -> None:
    verify = documented_verifier()
    case = new_case()
    delivery.deliver_due()
    [got] = receiver.requests
    assert verify(subscription.secret, got.headers, got.body)
    assert not verify("whsec_not-the-secret", got.headers, got.body)
    assert not verify(subscription.secret, got.headers, got.body.replace(b"created", b"closed"))
    stale = {
        **got.headers,
        "X-Civicgrid-Timestamp": str(int(got.headers["X-Civicgrid-Timestamp"]) - 3600),
    }
    assert not verify(subscription.secret, stale, got.body)

    body = got.json
    assert body["id"] == got.event_id == Delivery.objects.get(case=case).event_id
    assert body["type"] == got.headers["X-Civicgrid-Event"] == "case.created"
    assert body["case"]["number"] == case.number
    assert body["case"]["status"] == "new"
    assert body["case"]["category"]["code"] == case.category.code
    assert body["case"]["grid"]["code"] == case.grid.code  # type: ignore[union-attr]
    assert body["occurred_at"].endswith("+08:00")
    assert "13912345678" not in got.body.decode()
    assert "张先生" not in got.body.decode()
    assert got.headers["Content-Type"].startswith("application/json")


def test_a_delivered_event_is_never_sent_again(
    subscription: Subscription, receiver: Receiver, new_case: IntakeFactory
) -> None:
    new_case()
    assert delivery.deliver_due() == {"delivered": 1, "failed": 0}
    assert delivery.deliver_due() == {"delivered": 0, "failed": 0}
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert Attempt.objects.count() == 1


@pytest.mark.parametrize("answer", [500, 404, 302])
def test_an_answer_other_than_2xx_is_retried_later_and_logged(
    subscription: Subscription, receiver: Receiver, new_case: IntakeFactory, answer: int
) -> None:
    receiver.status = answer
    new_case()
    before = timezone.now()
    delivery.deliver_due()
    row = Delivery.objects.get()
    assert row.status == DeliveryStatus.PENDING
    assert row.attempts == 1
    assert timedelta(seconds=23) < row.next_attempt_at - before < timedelta(seconds=37)
    [attempt] = Attempt.objects.all()
    assert attempt.status_code == answer
    assert not attempt.ok
    assert attempt.response_excerpt == "receiver is down"
    assert f"HTTP {answer}" in row.last_error
    assert delivery.deliver_due() == {"delivered": 0, "failed": 0}  # not due yet


def test_an_unreachable_receiver_is_logged_as_an_error(
    subscription: Subscription, new_case: IntakeFactory
) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(target_url="http://127.0.0.1:9/x")
    new_case()
    delivery.deliver_due()
    attempt = Attempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error  # connection refused
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def test_a_later_event_of_a_case_waits_for_the_earlier_one(
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    city_unit: HandlingUnit,
) -> None:
    receiver.status = 503
    first = _walk(new_case(), call_taker, dispatcher, city_unit)
    second = new_case(description="另一处占道")
    delivery.deliver_due()
    # One attempt per case: the head of each line; first's accept and dispatch wait.
    assert sorted(r.event_id for r in receiver.requests) == sorted(
        [_event_ids(first, subscription)[0], _event_ids(second, subscription)[0]]
    )
    receiver.status = 200
    Delivery.objects.update(next_attempt_at=timezone.now())
    delivery.deliver_due()
    assert [r.event_id for r in receiver.accepted if r.json["case"]["number"] == first.number] == (
        _event_ids(first, subscription)
    )


def test_a_receiver_down_for_an_hour_gets_everything_afterwards_in_order(
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    city_unit: HandlingUnit,
) -> None:
    verify = documented_verifier()
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as traveller:
        receiver.status = 503
        made = [
            _walk(new_case(description=f"占道 {i}"), call_taker, dispatcher, city_unit)
            for i in range(3)
        ]
        delivery.deliver_due()
        back_up = start + timedelta(hours=1)
        for _step in range(100):
            pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
            if not pending.exists():
                break
            waiting = pending.filter(next_attempt_at__gt=timezone.now())
            if waiting.exists():  # to the next retry of the schedule
                soonest: datetime = min(d.next_attempt_at for d in waiting)
                traveller.move_to(soonest + timedelta(seconds=1))
            if timezone.now() >= back_up:
                receiver.status = 200
            delivery.deliver_due()
        assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()

    accepted = receiver.accepted
    assert len(accepted) == 9  # three cases, three events each, each once
    assert len({r.event_id for r in accepted}) == 9
    for case in made:
        got = [r.event_id for r in accepted if r.json["case"]["number"] == case.number]
        assert got == _event_ids(case, subscription)
    for r in accepted:
        assert verify(subscription.secret, r.headers, r.body, tolerance=10**9)
        assert int(r.headers["X-Civicgrid-Timestamp"]) >= back_up.timestamp()
    # The waits of the first event grew: 30 s, 1 min, 2 min … each within the jitter.
    head = Delivery.objects.filter(case=made[0]).order_by("id").first()
    assert head is not None
    times = list(head.log.order_by("id").values_list("at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 7
    for n, gap in enumerate(gaps[:7]):
        base = 30 * 2**n
        assert base * 0.8 <= gap <= base * 1.2 + 2, (n, gaps)


def test_a_change_that_committed_is_delivered_by_a_worker_started_later(
    transactional_db: None,
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    call_taker: User,
    dispatcher: User,
    city_unit: HandlingUnit,
) -> None:
    # The transitions commit; no worker runs (the process died right after the commit).
    case = _walk(new_case(), call_taker, dispatcher, city_unit)
    assert receiver.requests == []
    # "Restart": a new worker finds the outbox and sends everything, in order.
    delivery.deliver_due(worker="after-restart")
    assert [r.event_id for r in receiver.accepted] == _event_ids(case, subscription)
    assert [r.json["type"] for r in receiver.accepted] == [
        "case.created",
        "case.accepted",
        "case.dispatched",
    ]


def test_a_worker_that_died_holding_a_delivery_lets_another_send_it_after_the_lease(
    transactional_db: None,
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
) -> None:
    new_case()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        [held] = delivery.claim(worker="dies-now")  # ... and the worker is killed
        assert delivery.deliver_due(worker="survivor") == {"delivered": 0, "failed": 0}
        traveller.shift(delivery.lease() + timedelta(seconds=1))
        assert delivery.deliver_due(worker="survivor") == {"delivered": 1, "failed": 0}
    assert [r.event_id for r in receiver.accepted] == [held.event_id]


def test_a_worker_that_died_after_posting_sends_again_with_the_same_event_id(
    transactional_db: None,
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new_case()

    def killed(**kwargs: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM between the POST and its record

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with monkeypatch.context() as patch:
            patch.setattr(Attempt.objects, "create", killed)
            with pytest.raises(KeyboardInterrupt):
                delivery.deliver_due(worker="killed")
        assert Delivery.objects.get().status == DeliveryStatus.PENDING
        traveller.shift(delivery.lease() + timedelta(seconds=1))
        delivery.deliver_due(worker="restarted")
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    ids = [r.event_id for r in receiver.accepted]
    assert len(ids) == 2
    assert ids[0] == ids[1]


def test_after_24_hours_of_failure_a_delivery_is_marked_failed_and_holds_its_case_back(
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    call_taker: User,
) -> None:
    receiver.status = 500
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        case = cases.accept_case(case=new_case(), actor=call_taker)
        for _step in range(40):
            row = Delivery.objects.filter(case=case).order_by("id").first()
            assert row is not None
            if row.status != DeliveryStatus.PENDING:
                break
            traveller.move_to(max(row.next_attempt_at, timezone.now()) + timedelta(seconds=1))
            delivery.deliver_due()
        head, later = Delivery.objects.filter(case=case).order_by("id")
        assert head.status == DeliveryStatus.FAILED
        assert timezone.now() - start >= timedelta(hours=24)
        assert 10 <= head.attempts <= 20
        assert later.status == DeliveryStatus.PENDING
        assert later.attempts == 0
        assert {r.event_id for r in receiver.requests} == {head.event_id}


def test_retry_delays_double_up_to_a_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [delivery.retry_delay(n, rng=rng).total_seconds() for n in range(1, 15)]
    assert 24 <= delays[0] <= 36
    assert all(d <= 4 * 3600 * 1.2 for d in delays)
    assert delays[-1] >= 4 * 3600 * 0.8
    assert len({round(d) for d in delays[-4:]}) == 4  # jitter: not all the same


def test_the_admin_lists_the_log_and_retries_replays_and_cancels(
    subscription: Subscription,
    receiver: Receiver,
    new_case: IntakeFactory,
    call_taker: User,
    superuser: User,
    client: Client,
) -> None:
    receiver.status = 500
    case = cases.accept_case(case=new_case(), actor=call_taker)
    delivery.deliver_due()
    head, later = Delivery.objects.filter(case=case).order_by("id")
    Delivery.objects.filter(pk=head.pk).update(status=DeliveryStatus.FAILED)
    client.force_login(superuser)
    changelist = "/admin/webhooks/delivery/"
    assert client.get(changelist).status_code == 200
    page = client.get(f"{changelist}{head.pk}/change/")
    assert page.status_code == 200
    assert "receiver is down" in page.content.decode()

    receiver.status = 200
    client.post(changelist, {"action": "retry", "_selected_action": [head.pk]})
    head.refresh_from_db()
    assert head.status == DeliveryStatus.PENDING
    delivery.deliver_due()
    assert [r.event_id for r in receiver.accepted] == [head.event_id, later.event_id]

    client.post(changelist, {"action": "replay", "_selected_action": [head.pk]})
    delivery.deliver_due()
    replayed = receiver.accepted[-1]
    assert replayed.event_id == head.event_id
    assert replayed.body == receiver.accepted[0].body

    # Cancelling a stuck head lets the rest of its case go.
    receiver.status = 500
    case2 = cases.accept_case(case=new_case(description="另一处"), actor=call_taker)
    delivery.deliver_due()
    stuck = Delivery.objects.filter(case=case2).order_by("id").first()
    assert stuck is not None
    receiver.status = 200
    client.post(changelist, {"action": "cancel", "_selected_action": [stuck.pk]})
    delivery.deliver_due()
    assert receiver.accepted[-1].json["type"] == "case.accepted"
    assert receiver.accepted[-1].json["case"]["number"] == case2.number

    assert client.get("/admin/webhooks/subscription/").status_code == 200
    assert client.get(f"/admin/webhooks/subscription/{subscription.pk}/change/").status_code == 200
