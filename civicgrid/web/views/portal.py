"""The citizen portal: report a problem, follow it by code and phone, rate the result.

No account is needed. What a browser proved (tracking code and phone number) is
kept in its session for ``CIVICGRID_PORTAL_ACCESS_MINUTES``; the case page, its
photos and the rating form ask for that proof. Reports and lookups are limited
per client address and per phone number (``portal.Limit``); a limited request
gets a 429 page. The forms are in ``civicgrid.web.forms.portal``; limits, access
grants and the public reads in ``civicgrid.web.portal``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicgrid.cases import services
from civicgrid.cases.catalogue import search_categories
from civicgrid.cases.errors import AttachmentError, CaseError, IntakeError
from civicgrid.cases.models import Attachment, Case, Status
from civicgrid.web import portal
from civicgrid.web.forms import portal as forms
from civicgrid.web.portal import Limit

#: The session key of the code the browser just reported (for the "done" page).
REPORTED = "civicgrid_portal_reported"
SEARCH_RESULTS = 15


def _limited(request: HttpRequest, limit: Limit) -> HttpResponse:
    messages = {
        portal.REPORTS_PER_ADDRESS.name: _("您提交反映过于频繁，请稍后再试。"),
        portal.REPORTS_PER_PHONE.name: _("该联系电话提交反映过于频繁，请稍后再试。"),
        portal.LOOKUPS_PER_ADDRESS.name: _("查询过于频繁，请稍后再试。"),
    }
    retry = portal.retry_after_seconds()
    response = render(
        request,
        "web/portal/limited.html",
        {"message": messages[limit.name], "minutes": max(1, (retry + 59) // 60)},
        status=429,
    )
    response["Retry-After"] = str(retry)
    return response


def _map_config() -> dict[str, Any]:
    return {
        "outline": reverse("portal-outline"),
        "minors": reverse("portal-categories"),
        "basemap": {
            "url": settings.CIVICGRID_BASEMAP_URL,
            "labelsUrl": settings.CIVICGRID_BASEMAP_LABELS_URL,
            "attribution": settings.CIVICGRID_BASEMAP_ATTRIBUTION,
        },
        "maxPhotos": settings.CIVICGRID_PORTAL_MAX_PHOTOS,
        "maxBytes": settings.CIVICGRID_MAX_UPLOAD_BYTES,
    }


def _strings() -> dict[str, str]:
    """The words portal.js shows, translated here."""
    return {
        "pinned": _("已标记位置：经度 {lon}，纬度 {lat}"),
        "outside": _("该位置不在本区管辖范围内，请在地图上的辖区范围内选择。"),
        "locating": _("正在获取您的位置…"),
        "noGeolocation": _("无法获取您的位置，请在地图上点选，或填写地址。"),
        "outlineFailed": _("地图加载失败，您可以直接填写地址。"),
        "tapHint": _("点击地图标出问题位置"),
        "tooMany": _("一次最多上传 {max} 张照片，您选择了 {n} 张。"),
        "tooBig": _("照片“{name}”超过 {size} MB，请压缩后再上传。"),
        "notImage": _("文件“{name}”不是图片，请选择照片。"),
        "chosen": _("已选择 {n} 张照片"),
        "copied": _("已复制"),
    }


def _report_page(request: HttpRequest, form: forms.ReportForm, status: int = 200) -> HttpResponse:
    major = form["major"].value()
    context = {
        "form": form,
        "major_groups": portal.major_groups(),
        "minors": portal.minors_of(major) if major else [],
        "map_config": _map_config(),
        "portal_strings": _strings(),
        "max_photos": settings.CIVICGRID_PORTAL_MAX_PHOTOS,
        "max_megabytes": settings.CIVICGRID_MAX_UPLOAD_BYTES // (1024 * 1024),
        # A browser never sends chosen files again: say so when the form comes back.
        "photos_dropped": form.is_bound and bool(request.FILES.getlist("photos")),
    }
    return render(request, "web/portal/report.html", context, status=status)


@require_http_methods(["GET", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    """随手拍: the report form; a report received goes to the tracking-code page."""
    if request.method != "POST":
        return _report_page(request, forms.ReportForm(initial={"token": forms.new_form_token()}))
    address = portal.client_address(request)
    if portal.limit_reached(portal.REPORTS_PER_ADDRESS, address):
        return _limited(request, portal.REPORTS_PER_ADDRESS)
    form = forms.ReportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _report_page(request, form, status=400)
    phone = form.cleaned_data["phone"]
    for limit, value in ((portal.REPORTS_PER_ADDRESS, address), (portal.REPORTS_PER_PHONE, phone)):
        if portal.count_request(limit, value):
            return _limited(request, limit)
    try:
        case, _created = services.report_by_citizen(
            data=form.intake(), photos=form.cleaned_data["photos"]
        )
    except AttachmentError as exc:
        form.add_error("photos", exc.message)
        return _report_page(request, form, status=400)
    except IntakeError as exc:
        form.add_error("lon", exc.message)
        return _report_page(request, form, status=400)
    portal.grant_access(request, case, phone)
    request.session[REPORTED] = case.tracking_code
    return redirect("portal-report-done")


@require_GET
def report_done(request: HttpRequest) -> HttpResponse:
    code = request.session.get(REPORTED)
    case = Case.objects.select_related("category").filter(tracking_code=code).first()
    if not code or case is None or portal.granted_phone(request, code) is None:
        return redirect("portal-report")
    return render(
        request,
        "web/portal/report_done.html",
        {"case": case, "code": code, "strings": _strings()},
    )


@require_GET
def category_options(request: HttpRequest) -> HttpResponse:
    """htmx: the ``<option>``s of the 小类 of the chosen 大类."""
    return render(
        request,
        "web/portal/_minor_options.html",
        {
            "minors": portal.minors_of(request.GET.get("major")),
            "selected": request.GET.get("selected"),
        },
    )


@require_GET
def category_search(request: HttpRequest) -> HttpResponse:
    """htmx: 小类 matching the typed words (Chinese, pinyin initials or code)."""
    query = request.GET.get("q", "").strip()[:30]
    found = search_categories(query, limit=SEARCH_RESULTS) if query else []
    return render(request, "web/portal/_category_hits.html", {"hits": found, "query": query})


@require_GET
@cache_control(public=True, max_age=300)
def outline(request: HttpRequest) -> JsonResponse:
    """The jurisdiction's outline for the citizen's map (districts and subdistricts)."""
    return JsonResponse(portal.district_outline())


@require_http_methods(["GET", "POST"])
def track(request: HttpRequest) -> HttpResponse:
    """Find a case by tracking code and phone number; the same "not found" for either wrong."""
    if request.method != "POST":
        initial = {"code": request.GET.get("code", "")[:32]}
        return render(request, "web/portal/track.html", {"form": forms.TrackForm(initial=initial)})
    if portal.count_request(portal.LOOKUPS_PER_ADDRESS, portal.client_address(request)):
        return _limited(request, portal.LOOKUPS_PER_ADDRESS)
    form = forms.TrackForm(request.POST)
    if form.is_valid():
        case = services.find_case_for_citizen(
            tracking_code=form.cleaned_data["code"], phone=form.cleaned_data["phone"]
        )
        if case is not None:
            portal.grant_access(request, case, form.cleaned_data["phone"])
            return redirect("portal-case", code=case.tracking_code)
        form.add_error(None, _("没有找到与该查询码和联系电话对应的反映，请核对后重新输入。"))
    return render(request, "web/portal/track.html", {"form": form}, status=400)


def _ask_again(code: str) -> HttpResponse:
    """To the lookup form, the code filled in: this browser has not proved the phone."""
    return redirect(f"{reverse('portal-track')}?{urlencode({'code': code})}")


def _granted(request: HttpRequest, code: str) -> tuple[Case, str] | None:
    phone = portal.granted_phone(request, code)
    if phone is None:
        return None
    case = services.find_case_for_citizen(tracking_code=code, phone=phone)
    return (case, phone) if case is not None else None


def _case_page(
    request: HttpRequest, case: Case, rate_form: forms.RateForm | None = None, status: int = 200
) -> HttpResponse:
    rating = services.citizen_rating(case) if case.status == Status.CLOSED else None
    can_rate = case.status == Status.CLOSED and rating is None
    context = {
        "case": case,
        "status_label": portal.PUBLIC_STATUS.get(case.status, case.get_status_display()),
        "steps": portal.STEPS,
        "step": portal.STEP_OF_STATUS.get(case.status),
        "timeline": portal.public_timeline(case),
        "photos": portal.public_photos(case),
        "rating": rating,
        "rating_label": portal.satisfaction_label(rating.payload.get("satisfaction"))
        if rating
        else "",
        "rate_form": rate_form or (forms.RateForm() if can_rate else None),
        "satisfaction_choices": portal.SATISFACTION_CHOICES,
    }
    return render(request, "web/portal/case.html", context, status=status)


@require_GET
def case_page(request: HttpRequest, code: str) -> HttpResponse:
    granted = _granted(request, code)
    if granted is None:
        return _ask_again(code)
    response = _case_page(request, granted[0])
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def rate(request: HttpRequest, code: str) -> HttpResponse:
    granted = _granted(request, code)
    if granted is None:
        return _ask_again(code)
    case, phone = granted
    form = forms.RateForm(request.POST)
    if not form.is_valid():
        return _case_page(request, case, form, status=400)
    try:
        services.rate_case_by_citizen(
            case=case,
            phone=phone,
            satisfaction=form.cleaned_data["satisfaction"],
            comment=form.cleaned_data["comment"],
        )
    except CaseError as exc:
        form.add_error(None, exc.message)
        case.refresh_from_db()
        return _case_page(request, case, form, status=400)
    return redirect("portal-case", code=case.tracking_code)


@require_GET
def photo(request: HttpRequest, code: str, pk: int, size: str = "full") -> HttpResponseBase:
    """A before or after photo of a case this browser proved code and phone for."""
    granted = _granted(request, code)
    if granted is None:
        raise Http404
    attachment = Attachment.objects.filter(
        pk=pk, case=granted[0], kind__in=portal.PUBLIC_PHOTO_KINDS
    ).first()
    if attachment is None:
        raise Http404
    thumb = size == "thumb" and bool(attachment.thumbnail)
    field = attachment.thumbnail if thumb else attachment.file
    response = FileResponse(
        field.open("rb"), content_type="image/jpeg" if thumb else attachment.content_type
    )
    response["Cache-Control"] = "private, max-age=600"
    return response
