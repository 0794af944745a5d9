"""Indexes for the case lists and their search at a million cases (docs/performance.md).

- ``case_urgent_order``: "most urgent, first due first" (``selectors.URGENT``), the
  expressions of ``models.case.urgency_rank()`` and ``due_key()``, so a page is a walk
  along the index instead of a sort of every matching case;
- ``case_external_id``: the search matches an external id exactly (the unique
  constraint's index starts with the channel);
- PostgreSQL only, outside the model state: ``pg_trgm`` and a trigram GIN index on
  ``UPPER(…)`` of the description, the address and the title, the expressions of
  Django's ``icontains`` there (``UPPER(col::text) LIKE UPPER('%…%')``), so that a
  search for a rare term reads its matches rather than the whole table.

On PostgreSQL every index is built ``CONCURRENTLY`` (writes go on meanwhile), so the
migration is not atomic; a build that fails leaves an invalid index behind, which
``DROP INDEX`` removes before migrating again.
"""

from __future__ import annotations

import datetime
from typing import Any

import django.db.models.functions.comparison
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL and normally elsewhere."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


class PostgresOnlySQL(migrations.RunSQL):
    """``RunSQL`` on PostgreSQL only; elsewhere nothing (SQLite has neither GIN nor
    ``pg_trgm``). Nothing in the model state either: an index there would be made
    again whenever SQLite rebuilds the table."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def trigram_index(column: str) -> PostgresOnlySQL:
    """A trigram GIN index on ``UPPER(column)``: the expression ``icontains`` compares,
    so ``UPPER(col::text) LIKE UPPER('%…%')`` can use it."""
    name = f"case_{column}_trgm"
    return PostgresOnlySQL(
        f'CREATE INDEX CONCURRENTLY "{name}" ON "cases_case" '
        f'USING gin (UPPER("{column}") gin_trgm_ops)',
        reverse_sql=f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"',
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("cases", "0004_load_categories"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="case",
            index=models.Index(
                models.Case(
                    models.When(then=models.Value(0), urgency="emergency"),
                    models.When(then=models.Value(1), urgency="urgent"),
                    default=models.Value(2),
                    output_field=models.IntegerField(),
                ),
                django.db.models.functions.comparison.Coalesce(
                    "due_at",
                    models.Value(
                        datetime.datetime(3000, 1, 1, 0, 0, tzinfo=datetime.UTC),
                        output_field=models.DateTimeField(),
                    ),
                ),
                models.F("received_at"),
                models.F("id"),
                name="case_urgent_order",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="case",
            index=models.Index(
                condition=models.Q(("external_id", ""), _negated=True),
                fields=["external_id"],
                name="case_external_id",
            ),
        ),
        TrigramExtension(),
        trigram_index("description"),
        trigram_index("address"),
        trigram_index("title"),
    ]
