"""A search for two characters finds its cases through an index (PostgreSQL).

The trigram indexes of 0005 serve a search of three characters or more; a pattern of
two (``%滨河%``: common in Chinese, where a place or a thing is often two characters)
has no trigram, so PostgreSQL read every case: seconds at a million. Here, PostgreSQL
only and outside the model state like the trigram indexes:

- ``civicgrid_bigrams(description, address, title)``: the pairs of adjacent characters
  of each of the three texts, upper-cased as ``icontains`` compares them (about 15 µs a
  case: built from C-level string functions, not a row set);
- a GIN index on it, built ``CONCURRENTLY`` (so this migration is not atomic).

``cases.selectors.filter_cases`` adds ``civicgrid_bigrams(…) @> ARRAY['滨河']`` to a
two-character search: a necessary condition the index answers, the ``icontains`` of
the three fields still deciding.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

#: One expression (no FROM: PostgreSQL inlines it): every character doubled, the first
#: dropped, cut into pairs — "ABCD" → "AABBCCDD" → "ABBCCDD" → AB, BC, CD, D. A newline
#: between the texts keeps pairs from straddling two of them (a search is one line).
FUNCTION = r"""
CREATE OR REPLACE FUNCTION civicgrid_bigrams(a text, b text, c text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT string_to_array(
    regexp_replace(
      substr(regexp_replace(upper(a || E'\n' || b || E'\n' || c), '(.)', '\1\1', 'g'), 2),
      '(..)', E'\\1\x01', 'g'),
    E'\x01')
$$
"""


class PostgresOnlySQL(migrations.RunSQL):
    """``RunSQL`` on PostgreSQL only (a migration keeps its own copy: 0005's)."""

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


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("cases", "0005_case_list_indexes"),
    ]

    operations = [
        PostgresOnlySQL(FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS civicgrid_bigrams"),
        PostgresOnlySQL(
            'CREATE INDEX CONCURRENTLY "case_text_bigrams" ON "cases_case" '
            'USING gin (civicgrid_bigrams("description", "address", "title"))',
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "case_text_bigrams"',
        ),
    ]
