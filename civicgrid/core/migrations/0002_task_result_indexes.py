"""Indexes on django-tasks-db's task table for the reaper and the clean-up.

The table belongs to django-tasks-db, so the indexes are plain SQL (no model state).
On PostgreSQL they are built CONCURRENTLY: the table may already be large (it was
never cleaned up before) and is written by every worker.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

TABLE = "django_tasks_database_dbtaskresult"
INDEXES = {
    # The few running tasks, by claim time (core.reaper); partial: tiny.
    "core_task_running": f"{TABLE} (started_at) WHERE status = 'RUNNING'",
    # Finished results by age (core.retention).
    "core_task_finished": f"{TABLE} (status, finished_at)",
}


def create(apps: Any, schema_editor: Any) -> None:
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name, spec in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {name} ON {spec}")


def drop(apps: Any, schema_editor: Any) -> None:
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
