"""The case list (``/cases/``) and the case page with its actions (``/cases/<id>/``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from civicgrid.accounts.models import Role, User
from civicgrid.cases import selectors
from civicgrid.cases.access import ASSISTING, get_case_for_user, visible_cases
from civicgrid.cases.errors import CaseConflict, CaseError
from civicgrid.cases.models import (
    Action,
    AttachmentKind,
    Case,
    Channel,
    RequestType,
    Stage,
    Status,
    Urgency,
)
from civicgrid.web.forms.case_actions import ACTIONS, SATISFACTION, ActionForm, ActionSpec, offered
from civicgrid.web.views.case_list import render_case_list
from civicgrid.web.views.helpers import is_htmx, staff_user

CASE_PAGE_ID = "case-page"
#: The htmx event an action sends; the task badge listens for it on the body.
TASKS_CHANGED = "tasks-changed"


# -- the list ------------------------------------------------------------------------------
@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    return render_case_list(request, "web/cases/list.html", visible_cases(user))


# -- the case page -------------------------------------------------------------------------
def _load(user: User, pk: int) -> Case:
    case = get_case_for_user(user, pk)
    return Case.objects.select_related(
        "category__parent", "grid", "lead_unit", "suggested_unit", "merged_into"
    ).get(pk=case.pk)


@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    return _page(request, user, _load(user, pk))


@login_required
@require_POST
def case_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One action through its form and service; the case page again, with the
    outcome (htmx swaps it in place; a plain form post is redirected on success)."""
    user = staff_user(request)
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404
    case = _load(user, pk)
    form = _form(spec, case, user, data=request.POST, files=request.FILES)
    if request.POST.get("version") != str(case.version):
        return _page(request, user, case, conflict=True, status=409)
    if form.is_valid():
        try:
            form.run()
        except CaseConflict:
            return _page(request, user, _load(user, pk), conflict=True, status=409)
        except CaseError as exc:
            form.add_error(form.error_field_for(exc), exc.message)
        else:
            notice = _("已完成：%(action)s") % {"action": _label(spec, case)}
            if not is_htmx(request):
                messages.success(request, notice)
                return redirect("case-detail", pk=case.pk)
            try:
                case = _load(user, pk)
            except Http404:  # the action took the case out of this user's scope
                response = HttpResponse(status=204)
                response["HX-Redirect"] = reverse("case-list")
                return response
            response = _page(request, user, case, notice=notice)
            response["HX-Trigger"] = TASKS_CHANGED  # the badge counts again
            return response
    return _page(request, user, case, bound=form, bound_spec=spec, status=400)


def _form(
    spec: ActionSpec,
    case: Case,
    user: User,
    *,
    data: Any = None,
    files: Any = None,
) -> ActionForm:
    return spec.form_class(data, files, case=case, user=user, auto_id=f"id_{spec.name}_%s")


def _label(spec: ActionSpec, case: Case) -> str:
    if spec.name == "dispatch" and case.status == Status.RETURNED:
        return _("改派")
    return str(spec.label)


