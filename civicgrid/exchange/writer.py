"""Writing the batches of a historical import: each in a transaction of its own.

``Batch.of`` makes a batch's rows ready to insert (on PostgreSQL their ``COPY`` text,
``stats.pgcopy``, and their statistics facts'); ``commit`` inserts them with the
facts and their rollups in one transaction. ``Writer`` commits the batches, on
PostgreSQL in a thread of its own with its own connection, one batch in flight and in
order, so that the database writes a batch while Python reads and simulates the next.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Model

from civicgrid.cases.models import Case, CaseEvent, Channel, Deadline
from civicgrid.demo.history import fact_of, instance_rows
from civicgrid.demo.history_engine import CaseSim
from civicgrid.stats import pgcopy, rollups
from civicgrid.stats.models import CaseFact, PersonFact

CHANNEL = Channel.HOTLINE
#: Told of each committed batch: the cases written, and how many were skipped because
#: another import took their external ids meanwhile.
Done = Callable[[list[CaseSim], int], None]


@dataclass
class Batch:
    """A batch's rows, ready to insert: on PostgreSQL their ``COPY`` text already made
    (so that a writer thread only sends it)."""

    sims: list[CaseSim]
    copies: list[pgcopy.Copy]
    facts: rollups.PreparedFacts

    @classmethod
    def of(cls, sims: list[CaseSim]) -> Batch:
        facts = rollups.prepare_bulk_intake([fact_of(s) for s in sims])
        if connection.vendor != "postgresql":
            return cls(sims, [], facts)
        copies = pgcopy.prepare_tables(
            [
                (Case, [s.case for s in sims]),
                (CaseEvent, [e for s in sims for e in s.events]),
                (Deadline, [d for s in sims for d in s.deadlines]),
            ]
        )
        return cls(sims, copies, facts)

    def insert(self) -> None:
        """The rows of the batch and their statistics, in the caller's transaction."""
        if self.copies:
            for copy in self.copies:
                pgcopy.send(copy)
        else:
            sims = self.sims
            rollups.insert_rows(Case, instance_rows([s.case for s in sims]))
            rollups.insert_rows(CaseEvent, instance_rows([e for s in sims for e in s.events]))
            rollups.insert_rows(Deadline, instance_rows([d for s in sims for d in s.deadlines]))
        rollups.record_prepared_intake(self.facts)


#: A historical import has the planner's statistics of the cases refreshed each time
#: it has imported this many cases, then twice as many, and so on (50,000, 100,000,
#: 200,000, …), and those of every table it wrote at the end (``Analyzer``).
ANALYZE_FIRST = 50_000


class Analyzer:
    """``ANALYZE`` as a large import grows the tables (PostgreSQL, outside a
    transaction). Without it the planner keeps the statistics of before the import
    until autovacuum comes by: in a database that had few 12345 cases it takes the
    partial (channel, external id) index for a handful of rows and, to find a batch's
    external ids, reads every case of the channel (280 ms a batch at 1,000,000
    imported, 40 ms through the index once analysed), and the first pages and
    statistics read after the import are planned as for the table it was."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = (
            enabled and connection.vendor == "postgresql" and not connection.in_atomic_block
        )
        self.next = ANALYZE_FIRST

    def grown(self, imported: int) -> None:
        """Told how many cases the import has written so far."""
        if self.enabled and imported >= self.next:
            self._analyze(Case)
            while self.next <= imported:
                self.next *= 2

    def finished(self, imported: int) -> None:
        if self.enabled and imported:
            self._analyze(Case, CaseEvent, Deadline, CaseFact, PersonFact)

    @staticmethod
    def _analyze(*models: type[Model]) -> None:
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def present_external_ids(external_ids: list[str]) -> set[str]:
    """Which of ``external_ids`` (none empty) a case of the import's channel has.

    The ``<> ''`` repeats the predicate of the unique index on (channel, external
    id), so that PostgreSQL may use it: it cannot prove the predicate from a list of
    more than 100 values, and without it read every case (a parallel scan: 120 ms a
    batch of 5,000 at 1,000,000 cases, against 38 ms through the index)."""
    return set(
        Case.objects.filter(channel=CHANNEL, external_id__in=external_ids)
        .exclude(external_id="")
        .order_by()
        .values_list("external_id", flat=True)
    )


def commit(batch: Batch) -> tuple[list[CaseSim], int]:
    """Insert a batch in a transaction of its own: the cases written and how many were
    skipped because another import took their external ids meanwhile."""
    try:
        with transaction.atomic():
            batch.insert()
        return batch.sims, 0
    except IntegrityError:
        present = present_external_ids([s.case.external_id for s in batch.sims])
        if not present:
            raise
        sims = [s for s in batch.sims if s.case.external_id not in present]
        if sims:
            with transaction.atomic():
                Batch.of(sims).insert()
        return sims, len(batch.sims) - len(sims)


class Writer:
    """Commits the batches, on PostgreSQL in a thread of its own (with its own
    connection), one batch at a time and in order, while the next batch is read and
    simulated: the database writes one batch while Python prepares the next. Inside a
    transaction (tests), or on SQLite, it commits in the caller's thread."""

    def __init__(self, *, threaded: bool, done: Done) -> None:
        self.threaded = (
            threaded and connection.vendor == "postgresql" and not connection.in_atomic_block
        )
        self.done = done
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future[tuple[list[CaseSim], int]] | None = None

    def __enter__(self) -> Writer:
        if self.threaded:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        return self

    def submit(self, batch: Batch) -> None:
        """Commit ``batch`` (after the one being written)."""
        self.wait()
        if self.pool is None:
            self.done(*commit(batch))
            return
        self.pending = self.pool.submit(commit, batch)

    def wait(self) -> None:
        """Wait for the batch being written (raising its error), and report it."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.done(*pending.result())

    def __exit__(self, *exc: object) -> None:
        if self.pool is None:
            return
        try:
            if self.pending is not None:  # an error while preparing: finish what was sent
                self.pending.exception()
        finally:
            self.pool.submit(connections.close_all).result()
            self.pool.shutdown()


__all__ = ["ANALYZE_FIRST", "Analyzer", "Batch", "Writer", "commit", "present_external_ids"]
