"""Adding photos to a case: checked and cleaned, stored through Django's storage API.

The files go through the ``FileField``s of ``Attachment``, i.e. the ``default``
entry of ``settings.STORAGES``: the local disk by default, any S3-compatible
store by configuration. Names are a random token, so they cannot be guessed.
Several photos are all-or-nothing: every one is checked before any is stored,
and if storing a file or writing the rows fails, the files already stored are
deleted again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases.access import ASSISTING, roles_on_case
from civicgrid.cases.attachments import ProcessedImage, Upload, process_image
from civicgrid.cases.errors import AttachmentError, CaseError, CaseForbidden
from civicgrid.cases.models import (
    Action,
    Attachment,
    AttachmentKind,
    Case,
    CaseEvent,
    Channel,
    Status,
)
from civicgrid.cases.services.engine import record_event

logger = logging.getLogger(__name__)


def add_attachment(
    *, case: Case, actor: User, upload: Upload, kind: str, event: CaseEvent | None = None
) -> Attachment:
    """Attach one photo to ``case``; see ``attach_photos``."""
    return attach_photos(case=case, actor=actor, uploads=[upload], kind=kind, event=event)[0]


def attach_photos(
    *,
    case: Case,
    actor: User,
    uploads: Sequence[Upload | ProcessedImage],
    kind: str,
    event: CaseEvent | None = None,
) -> list[Attachment]:
    """Attach several photos to ``case`` at once: all of them, or none.

    ``event`` is what the photos belong to (e.g. the unit's report back with its
    after-photos); without one, a note event records the upload in the timeline.
    Anyone acting on the case in some role, and whoever reported it, may attach.
    Photos already checked by ``process_photos`` are stored as they are.
    """
    role = _check_actor(case, actor)
    if kind not in AttachmentKind.values:
        raise CaseError(_("未知的附件类型：%(k)s") % {"k": kind})
    if event is not None and event.case_id != case.pk:
        raise CaseError(_("该事件不属于案件 %(n)s") % {"n": case.number})
    if not uploads:
        return []
    _check_room(case, len(uploads))
    images = process_photos(uploads)
    return _store(case=case, actor=actor, role=role, images=images, kind=kind, event=event)


def process_photos(uploads: Sequence[Upload | ProcessedImage]) -> list[ProcessedImage]:
    """Check and clean every photo (``AttachmentError`` for the first bad one), so that
    a transition can refuse bad photos before it changes anything."""
    return [
        upload
        if isinstance(upload, ProcessedImage)
        else process_image(upload, filename=_upload_name(upload, index))
        for index, upload in enumerate(uploads, start=1)
    ]


def attach_citizen_photos(
    *, case: Case, uploads: Sequence[Upload | ProcessedImage]
) -> list[Attachment]:
    """The photos a citizen sends with a report from the public portal (no account).

    Only for a case just taken in from the citizen web channel without an account
    (``create_case(actor=None)``, still new); they are before-photos of its intake
    event, stored with no uploader. All or nothing, as ``attach_photos``; photos
    already checked (``process_photos``) are stored as they are.
    """
    if case.channel != Channel.WEB or case.created_by_id is not None:
        raise CaseForbidden(_("案件 %(n)s 不是市民网上反映的案件") % {"n": case.number})
    if case.status != Status.NEW:
        raise CaseError(_("案件 %(n)s 已受理，不能再补充照片") % {"n": case.number})
    if not uploads:
        return []
    _check_room(case, len(uploads))
    images = process_photos(uploads)
    intake = case.events.filter(action=Action.CREATE).order_by("at", "id").first()
    return _store(
        case=case, actor=None, role="", images=images, kind=AttachmentKind.BEFORE, event=intake
    )


def _check_actor(case: Case, actor: User) -> str:
    """The role recorded for the actor; refuses who may neither act on nor report the case."""
    if not actor.is_authenticated or not actor.is_active:
        raise CaseForbidden(_("您无权为案件 %(n)s 添加附件") % {"n": case.number})
    held = roles_on_case(actor, case)
    for role in [*Role.values, ASSISTING]:
        if role in held:
            return role
    if held:
        return sorted(held)[0]
    if actor.is_superuser or (case.created_by_id is not None and case.created_by_id == actor.pk):
        return ""
    raise CaseForbidden(_("您无权为案件 %(n)s 添加附件") % {"n": case.number})


def _check_room(case: Case, adding: int) -> None:
    limit: int = settings.CIVICGRID_MAX_ATTACHMENTS_PER_CASE
    have = Attachment.objects.filter(case=case).count()
    if have + adding > limit:
        raise AttachmentError(
            _("案件 %(n)s 最多可有 %(max)s 个附件，已有 %(have)s 个，不能再添加 %(add)s 个")
            % {"n": case.number, "max": limit, "have": have, "add": adding}
        )


def _upload_name(upload: Upload, index: int) -> str:
    name = getattr(upload, "name", None)
    return str(name) if name else _("第 %(i)s 张照片") % {"i": index}


def _store(
    *,
    case: Case,
    actor: User | None,
    role: str,
    images: list[ProcessedImage],
    kind: str,
    event: CaseEvent | None,
) -> list[Attachment]:
    rows: list[Attachment] = []
    stored: list[Attachment] = []
    try:
        # Files first, outside the transaction: a slow object store holds no lock.
        for image in images:
            token = secrets.token_urlsafe(18)
            row = Attachment(
                case=case,
                kind=kind,
                content_type=image.content_type,
                size=len(image.content),
                width=image.width,
                height=image.height,
                lon=image.lon,
                lat=image.lat,
                taken_at=image.taken_at,
                uploaded_by=actor,
            )
            stored.append(row)
            row.file.save(f"{token}.{image.extension}", ContentFile(image.content), save=False)
            row.thumbnail.save(f"{token}_thumb.jpg", ContentFile(image.thumbnail), save=False)
            rows.append(row)
        with transaction.atomic():
            # Lock the case so that two uploads at once cannot pass the limit together.
            list(Case.objects.select_for_update().filter(pk=case.pk).values_list("pk"))
            _check_room(case, len(rows))
            if event is None:
                event = record_event(
                    case,
                    action=Action.NOTE,
                    actor=actor,
                    role=role,
                    reason=_("添加了 %(count)s 张照片（%(kind)s）")
                    % {"count": len(rows), "kind": AttachmentKind(kind).label},
                    payload={"attachments": len(rows), "kind": kind},
                )
            for row in rows:
                row.event = event
            Attachment.objects.bulk_create(rows)
    except BaseException:
        _delete_files(stored)
        raise
    return rows


def _delete_files(rows: list[Attachment]) -> None:
    """Remove what was stored for rows that were not written; never raises."""
    for row in rows:
        for field in (row.file, row.thumbnail):
            if not field.name:
                continue
            try:
                field.storage.delete(field.name)
            except Exception:
                logger.exception("could not delete orphaned attachment file %s", field.name)
