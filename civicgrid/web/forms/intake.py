"""The call-taker's intake form (``/intake/``): one phone call, one case.

The form takes what the caller says and one decision: 受理 (create and accept),
不予受理 (create and reject, with a reason), 保存待受理 (create only), or 并入此案
(create and merge into an existing case). ``run()`` makes the service calls in one
transaction, so a refused accept or merge leaves no half-taken case behind.

Why a repeat call is created and merged rather than written as a note on the
original: 12345 practice registers every call as its own work order (工单) and
merges repeats (重复工单并单办理). The caller then has a record of their own call
(its number, their contact, the hotline's order number), call volumes and
repeat-call counts stay right in the statistics, and the follow-up (回访) can
reach every caller. ``merge_case`` also notes the merge on the original's timeline.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.access import roles_on_case, visible_cases
from civicgrid.cases.errors import CaseError, IntakeError
from civicgrid.cases.models import Case, Category, Channel, RequestType, Status, Urgency
from civicgrid.grids import crs, locator
from civicgrid.web.forms.case_actions import CRS_CHOICES

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

ACCEPT, REJECT, SAVE, MERGE = "accept", "reject", "save", "merge"
DECISIONS = (ACCEPT, REJECT, SAVE)
#: A mobile number, or a landline (with or without its area code); digits after cleaning.
PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{9,11}|\d{7,8})$")
TOKEN = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")


def new_token() -> str:
    """A random token the form carries, so a form sent twice makes one case."""
    return secrets.token_urlsafe(16)


class IntakeFieldError(IntakeError):
    """A refusal that belongs next to one field of the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IntakeForm(forms.Form):
    channel = forms.ChoiceField(
        label=gettext_lazy("来源渠道"), choices=Channel.choices, initial=Channel.HOTLINE
    )
    external_id = forms.CharField(
        label=gettext_lazy("热线工单号"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    request_type = forms.ChoiceField(
        label=gettext_lazy("诉求类型"),
        choices=RequestType.choices,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("请选择诉求类型")},
    )
    urgency = forms.ChoiceField(
        label=gettext_lazy("紧急程度"),
        choices=Urgency.choices,
        initial=Urgency.NORMAL,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("请选择紧急程度")},
    )
    description = forms.CharField(
        label=gettext_lazy("问题描述"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "autofocus": True}),
        error_messages={"required": gettext_lazy("请填写问题描述")},
    )
    #: The typed search (kept as typed); the pick goes to ``category``.
    category_q = forms.CharField(
        label=gettext_lazy("问题类别"),
        required=False,
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    category = forms.CharField(
        required=False,
        max_length=32,
        widget=forms.HiddenInput,
    )
    address = forms.CharField(
        label=gettext_lazy("地址或社区、网格名称"),
        required=False,
        max_length=300,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    lon = forms.FloatField(
        label=gettext_lazy("经度"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"invalid": gettext_lazy("请输入数字形式的经度，如 103.825")},
    )
    lat = forms.FloatField(
        label=gettext_lazy("纬度"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"invalid": gettext_lazy("请输入数字形式的纬度，如 35.975")},
    )
    crs = forms.ChoiceField(label=gettext_lazy("坐标系"), choices=CRS_CHOICES, initial=crs.WGS84)
    requester_name = forms.CharField(
        label=gettext_lazy("诉求人"),
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    requester_phone = forms.CharField(
        label=gettext_lazy("联系电话"),
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    is_confidential = forms.BooleanField(label=gettext_lazy("要求保密"), required=False)
    reject_reason = forms.CharField(
        label=gettext_lazy("不予受理理由"),
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        #: The category picked (also on a form sent back with errors, to show its path).
        self.category_obj: Category | None = None
        #: The case a repeat call is to be merged into.
        self.merge_target: Case | None = None
        self.decision = ""

    # -- fields ---------------------------------------------------------------------------
    def clean_category(self) -> Category | None:
        code = self.cleaned_data.get("category", "").strip()
        if not code:
            return None
        category = (
            Category.objects.active()
            .filter(code=code, parent__isnull=False, parent__is_active=True)
            .select_related("parent")
            .first()
        )
        if category is None:
            raise forms.ValidationError(_("找不到类别“%(code)s”，请重新选择") % {"code": code})
        self.category_obj = category
        return category

    def clean_requester_phone(self) -> str:
        raw = self.cleaned_data.get("requester_phone", "")
        phone = re.sub(r"[\s\-()（）]", "", raw)
        if phone and not PHONE.match(phone):
            raise forms.ValidationError(_("请填写正确的手机号码（11 位）或固定电话"))
        return phone

    def clean_token(self) -> str:
        token: str = self.cleaned_data.get("token") or ""
        return token if TOKEN.match(token) else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.decision = self._decision()
        if "category" not in self.errors and data.get("category") is None:
            self.add_error("category_q", _("请选择类别（小类）"))
        if self.decision == REJECT:
            self._require(data, "reject_reason", _("请填写不予受理的理由"))
        self._clean_location(data)
        if self.decision == MERGE:
            self._clean_merge_target()
        return data

    def _decision(self) -> str:
        if self.data.get("merge_into"):
            return MERGE
        decision = self.data.get("decision", ACCEPT)
        return decision if decision in DECISIONS else ACCEPT

    def _require(self, data: dict[str, Any], name: str, message: str) -> None:
        if name not in self.errors and not str(data.get(name) or "").strip():
            self.add_error(name, message)

    def _clean_location(self, data: dict[str, Any]) -> None:
        if "lon" in self.errors or "lat" in self.errors:
            return
        lon, lat = data.get("lon"), data.get("lat")
        if lon is None and lat is None:
            if self.decision in (ACCEPT, MERGE):
                self.add_error("lon", _("受理前请先确定位置：点击地图、搜索地址或社区，或输入坐标"))
            return
        if lon is None or lat is None:
            self.add_error("lat" if lat is None else "lon", _("经度和纬度须同时填写"))
            return
        try:
            where = locator.locate(lon, lat, data.get("crs") or crs.WGS84)
        except ValueError as exc:
            self.add_error("lon", str(exc))
            return
        if not where.inside:
            self.add_error("lon", _("不在辖区内"))

    def _clean_merge_target(self) -> None:
        raw = str(self.data.get("merge_into", ""))
        valid = raw.isdigit() and len(raw) <= 18  # an id, not a number to overflow the column
        target = visible_cases(self.user).filter(pk=int(raw)).first() if valid else None
        if target is None:
            self.add_error(None, _("找不到要并入的案件，请刷新疑似重复列表后重试"))
        self.merge_target = target

    # -- the service calls ------------------------------------------------------------------
    def _idempotency_key(self) -> str | None:
        token = self.cleaned_data.get("token") or ""
        return f"intake:{self.user.pk}:{token}" if token else None

    def intake(self) -> services.Intake:
        data = self.cleaned_data
        return services.Intake(
            channel=data["channel"],
            category=data["category"],
            description=data["description"],
            urgency=data["urgency"],
            request_type=data["request_type"],
            address=data.get("address") or "",
            lon=data.get("lon"),
            lat=data.get("lat"),
            crs=data.get("crs") or crs.WGS84,
            requester_name=data.get("requester_name") or "",
            requester_phone=data.get("requester_phone") or "",
            is_confidential=bool(data.get("is_confidential")),
            external_id=data.get("external_id") or "",
            idempotency_key=self._idempotency_key(),
        )

    def run(self) -> Case:
        """Create the case and take the decision, all or nothing. Raises ``CaseError``
        (``error_field_for`` says where to show it)."""
        with transaction.atomic():
            case, created = services.create_case(data=self.intake(), actor=self.user)
            if not created:
                key = self._idempotency_key()
                if key is not None and case.idempotency_key == key:
                    return case  # the same form sent twice: the case already taken in
                raise IntakeFieldError(
                    "external_id", _("该渠道的工单号已登记为案件 %(n)s") % {"n": case.number}
                )
            if not roles_on_case(self.user, case):
                raise IntakeFieldError("lon", _("该位置不在您的受理范围内"))
            if self.decision == ACCEPT:
                return services.accept_case(case=case, actor=self.user)
            if self.decision == REJECT:
                return services.reject_case(
                    case=case, actor=self.user, reason=self.cleaned_data["reject_reason"]
                )
            if self.decision == MERGE:
                into = cast(Case, self.merge_target)
                return services.merge_case(case=case, into=into, actor=self.user)
            return case

    def error_field_for(self, exc: CaseError) -> str | None:
        """Where a refusal of the services belongs on the page (``None``: above the
        decision buttons)."""
        if isinstance(exc, IntakeFieldError):
            return exc.field
        if self.decision == REJECT:
            return "reject_reason"
        return None


OUTCOMES: dict[str, StrOrPromise] = {
    Status.FILED: gettext_lazy("已受理，待派遣"),
    Status.REJECTED: gettext_lazy("不予受理"),
    Status.NEW: gettext_lazy("已保存，待受理"),
    Status.MERGED: gettext_lazy("已并入原案件"),
}
