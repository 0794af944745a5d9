"""Writes of the Open311 endpoint: a service request taken in (now, or by the worker
for deferred intake) and a citizen's update on a case.

A request goes through the same intake as every channel (``cases.services.create_case``,
channel ``api``, acting as the integration's service account): location, idempotency,
routing. Its own record, ``Submission``, keeps what the case has no place for.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Integration
from civicgrid.cases.errors import CaseError, IntakeError
from civicgrid.cases.models import Action, Case, CaseEvent, Category, Channel
from civicgrid.cases.services import Intake, create_case
from civicgrid.cases.services.engine import record_event
from civicgrid.grids import locator
from civicgrid.grids.models import Grid
from civicgrid.open311.models import Submission, SubmissionState


@dataclass
class RequestData:
    """A POSTed service request, checked."""

    category: Category
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    address_id: str = ""
    #: Attribute code → value (a list for a multivaluelist), as checked.
    attributes: dict[str, Any] = field(default_factory=dict)
    #: The attributes as lines for people ("噪声来源：商铺经营").
    attribute_lines: list[str] = field(default_factory=list)
    email: str = ""
    device_id: str = ""
    account_id: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    media_url: str = ""
    #: The integration's own id for the request (``external_id`` or ``Idempotency-Key``).
    external_id: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["category"] = self.category.code
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestData:
        values = dict(data)
        category = Category.objects.filter(code=values.pop("category")).first()
        if category is None:
            raise IntakeError(_("服务已不存在"))
        return cls(category=category, **values)

    @property
    def requester_name(self) -> str:
        first, last = self.first_name.strip(), self.last_name.strip()
        if (first + last).isascii():
            return f"{first} {last}".strip()
        return f"{last}{first}"  # 姓在前

    @property
    def case_description(self) -> str:
        parts = [self.description.strip()] if self.description.strip() else []
        if self.attribute_lines:
            parts.append("\n".join(self.attribute_lines))
        return "\n\n".join(parts) or self.category.name


def _dedupe_key(data: RequestData, integration: Integration) -> str | None:
    """The integration's id for the request, else a digest of the device and the
    content: a retried POST finds what the first one made."""
    if data.external_id:
        return f"{integration.pk}:ext:{data.external_id}"
    if data.device_id:
        content = [
            data.device_id,
            data.category.code,
            repr(data.lat),
            repr(data.lon),
            data.address,
            data.address_id,
            data.description,
            json.dumps(data.attributes, sort_keys=True, ensure_ascii=False),
        ]
        digest = hashlib.sha256("\x1f".join(content).encode()).hexdigest()
        return f"{integration.pk}:dev:{digest}"
    return None


def _check_place(data: RequestData, jurisdiction: Grid) -> None:
    if data.lon is None or data.lat is None:
        return
    try:
        where = locator.locate(data.lon, data.lat)
    except ValueError as exc:
        raise IntakeError(str(exc)) from exc
    if not where.inside or where.path[0].id != jurisdiction.pk:
        raise IntakeError(
            _("位置 (%(lat)s, %(lon)s) 不在辖区“%(j)s”内")
            % {"lat": data.lat, "lon": data.lon, "j": jurisdiction.name}
        )


def _intake(data: RequestData, integration: Integration, dedupe: str | None) -> Intake:
    external_id = f"o311:{integration.pk}:{data.external_id}" if data.external_id else ""
    return Intake(
        channel=Channel.API,
        category=data.category,
        description=data.case_description,
        title=data.category.name,
        address=data.address,
        lon=data.lon,
        lat=data.lat,
        requester_name=data.requester_name[:50],
        requester_phone=data.phone[:30],
        external_id=external_id[:64],
        idempotency_key=f"open311:{dedupe}" if dedupe and not external_id else None,
    )


def _record(
    data: RequestData, integration: Integration, jurisdiction: Grid, dedupe: str | None
) -> Submission:
    return Submission(
        integration=integration,
        jurisdiction=jurisdiction,
        token=secrets.token_urlsafe(18),
        dedupe_key=dedupe,
        service_code=data.category.code,
        attributes=data.attributes,
        address_id=data.address_id,
        media_url=data.media_url,
        email=data.email,
        device_id=data.device_id,
        account_id=data.account_id,
    )


def submit_request(
    *, data: RequestData, integration: Integration, jurisdiction: Grid
) -> tuple[Submission, bool]:
    """Take in a POSTed service request. Returns its record and whether it is new.

    With the integration's deferred intake the record waits (with a token) for the
    worker to make the case; else the case is made now. A point outside the
    jurisdiction is refused with ``IntakeError`` either way.
    """
    _check_place(data, jurisdiction)
    dedupe = _dedupe_key(data, integration)
    if dedupe:
        found = Submission.objects.filter(dedupe_key=dedupe).first()
        if found is not None:
            return found, False
    record = _record(data, integration, jurisdiction, dedupe)
    try:
        with transaction.atomic():
            if integration.deferred_intake:
                record.pending_data = data.to_json()
                record.save()
                transaction.on_commit(lambda: _enqueue(record.pk))
                return record, True
            case, created = create_case(
                data=_intake(data, integration, dedupe), actor=integration.acting_user
            )
            if not created:
                found = Submission.objects.filter(case=case).first()
                if found is not None:
                    return found, False
            record.case = case
            record.state = SubmissionState.TAKEN
            record.taken_at = timezone.now()
            record.save()
    except IntegrityError:
        # The same request twice at once: the other one won.
        found = Submission.objects.filter(dedupe_key=dedupe).first() if dedupe else None
        if found is None:
            raise
        return found, False
    return record, True


def _enqueue(submission_id: int) -> None:
    from civicgrid.open311.tasks import take_in_submission

    take_in_submission.enqueue(submission_id)


def take_in(*, submission_id: int) -> Submission | None:
    """The worker's half of deferred intake: make the case of a waiting submission,
    or record why it was refused. Safe to run twice: only a waiting one is taken."""
    with transaction.atomic():
        record = (
            Submission.objects.select_for_update(of=("self",))
            .select_related("integration")
            .filter(pk=submission_id, state=SubmissionState.PENDING)
            .first()
        )
        if record is None or record.integration is None:
            return None
        try:
            data = RequestData.from_json(record.pending_data)
            _check_place(data, record.jurisdiction)
            with transaction.atomic():
                case, _created = create_case(
                    data=_intake(data, record.integration, record.dedupe_key),
                    actor=record.integration.acting_user,
                )
        except CaseError as exc:
            record.state = SubmissionState.REFUSED
            record.error = exc.message
        else:
            record.case = case
            record.state = SubmissionState.TAKEN
            record.taken_at = timezone.now()
        record.pending_data = {}
        record.save(update_fields=["case", "state", "error", "taken_at", "pending_data"])
    return record


# -- citizens' updates (mySociety servicerequestupdates) ------------------------------------
@dataclass
class UpdateData:
    update_id: str
    status: str
    description: str
    updated_at: datetime
    media_url: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""


def add_citizen_update(
    *, case: Case, integration: Integration, data: UpdateData
) -> tuple[CaseEvent, bool]:
    """A citizen's update, relayed by an integration, as a public note on the case.

    It changes no status (staff decide on a reopen); the status the citizen gave is
    kept in the event. The same ``update_id`` from the same integration is taken once.
    """
    with transaction.atomic():
        # Serialise updates of one case: the id check below must see the other's note.
        list(Case.objects.select_for_update().filter(pk=case.pk).values_list("pk"))
        found = CaseEvent.objects.filter(
            case=case,
            action=Action.NOTE,
            payload__integration=integration.pk,
            payload__update_id=data.update_id,
        ).first()
        if found is not None:
            return found, False
        citizen = " ".join(p for p in (data.first_name, data.last_name) if p)
        event = record_event(
            case,
            action=Action.NOTE,
            actor=integration.acting_user,
            role="",
            reason=data.description.strip(),
            public=True,
            payload={
                "source": "open311",
                "integration": integration.pk,
                "update_id": data.update_id,
                "status": data.status,
                "updated_datetime": data.updated_at.isoformat(),
                "media_url": data.media_url or None,
                "citizen": citizen,
                "email": data.email,
            },
        )
    return event, True
