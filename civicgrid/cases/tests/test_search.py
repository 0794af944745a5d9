"""The case search (``selectors.filter_cases``, ``q``): a case number or external id
exactly, or part of the description, the address or the title, whatever the case of
Latin letters. On PostgreSQL a search of two characters goes through the bigram index
of migration 0006 (no trigram in two characters) and must find exactly what
``icontains`` finds."""

from __future__ import annotations

import pytest
from django.db import connection

from civicgrid.cases.models import Case
from civicgrid.cases.selectors import CaseFilters, filter_cases
from civicgrid.cases.tests.fixtures import IntakeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def texts(new_case: IntakeFactory) -> dict[str, Case]:
    return {
        "description": new_case(description="滨河路井盖缺失"),
        "address": new_case(description="路灯不亮", address="硷沟沿家属院3号楼"),
        "title": new_case(description="噪音扰民", title="KTV夜间噪音"),
        "latin": new_case(description="ab路段积水", address=""),
        "straddle": new_case(description="路面破损甲", address="乙号楼"),
    }


def search(text: str) -> set[int]:
    return set(filter_cases(Case.objects.all(), CaseFilters(q=text)).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("滨河", {"description"}),
        ("井盖", {"description"}),
        ("硷沟", {"address"}),
        ("号楼", {"address", "straddle"}),
        ("KT", {"title"}),
        ("kt", {"title"}),  # icontains: any case
        ("AB", {"latin"}),
        ("噪音", {"title"}),  # in the title and the description of the same case
        ("甲乙", set()),  # not across two texts
        ("滨河路井盖", {"description"}),  # longer: the trigram indexes on PostgreSQL
        ("无关", set()),
    ],
)
def test_a_search_finds_the_text_in_any_of_the_three_fields(
    texts: dict[str, Case], text: str, expected: set[str]
) -> None:
    assert search(text) == {texts[name].pk for name in expected}


def test_a_case_number_is_found_exactly(texts: dict[str, Case]) -> None:
    case = texts["address"]
    assert search(case.number) == {case.pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index")
def test_two_characters_are_looked_up_in_the_bigram_index(texts: dict[str, Case]) -> None:
    query = filter_cases(Case.objects.all(), CaseFilters(q="硷沟")).values("pk")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # Tiny tables: make the planner take an index that can answer the condition
        # (a walk of received_at filtering every case would not show the bigrams).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "case_text_bigrams" in plan, plan
