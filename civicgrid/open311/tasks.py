"""Background work of the Open311 endpoint, run by ``civicgrid worker``."""

from __future__ import annotations

from django_tasks import task

from civicgrid.open311 import services


@task()
def take_in_submission(submission_id: int) -> str:
    """Make the case of a request an integration with deferred intake submitted."""
    record = services.take_in(submission_id=submission_id)
    return record.state if record else "skipped"
