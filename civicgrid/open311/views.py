"""The Open311 GeoReport v2 endpoints (``/open311/v2/``), one thin view each.

``gateway.endpoint`` does what they share: format, method, ``api_key``, rate
limit, jurisdiction, error bodies and the access log.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from civicgrid.cases.models import FINAL_STATUSES, OPEN_STATUSES, Case, Category
from civicgrid.open311 import forms, params, selectors, services
from civicgrid.open311.gateway import Call, Reply, endpoint
from civicgrid.open311.models import Submission, SubmissionState
from civicgrid.open311.render import Open311Error

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this endpoint's behaviour last changed (discovery ``changeset``).
CHANGESET = "2026-11-26T00:00:00+08:00"
FORMATS = ["text/xml", "application/json"]


@endpoint()
def discovery(call: Call) -> Reply:
    base = call.request.build_absolute_uri(call.request.path.rsplit("/", 1)[0])
    return Reply(
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": settings.CIVICGRID_OPEN311_CONTACT or None,
            "key_service": settings.CIVICGRID_OPEN311_KEY_SERVICE
            or _("api_key 由平台管理员签发（civicgrid create-api-key）"),
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": base,
                    "changeset": CHANGESET,
                    "type": settings.CIVICGRID_OPEN311_ENDPOINT_TYPE,
                    "formats": FORMATS,
                }
            ],
        },
    )


@endpoint()
def service_list(call: Call) -> Reply:
    return Reply("services", selectors.service_list())


@endpoint()
def service_definition(call: Call, code: str) -> Reply:
    return Reply("service_definition", selectors.service_definition(selectors.get_service(code)))


def _search(call: Call) -> Reply:
    extensions = params.flag(call, "extensions")
    page = params.page(call)
    cases = selectors.public_cases(call.roots)
    ids = params.comma_list(call, "service_request_id", most=params.MAX_IDS)
    if ids:
        cases = cases.filter(number__in=ids)
    else:
        codes = params.comma_list(call, "service_code")
        if codes:
            known = set(Category.objects.filter(code__in=codes).values_list("code", flat=True))
            unknown = [c for c in codes if c not in known]
            if unknown:
                raise Open311Error(
                    404, _("未知的服务编码 service_code：%(c)s") % {"c": ", ".join(unknown)}
                )
            cases = cases.filter(category__code__in=codes)
        statuses = set(params.comma_list(call, "status"))
        if statuses - {"open", "closed"}:
            raise Open311Error(400, _("status 只能是 open、closed 或二者（逗号分隔）"))
        if statuses == {"open"}:
            cases = cases.filter(status__in=OPEN_STATUSES)
        elif statuses == {"closed"}:
            cases = cases.filter(status__in=FINAL_STATUSES)
        window = params.window(call)
        cases = cases.filter(received_at__gte=window.start, received_at__lte=window.end)
    rows = list(
        selectors.with_public_fields(cases.order_by("-received_at", "-id"), extensions=extensions)[
            page.offset : page.offset + page.size
        ]
    )
    return Reply("service_requests", selectors.request_documents(rows, extensions=extensions))


def _submit(call: Call) -> Reply:
    jurisdiction = call.require_jurisdiction()
    data = forms.read_service_request(call)
    assert call.integration is not None  # a POST has a key
    record, _created = services.submit_request(
        data=data, integration=call.integration, jurisdiction=jurisdiction
    )
    answer: dict[str, object] = (
        {"service_request_id": record.case.number}
        if record.case is not None
        else {"token": record.token}
    )
    notices = selectors.Notices([data.category])
    answer["service_notice"] = notices(data.category, "normal")
    answer["account_id"] = data.account_id or None
    return Reply("service_requests", [answer])


@endpoint(methods=("GET", "POST"))
def requests(call: Call) -> Reply:
    return _submit(call) if call.request.method == "POST" else _search(call)


@endpoint()
def request_detail(call: Call, number: str) -> Reply:
    case = forms.find_public_case(call, number)
    extensions = params.flag(call, "extensions")
    one = Case.objects.filter(pk=case.pk)
    rows = list(selectors.with_public_fields(one, extensions=extensions))
    return Reply("service_requests", selectors.request_documents(rows, extensions=extensions))


@endpoint()
def token(call: Call, token: str) -> Reply:
    record = Submission.objects.select_related("case").filter(token=token).first()
    if record is None or (call.roots is not None and record.jurisdiction not in call.roots):
        raise Open311Error(404, _("未知的 token：%(t)s") % {"t": token})
    if record.state == SubmissionState.REFUSED:
        raise Open311Error(400, _("该请求未被受理：%(e)s") % {"e": record.error})
    number = record.case.number if record.case else None
    return Reply("service_requests", [{"service_request_id": number, "token": record.token}])


def _feed(call: Call) -> Reply:
    window = params.window(call)
    page = params.page(call)
    events = selectors.update_events(selectors.public_cases(call.roots)).filter(
        at__gte=window.start, at__lte=window.end
    )[page.offset : page.offset + page.size]
    return Reply("service_request_updates", [selectors.update_document(e) for e in events])


def _update(call: Call) -> Reply:
    number, data = forms.read_update(call)
    case = forms.find_public_case(call, number)
    assert call.integration is not None  # a POST has a key
    event, _created = services.add_citizen_update(
        case=case, integration=call.integration, data=data
    )
    return Reply("service_request_updates", [{"update_id": str(event.pk)}])


@endpoint(methods=("GET", "POST"))
def request_updates(call: Call) -> Reply:
    """mySociety's servicerequestupdates: the feed of updates, and a citizen's update."""
    return _update(call) if call.request.method == "POST" else _feed(call)
