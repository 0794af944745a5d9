"""Read replicas: dashboards, statistics and exports read from a replica when one is set.

A deployment names its replicas with ``DATABASE_REPLICA_URLS``; each becomes a
database alias (``replica1``, ``replica2`` …) listed in ``CIVICGRID_READ_REPLICAS``.
Nothing reads from a replica by default: a replica lags its primary by a moment, and
a page that has just written must read what it wrote. Code that can bear the lag —
the statistics pages, the big screen, exports, ``civicgrid stats`` — opts in with
``use_replica()`` (a context manager) or ``@reads_from_replica`` (a view decorator).
Inside a transaction on the primary everything stays on the primary, and writes
always go to the primary.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

P = ParamSpec("P")
R = TypeVar("R")

#: The replica alias chosen for the current block, or "" outside any.
_replica: ContextVar[str] = ContextVar("civicgrid_replica", default="")


def replicas() -> list[str]:
    return list(getattr(settings, "CIVICGRID_READ_REPLICAS", []))


@contextmanager
def use_replica() -> Iterator[str]:
    """Send the block's reads to one replica (chosen at random); yields its alias.

    Without replicas configured this does nothing and yields ``"default"``. One
    block keeps to one replica, so its reads see one consistent state.
    """
    current = _replica.get()
    if current:
        yield current
        return
    aliases = replicas()
    if not aliases:
        yield DEFAULT_DB_ALIAS
        return
    token = _replica.set(random.choice(aliases))
    try:
        yield _replica.get()
    finally:
        _replica.reset(token)


def reads_from_replica(view: Callable[P, R]) -> Callable[P, R]:
    """A view whose reads may come from a replica (figures a moment old are fine)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with use_replica():
            return view(*args, **kwargs)

    return wrapper


class ReplicaRouter:
    """Reads inside ``use_replica()`` go to its replica; all else to the primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        alias = _replica.get()
        if not alias or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            # Outside an opted-in block, or inside a transaction on the primary that
            # may have written what it is about to read: the primary.
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # The replicas hold the primary's rows: objects from any of them may relate.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # A replica gets its schema from the primary through replication.
        return db == DEFAULT_DB_ALIAS
