"""One case action taken from a row of a role page (inbox, desk, field), not the case page.

The row posts the case page's own action form (``web.forms.case_actions.ACTIONS``) to
its page's URL; ``run_row_action`` checks the action is one the page offers and one
the user may take on the case now, runs the form's one service call and answers with
the row's action cell again: the outcome, or the form with its error next to the
field and what was typed kept. htmx swaps the cell (``#row-<page>-<case id>``); a
plain post is redirected back to the page on success.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from civicgrid.accounts.models import User
from civicgrid.cases import selectors
from civicgrid.cases.access import get_case_for_user
from civicgrid.cases.errors import CaseConflict, CaseError
from civicgrid.cases.models import Case
from civicgrid.web.forms.case_actions import ACTIONS, ActionForm, offered
from civicgrid.web.views.cases import TASKS_CHANGED
from civicgrid.web.views.helpers import is_htmx


@dataclass
class RowOutcome:
    """What the row shows after a post: a notice, an error above the form, the bound form."""

    pk: int = 0
    action: str = ""
    form: ActionForm | None = None
    notice: str = ""
    error: str = ""


def load_case(user: User, pk: int) -> Case:
    case = get_case_for_user(user, pk)
    return Case.objects.select_related("category__parent", "grid", "lead_unit").get(pk=case.pk)


def run_row_action(
    request: HttpRequest,
    user: User,
    pk: int,
    action: str,
    *,
    offered_here: Collection[str],
    cell_template: str,
    page_url: str,
    render_page: Callable[[RowOutcome, int], HttpResponse],
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    spec = ACTIONS.get(action)
    if spec is None or action not in offered_here:
        raise Http404
    case = load_case(user, pk)
    form = spec.form_class(
        request.POST, request.FILES, case=case, user=user, auto_id=f"id_{action}_{pk}_%s"
    )
    outcome = RowOutcome(pk=pk, action=action, form=form)
    status = 400
    if spec not in offered(selectors.available_actions(user, case)):
        outcome.error = _("该操作当前不可用：案件已被他人处理，请刷新后重试。")
        outcome.form, status = None, 409
    elif request.POST.get("version") != str(case.version):
        outcome.error = _("案件已被他人处理，请刷新后重试。")
        outcome.form, status = None, 409
    elif form.is_valid():
        try:
            form.run()
        except CaseConflict:
            outcome.error = _("案件已被他人处理，请刷新后重试。")
            outcome.form, status = None, 409
        except CaseError as exc:
            form.add_error(form.error_field_for(exc), exc.message)
        else:
            notice = _("已完成：%(action)s（%(number)s）") % {
                "action": spec.label,
                "number": case.number,
            }
            if not is_htmx(request):
                messages.success(request, notice)
                return redirect(page_url)
            outcome = RowOutcome(pk=pk, action=action, notice=notice)
            status = 200
            case = load_case(user, pk) if _still_visible(user, pk) else case
    if not is_htmx(request):
        # The whole page again, the row's form with its error and what was typed.
        return render_page(outcome, status)
    context = {"c": case, "outcome": outcome, **(extra or {})}
    response = render(request, cell_template, context)
    if outcome.notice:
        response["HX-Trigger"] = TASKS_CHANGED
    return response


def _still_visible(user: User, pk: int) -> bool:
    try:
        get_case_for_user(user, pk)
    except Http404:
        return False
    return True