def _page(
    request: HttpRequest,
    user: User,
    case: Case,
    *,
    bound: ActionForm | None = None,
    bound_spec: ActionSpec | None = None,
    conflict: bool = False,
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    context = case_page_context(user, case, bound=bound, bound_spec=bound_spec)
    context.update({"conflict": conflict, "notice": notice})
    if is_htmx(request):
        # htmx swaps only 2xx responses: the outcome is in the page itself.
        return render(request, "web/cases/_case.html", context)
    return render(request, "web/cases/detail.html", context, status=status)


def case_page_context(
    user: User,
    case: Case,
    *,
    bound: ActionForm | None = None,
    bound_spec: ActionSpec | None = None,
) -> dict[str, Any]:
    now = timezone.now()
    events = selectors.timeline(case)
    stages = selectors.stage_measures(case, now=now)
    attachments = list(case.attachments.order_by("id"))
    photos_per_event: dict[int, int] = {}
    for a in attachments:
        if a.event_id:
            photos_per_event[a.event_id] = photos_per_event.get(a.event_id, 0) + 1
    running = next((s for s in reversed(stages) if s["finished_at"] is None), None)
    actions = []
    bound_shown = False
    for spec in offered(selectors.available_actions(user, case)):
        form = bound if bound is not None and bound_spec == spec else _form(spec, case, user)
        bound_shown |= form is bound
        actions.append(
            {
                "spec": spec,
                "label": _label(spec, case),
                "form": form,
                "open": spec.primary
                or form is bound
                or (spec.name == "locate" and case.grid_id is None),
            }
        )
    reveal = selectors.may_see_requester(user, case)
    return {
        "case": case,
        "case_page_id": CASE_PAGE_ID,
        "facts": _facts(case, reveal=reveal),
        "grid_path": case.grid.ancestors() if case.grid else [],
        "assisting_units": list(case.assisting_units.all()),
        "deadline": selectors.deadline_state(
            started_at=running["started_at"] if running else None, due_at=case.due_at, now=now
        ),
        "timeline": [_event(e, photos_per_event) for e in events],
        "stages": [_stage(s, now) for s in stages],
        "photo_groups": _photo_groups(case, attachments),
        "actions": actions,
        # Errors of a form the page no longer offers (the case moved on meanwhile).
        "orphan_errors": [] if bound is None or bound_shown else _all_errors(bound),
        "sent_back": _last_reason(events, Action.SEND_BACK)
        if case.status == Status.RETURNED
        else "",
        "map_config": _map_config(case),
    }


def _facts(case: Case, *, reveal: bool) -> dict[str, Any]:
    name, phone = case.requester_name, case.requester_phone
    if not reveal:
        name, phone = selectors.mask_name(name), selectors.mask_phone(phone)
    return {
        "channel": Channel(case.channel).label if case.channel in Channel.values else case.channel,
        "request_type": RequestType(case.request_type).label if case.request_type else "",
        "urgency": Urgency(case.urgency).label,
        "requester_name": name,
        "requester_phone": phone,
        "requester_shown": reveal,
    }


def _all_errors(form: ActionForm) -> list[str]:
    return [str(message) for errors in form.errors.values() for message in errors]


def _last_reason(events: list[dict[str, Any]], action: str) -> str:
    for e in reversed(events):
        if e["action"] == action:
            return str(e["reason"])
    return ""


ROLE_LABELS = dict(Role.choices)


def _event(e: dict[str, Any], photos: dict[int, int]) -> dict[str, Any]:
    role = e["actor_role"]
    dispatched = e["action"] in (Action.DISPATCH, Action.REDISPATCH)
    return {
        **e,
        # A dispatch records the unit it went to, not the dispatcher's own.
        "unit": "" if dispatched else e["unit"],
        "role_label": _("协办单位") if role == ASSISTING else ROLE_LABELS.get(role, role),
        "from_label": Status(e["from_status"]).label if e["from_status"] else "",
        "to_label": Status(e["to_status"]).label if e["to_status"] else "",
        "moved": e["from_status"] != e["to_status"],
        "detail": _event_detail(e),
        "photos": photos.get(e["id"], 0),
    }


def _event_detail(e: dict[str, Any]) -> str:
    """What the payload of an event adds to its reason, in words."""
    p = e["payload"] or {}
    action = e["action"]
    if action in (Action.DISPATCH, Action.REDISPATCH):
        to = _("派往 %(unit)s") % {"unit": e["unit"]}
        if not p.get("suggested_unit"):
            return to
        followed = _("按建议单位") if p.get("followed_suggestion") else _("未按建议单位")
        return f"{to}（{followed}）"
    if action == Action.REQUEST_EXTENSION and p.get("extra_amount"):
        return _("申请延长 %(n)s") % {"n": p["extra_amount"]}
    if action == Action.APPROVE_EXTENSION and p.get("new_due"):
        return _("时限延至 %(at)s") % {"at": _local(p["new_due"])}
    if action == Action.FOLLOW_UP and p.get("satisfaction"):
        levels = {int(value): label for value, label in SATISFACTION}
        return _("满意度：%(level)s") % {"level": levels.get(int(p["satisfaction"]), "")}
    if action == Action.MERGE and p.get("into_number"):
        return _("并入 %(n)s") % {"n": p["into_number"]}
    if action == Action.LOCATE and p.get("grid"):
        return _("定位到网格 %(code)s") % {"code": p["grid"]}
    if action == Action.OVERDUE and p.get("stage"):
        return _("%(stage)s环节超过时限（%(at)s）") % {
            "stage": Stage(p["stage"]).label,
            "at": _local(p.get("due_at", "")),
        }
    return ""


def _local(stamp: str) -> str:
    at = parse_datetime(stamp) if stamp else None
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M") if at else stamp


def duration(seconds: float) -> str:
    """``2天3小时5分钟``; under a minute ``不到1分钟``."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return _("不到1分钟")
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_("%(n)s天") % {"n": days})
    if hours:
        parts.append(_("%(n)s小时") % {"n": hours})
    if minutes and not days:
        parts.append(_("%(n)s分钟") % {"n": minutes})
    return " ".join(parts)


def _stage(s: dict[str, Any], now: Any) -> dict[str, Any]:
    if s["met"] is True:
        result, state = _("按时完成"), "met"
    elif s["met"] is False:
        result, state = _("超时完成"), "late"
    elif s["due_at"] <= now:
        result, state = _("已超时，进行中"), "overdue"
    else:
        result, state = _("进行中"), "running"
    return {
        **s,
        "elapsed": duration(s["elapsed_seconds"]),
        "working": duration(s["working_seconds"]),
        "result": result,
        "state": state,
    }


def _photo_groups(case: Case, attachments: list[Any]) -> list[dict[str, Any]]:
    groups = []
    for kind, label in AttachmentKind.choices:
        items = [
            {
                "attachment": a,
                "url": reverse("api-v1:download_attachment", args=[case.pk, a.pk]),
            }
            for a in attachments
            if a.kind == kind
        ]
        if items or kind in (AttachmentKind.BEFORE, AttachmentKind.AFTER):
            groups.append({"kind": kind, "label": label, "items": items})
    return groups


def _map_config(case: Case) -> dict[str, Any]:
    return {
        "lon": case.lon,
        "lat": case.lat,
        "grid": case.grid_id,
        "gridUrl": reverse("api-v1:grid_detail", args=[case.grid_id]) if case.grid_id else "",
        "basemap": {
            "url": settings.CIVICGRID_BASEMAP_URL,
            "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
            "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        },
    }
