"""A grid worker's report from the street, with its photos, in one call."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext as _

from civicgrid.accounts.models import User
from civicgrid.cases.attachments import Upload
from civicgrid.cases.errors import AttachmentError, CaseError
from civicgrid.cases.models import Action, AttachmentKind, Case, Channel
from civicgrid.cases.services.attachments import attach_photos, process_photos
from civicgrid.cases.services.intake import Intake, create_case, self_handle_case


def report_by_grid_worker(
    *,
    data: Intake,
    actor: User,
    photos: Sequence[Upload] = (),
    result: str = "",
    after_photos: Sequence[Upload] = (),
) -> Case:
    """随手报: a grid worker's report, filed directly (channel ``grid_worker``), with its
    before-``photos``. With a ``result`` the worker fixed it on the spot (自处理,
    ``self_handle_case``): ``after_photos`` go with it and the case waits for
    verification. All or nothing: a bad photo refuses the whole report."""
    if not photos:
        raise AttachmentError(_("请拍摄或选择至少一张现场照片"))
    if after_photos and not result.strip():
        raise CaseError(_("请填写处置结果"))
    data.channel = Channel.GRID_WORKER
    before = process_photos(photos)
    after = process_photos(after_photos)
    with transaction.atomic():
        if result.strip():
            case = self_handle_case(data=data, actor=actor, result=result)
        else:
            case, _created = create_case(data=data, actor=actor)
        events = {e.action: e for e in case.events.order_by("at", "id")}
        attach_photos(
            case=case,
            actor=actor,
            uploads=before,
            kind=AttachmentKind.BEFORE,
            event=events.get(Action.CREATE),
        )
        if after:
            attach_photos(
                case=case,
                actor=actor,
                uploads=after,
                kind=AttachmentKind.AFTER,
                event=events.get(Action.SELF_HANDLE),
            )
    return case
