"""``CaseSim``'s instances: made without ``Model.__init__``, equal to what it makes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Model

from civicgrid.cases.models import Approval, Case, CaseEvent, Deadline
from civicgrid.demo.history_engine import _new

AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)

#: What the simulation gives each model (some fields, the rest left to their defaults).
VALUES: dict[type[Model], dict[str, Any]] = {
    Case: {"id": 7, "number": "202503040000007", "category_id": 3, "received_at": AT},
    CaseEvent: {"case_id": 7, "action": "accept", "at": AT, "payload": {"a": 1}},
    Deadline: {"case_id": 7, "stage": "accept", "started_at": AT, "due_at": AT},
    Approval: {"id": 2, "case_id": 7, "requested_at": AT, "extra_amount": Decimal("1.5")},
}


def _attributes(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.mark.parametrize("model", list(VALUES), ids=lambda m: m.__name__)
@pytest.mark.parametrize("given", ["some", "none"])
def test_new_makes_what_the_model_makes(model: type[Model], given: str) -> None:
    values = VALUES[model] if given == "some" else {}
    made, reference = _new(model, **values), model(**values)
    expected = _attributes(reference)
    found = _attributes(made)
    # Defaults made by a callable (now, dict) are made anew: compare them by type.
    for f in model._meta.concrete_fields:
        if f.has_default() and callable(f.default) and f.attname not in values:
            assert type(found.pop(f.attname)) is type(expected.pop(f.attname))
    assert found == expected
    assert (made._state.adding, made._state.db) == (True, None)
    assert made.pk == reference.pk


def test_a_default_made_by_a_callable_is_not_shared() -> None:
    first, second = _new(CaseEvent, case_id=1), _new(CaseEvent, case_id=2)
    assert first.payload == second.payload == {}
    assert first.payload is not second.payload


def test_new_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="unknown fields"):
        _new(Deadline, nonsense=1)
