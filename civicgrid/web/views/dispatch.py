"""The dispatcher queue (``/dispatch/``): filed and sent-back cases, most urgent and
earliest due first, each dispatched with one click to the unit the dispatch
catalogue suggests (or another), or a checked selection to one unit at once."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicgrid.accounts.models import Role, User
from civicgrid.cases import services
from civicgrid.cases.access import get_case_for_user, visible_cases
from civicgrid.cases.errors import CaseConflict, CaseError
from civicgrid.cases.models import Action, Case, CaseEvent, CaseQuerySet, Status
from civicgrid.cases.selectors import URGENT
from civicgrid.grids.access import visible_units
from civicgrid.grids.models import HandlingUnit
from civicgrid.web.forms.dispatch import BulkDispatchForm, DispatchRowForm
from civicgrid.web.views.case_list import render_case_list
from civicgrid.web.views.cases import TASKS_CHANGED
from civicgrid.web.views.helpers import is_htmx
from civicgrid.web.views.intake import role_user

DISPATCH_ROLES = frozenset({Role.DISPATCHER, Role.SUPERVISOR})
QUEUE_STATUSES = (Status.FILED, Status.RETURNED)
COLUMNS = (
    "select",
    "number",
    "status",
    "category",
    "description",
    "place",
    "received_at",
    "deadline",
    "actions",
)
BULK_FORM_ID = "bulk-dispatch"
ROW_TEMPLATE = "web/dispatch/_row.html"


def _units(user: User) -> list[HandlingUnit]:
    return [u for u in visible_units(user) if u.is_active]


def queue_cases(user: User) -> CaseQuerySet:
    """The filed and sent-back cases ``user`` may see, each with the reason of its
    last send-back (``sent_back_reason``, a subquery: no query per row)."""
    last_reason = (
        CaseEvent.objects.filter(case=OuterRef("pk"), action=Action.SEND_BACK)
        .order_by("-at", "-id")
        .values("reason")[:1]
    )
    return (
        visible_cases(user)
        .filter(status__in=QUEUE_STATUSES)
        .annotate(sent_back_reason=Subquery(last_reason))
    )


def _queue_page(
    request: HttpRequest,
    user: User,
    units: list[HandlingUnit],
    bulk_form: BulkDispatchForm,
    *,
    checked: frozenset[str] = frozenset(),
    status: int = 200,
) -> HttpResponse:
    return render_case_list(
        request,
        "web/dispatch/queue.html",
        queue_cases(user),
        default_sort=URGENT,
        columns=COLUMNS,
        context={
            "case_select_form": BULK_FORM_ID,
            "case_row_template": ROW_TEMPLATE,
            "units": units,
            "bulk_form": bulk_form,
            "checked_cases": checked,
        },
        path=reverse("dispatch-queue"),
        status=status,
    )


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    user = role_user(request, DISPATCH_ROLES)
    units = _units(user)
    return _queue_page(request, user, units, BulkDispatchForm(units=units, auto_id="bulk_%s"))


def _where_to(case: Case, unit: HandlingUnit) -> str:
    if case.status == Status.RETURNED:
        return _("案件 %(n)s 已改派至 %(unit)s") % {"n": case.number, "unit": unit.name}
    return _("案件 %(n)s 已派遣至 %(unit)s") % {"n": case.number, "unit": unit.name}


@login_required
@require_POST
def dispatch_one(request: HttpRequest, pk: int) -> HttpResponse:
    """One row's dispatch: htmx removes the row and shows where the case went; a
    refusal comes back in the row's form."""
    user = role_user(request, DISPATCH_ROLES)
    case = get_case_for_user(user, pk)
    units = _units(user)
    form = DispatchRowForm(request.POST, units=units, auto_id=f"row{pk}_%s")
    error = ""
    if request.POST.get("version") != str(case.version):
        error = _("案件已被他人处理，请刷新后重试。")
    elif not form.is_valid():
        error = form.first_error()
    else:
        notice = _where_to(case, form.chosen_unit)
        try:
            services.dispatch_case(case=case, actor=user, unit=form.chosen_unit)
        except CaseConflict:
            error = _("案件已被他人处理，请刷新后重试。")
        except CaseError as exc:
            error = exc.message
        else:
            if not is_htmx(request):
                messages.success(request, notice)
                return redirect("dispatch-queue")
            response = render(request, "web/dispatch/_toast.html", {"notice": notice})
            response["HX-Retarget"] = f'#case-table tr[data-case="{case.pk}"]'
            response["HX-Reswap"] = "delete"
            response["HX-Trigger"] = TASKS_CHANGED
            return response
    if not is_htmx(request):
        messages.error(request, f"{case.number}：{error}")
        return redirect("dispatch-queue")
    case.refresh_from_db()
    # htmx swaps only 2xx answers: the refusal is in the form it sends back.
    return render(
        request,
        "web/dispatch/_row_form.html",
        {"c": case, "units": units, "row_error": error, "chosen": form.data.get("unit", "")},
    )


@login_required
@require_POST
def bulk_dispatch(request: HttpRequest) -> HttpResponse:
    """The checked cases to one unit, each on its own: those that fail (taken by
    someone else meanwhile, not allowed, …) are reported with the reason, the rest
    stay dispatched."""
    user = role_user(request, DISPATCH_ROLES)
    units = _units(user)
    form = BulkDispatchForm(request.POST, units=units, auto_id="bulk_%s")
    if not form.is_valid():
        # The queue again, the message next to the unit, the rows still checked.
        checked = frozenset(request.POST.getlist("case"))
        return _queue_page(request, user, units, form, checked=checked, status=400)
    unit = form.chosen_unit
    ids: list[int] = form.cleaned_data["case"]
    found = {c.pk: c for c in visible_cases(user).filter(pk__in=ids)}
    done: list[str] = []
    failed: list[tuple[str, str]] = []
    for pk in dict.fromkeys(ids):
        case = found.get(pk)
        if case is None:
            failed.append((f"#{pk}", _("不存在或不在您的权限范围内")))
            continue
        try:
            services.dispatch_case(case=case, actor=user, unit=unit)
        except CaseError as exc:
            failed.append((case.number, exc.message))
        else:
            done.append(case.number)
    if done:
        messages.success(
            request,
            _("已派遣 %(count)s 件至 %(unit)s：%(numbers)s")
            % {"count": len(done), "unit": unit.name, "numbers": "、".join(done)},
        )
    for number, reason in failed:
        messages.error(request, _("%(n)s 未派遣：%(reason)s") % {"n": number, "reason": reason})
    return redirect("dispatch-queue")
