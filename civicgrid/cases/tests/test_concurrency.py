from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.errors import CaseConflict
from civicgrid.cases.models import Action, Case, Status
from civicgrid.grids.models import HandlingUnit


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_dispatchers_at_once_exactly_one_wins(
    drive: Callable[[str], Case],
    dispatcher: User,
    supervisor: User,
    city_unit: HandlingUnit,
    west_unit: HandlingUnit,
) -> None:
    """Two people act on the same case at the same moment, each from their own
    connection: one dispatch lands, the other gets a clear conflict."""
    case = drive(Status.FILED)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def act(name: str, actor: User, unit: HandlingUnit) -> None:
        try:
            mine = Case.objects.get(pk=case.pk)  # each reads the case, as a page would
            barrier.wait(timeout=10)
            services.dispatch_case(case=mine, actor=actor, unit=unit)
            outcomes[name] = "won"
        except CaseConflict as exc:
            outcomes[name] = exc
        except BaseException as exc:  # surfaced by the assertions below
            outcomes[name] = repr(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=("a", dispatcher, city_unit)),
        threading.Thread(target=act, args=("b", supervisor, west_unit)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    winners = [k for k, v in outcomes.items() if v == "won"]
    losers = [v for v in outcomes.values() if isinstance(v, CaseConflict)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert "刚被他人处理" in losers[0].message
    case.refresh_from_db()
    assert case.status == Status.DISPATCHED
    assert case.lead_unit == (city_unit if winners == ["a"] else west_unit)
    assert case.events.filter(action=Action.DISPATCH).count() == 1
    assert case.deadlines.filter(stage="acknowledge").count() == 1
