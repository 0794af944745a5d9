"""The read-replica router, against a second real database standing in for a replica.

The stand-in is a database of its own on the same server (a second SQLite file on
SQLite), migrated like the primary; it is not fed by replication, so a row written
to one of them only is how a test tells which one a query read.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from civicgrid.accounts.models import User
from civicgrid.core.routers import reads_from_replica, replicas, use_replica

ALIAS = "replica_test"
#: The replica's alias is added when the module starts, so the tests name all databases.
pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(scope="module")
def replica(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest, tmp_path_factory: Path
) -> Iterator[str]:
    """A migrated second database, known to the router as the only replica."""
    primary = connections[DEFAULT_DB_ALIAS]
    vendor = primary.vendor
    settings_dict = dict(primary.settings_dict)
    if vendor == "sqlite":
        name = str(tmp_path_factory.mktemp("replica") / "replica.sqlite3")  # type: ignore[attr-defined]
    else:
        name = f"{settings_dict['NAME']}_replica"[:63]
    settings_dict.update({"NAME": name, "TEST": {**settings_dict["TEST"], "NAME": name}})
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        if vendor == "postgresql":
            with primary.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
                cursor.execute(f'CREATE DATABASE "{name}"')
        connections.settings[ALIAS] = settings_dict
        # Build its schema (and the data migrations' rows) as replication would.
        with override_settings(DATABASE_ROUTERS=[]):
            call_command("migrate", database=ALIAS, verbosity=0, interactive=False)
        try:
            with override_settings(CIVICGRID_READ_REPLICAS=[ALIAS]):
                yield ALIAS
        finally:
            connections[ALIAS].close()
            del connections[ALIAS]
            del connections.settings[ALIAS]
            if vendor == "postgresql":
                with primary.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def only_on_replica(replica: str, transactional_db: None) -> Iterator[str]:
    username = "only-on-the-replica"
    User.objects.using(replica).create(username=username)
    yield username
    User.objects.using(replica).filter(username__startswith="only-").delete()


def test_nothing_reads_from_a_replica_unless_asked(only_on_replica: str) -> None:
    assert replicas()
    assert not User.objects.filter(username=only_on_replica).exists()


def test_reads_in_a_replica_block_go_to_the_replica(only_on_replica: str) -> None:
    with use_replica() as alias:
        assert alias == ALIAS
        assert User.objects.filter(username=only_on_replica).exists()
    assert not User.objects.filter(username=only_on_replica).exists()


def test_writes_in_a_replica_block_go_to_the_primary(replica: str, transactional_db: None) -> None:
    with use_replica():
        User.objects.create(username="only-written-here")
    assert User.objects.using(DEFAULT_DB_ALIAS).filter(username="only-written-here").exists()
    assert not User.objects.using(replica).filter(username="only-written-here").exists()


def test_a_transaction_on_the_primary_reads_the_primary(only_on_replica: str) -> None:
    """Code that has written in its transaction must read what it wrote."""
    with use_replica(), transaction.atomic():
        User.objects.create(username="only-in-this-transaction")
        assert User.objects.filter(username="only-in-this-transaction").exists()
        assert not User.objects.filter(username=only_on_replica).exists()


def test_a_decorated_view_reads_from_the_replica(only_on_replica: str) -> None:
    @reads_from_replica
    def view() -> bool:
        return User.objects.filter(username=only_on_replica).exists()

    assert view()


def test_no_replica_configured_means_the_primary(only_on_replica: str) -> None:
    with override_settings(CIVICGRID_READ_REPLICAS=[]), use_replica() as alias:
        assert alias == DEFAULT_DB_ALIAS
        assert not User.objects.filter(username=only_on_replica).exists()


def test_civicgrid_stats_reads_from_the_replica(replica: str, transactional_db: None) -> None:
    with (
        CaptureQueriesContext(connections[replica]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        call_command("stats", "--from", "2026-01-01", "--to", "2026-01-31", stdout=io.StringIO())
    assert len(on_replica) > 0
    assert [q["sql"] for q in on_primary] == []


def test_a_rebuild_reads_and_writes_the_primary(replica: str, transactional_db: None) -> None:
    with CaptureQueriesContext(connections[replica]) as on_replica:
        call_command(
            "stats",
            "rebuild",
            "--from",
            str(date(2026, 1, 1)),
            "--to",
            "2026-01-02",
            stdout=io.StringIO(),
        )
    assert [q["sql"] for q in on_replica] == []


def test_the_statistics_pages_read_from_the_replica(replica: str, transactional_db: None) -> None:
    """Sessions and the login come from the primary; the figures from the replica."""
    admin = User.objects.create_superuser(username="stats-admin", password="x")
    User.objects.using(replica).create(
        pk=admin.pk, username="stats-admin", is_superuser=True, is_staff=True
    )
    client = Client()
    client.force_login(admin)
    with (
        CaptureQueriesContext(connections[replica]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        client.get("/stats/data/?period=year")
    tables = " ".join(q["sql"] for q in on_replica)
    assert "grids_grid" in tables
    assert not any("grids_grid" in q["sql"] for q in on_primary)
