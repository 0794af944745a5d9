"""What a citizen does on the public portal, without an account.

A citizen reports a problem (channel ``web``, with photos), follows it with the
tracking code and the phone number given at intake, and rates the result once
after closure. The phone number is the only proof of who reported: every
function here takes it and compares it with the case's, and a wrong code and a
wrong number give the same answer.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from civicgrid.cases.attachments import ProcessedImage, Upload
from civicgrid.cases.errors import AttachmentError, CaseError, CaseForbidden, IntakeError
from civicgrid.cases.models import Action, Case, CaseEvent, Channel, Status
from civicgrid.cases.services.attachments import attach_citizen_photos
from civicgrid.cases.services.engine import move, reload
from civicgrid.cases.services.intake import TRACKING_ALPHABET, Intake, create_case

#: The most a citizen's comment on a rating may say.
COMMENT_MAX_LENGTH = 500
#: The payload mark of a rating the citizen gave on the portal.
CITIZEN = "citizen"

_NOT_DIGITS = re.compile(r"\D")
_CODE_NOISE = re.compile(r"[\s\-_]")


def normalize_phone(phone: str) -> str:
    """Digits only, without China's country code: ``+86 139-1234-5678`` → ``13912345678``."""
    digits = _NOT_DIGITS.sub("", phone or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits


def normalize_tracking_code(code: str) -> str:
    """As typed, ignoring case, spaces and dashes: ``ab2c-d3ef 45`` → ``AB2CD3EF45``."""
    return _CODE_NOISE.sub("", code or "").upper()


def is_tracking_code(code: str) -> bool:
    """Whether ``code`` (normalised) can be a tracking code at all."""
    return len(code) == 10 and all(ch in TRACKING_ALPHABET for ch in code)


def phone_matches(case: Case, phone: str) -> bool:
    """Whether ``phone`` is the number the case's requester gave (formatting aside)."""
    stored = normalize_phone(case.requester_phone)
    given = normalize_phone(phone)
    return bool(stored) and hmac.compare_digest(stored.encode(), given.encode())


def find_case_for_citizen(*, tracking_code: str, phone: str) -> Case | None:
    """The case with this tracking code reported with this phone number, else ``None``:
    one answer for a wrong code and a wrong number."""
    code = normalize_tracking_code(tracking_code)
    if not is_tracking_code(code):
        return None
    case = Case.objects.select_related("category__parent").filter(tracking_code=code).first()
    if case is None or not phone_matches(case, phone):
        return None
    return case


def report_by_citizen(
    *, data: Intake, photos: Sequence[Upload | ProcessedImage] = ()
) -> tuple[Case, bool]:
    """随手拍: take in a citizen's report from the portal with its photos, all or nothing.

    The channel is ``web`` and there is no actor. A phone number is required (it
    is how the citizen follows the case). Returns the case and whether it is new:
    the same ``idempotency_key`` (a form sent twice) returns the first case and
    stores no photos again.
    """
    data.channel = Channel.WEB
    if not normalize_phone(data.requester_phone):
        raise IntakeError(_("请填写联系电话，用于查询办理进度和回访"))
    limit: int = settings.CIVICGRID_PORTAL_MAX_PHOTOS
    if len(photos) > limit:
        raise AttachmentError(
            _("一次最多上传 %(max)s 张照片，您选择了 %(n)s 张") % {"max": limit, "n": len(photos)}
        )
    with transaction.atomic():
        case, created = create_case(data=data, actor=None)
        if created and photos:
            attach_citizen_photos(case=case, uploads=photos)
    return case, created


def citizen_rating(case: Case) -> CaseEvent | None:
    """The rating the citizen gave on the portal since the case was last closed."""
    events = case.events.filter(
        action=Action.FOLLOW_UP, actor__isnull=True, payload__source=CITIZEN
    )
    if case.closed_at is not None:
        events = events.filter(at__gte=case.closed_at)
    return events.order_by("-at", "-id").first()


def rate_case_by_citizen(*, case: Case, phone: str, satisfaction: int, comment: str = "") -> Case:
    """回访 by the citizen: five levels (5 非常满意 … 1 非常不满意) and a comment.

    Only the requester (the phone number given at intake), only for a closed case,
    and once per closure (a case reopened and closed again may be rated again). It
    is recorded as a public follow-up event without an actor.
    """
    if not phone_matches(case, phone):
        raise CaseForbidden(_("查询码或联系电话不正确"))
    if satisfaction not in range(1, 6):
        raise CaseError(_("满意度须为 1～5"))
    comment = comment.strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise CaseError(_("评价内容不能超过 %(max)s 个字") % {"max": COMMENT_MAX_LENGTH})
    with transaction.atomic():
        # Locked, so that of two ratings sent at once the second sees the first.
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.status != Status.CLOSED:
            raise CaseError(_("案件办结后才能评价"))
        if citizen_rating(case) is not None:
            raise CaseError(_("您已评价过该案件，不能重复评价"))
        move(
            case,
            action=Action.FOLLOW_UP,
            actor=None,
            role="",
            to_status=None,
            reason=comment,
            public=True,
            payload={"satisfaction": satisfaction, "source": CITIZEN},
            updates={"satisfaction": satisfaction},
        )
    return reload(case)
