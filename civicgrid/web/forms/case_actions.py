"""One small form per action on the case page, each calling its service.

``ACTIONS`` lists them in the order the page shows them; each names the workflow
actions (``workflow.TRANSITIONS``) that make it available, so the page offers
exactly what ``selectors.available_actions`` allows. ``run()`` makes the one
service call; the view maps its domain errors to ``error_field``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from civicgrid.accounts.models import User
from civicgrid.cases import selectors, services
from civicgrid.cases.access import visible_cases
from civicgrid.cases.errors import AttachmentError, CaseError
from civicgrid.cases.models import (
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    TimeUnit,
)
from civicgrid.grids import crs
from civicgrid.grids.access import visible_units
from civicgrid.grids.models import HandlingUnit

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: 回访 levels, most satisfied first (the value is what ``follow_up_case`` stores).
SATISFACTION = [
    ("5", _("非常满意")),
    ("4", _("满意")),
    ("3", _("基本满意")),
    ("2", _("不满意")),
    ("1", _("非常不满意")),
]
CRS_CHOICES = [
    (crs.WGS84, _("WGS-84（GPS）")),
    (crs.CGCS2000, _("CGCS2000（天地图）")),
    (crs.GCJ02, _("GCJ-02（高德、腾讯地图）")),
    (crs.BD09, _("BD-09（百度地图）")),
]
DECISIONS = [("approve", _("批准")), ("deny", _("驳回"))]
VERDICTS = [("pass", _("通过")), ("fail", _("不通过"))]


#: Under a text the citizen will read on the portal and in the Open311 feed (masked of
#: phone and ID numbers, e-mail addresses and names, see ``open311.privacy``).
PUBLIC_HELP = _("市民查询进度时可见（电话、身份证号、姓名会被隐去）")
INTERNAL_HELP = _("仅工作人员可见")
PUBLIC_IF_PASSED_HELP = _(
    "核查通过时市民查询进度可见（电话、身份证号、姓名会被隐去），不通过时仅工作人员可见"
)


def _reason(
    label: StrOrPromise, *, required: bool = True, public: bool = False, help_text: Any = ""
) -> forms.CharField:
    """A reason: the service says when it is missing, next to this field; the browser
    asks first. ``public``: the citizen reads it (the help text says so)."""
    attrs = {"rows": 2, "maxlength": 1000}
    if required:
        attrs["required"] = True
    return forms.CharField(
        label=label,
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs=attrs),
        help_text=help_text or (PUBLIC_HELP if public else ""),
    )


def _note(*, public: bool) -> forms.CharField:
    """An optional note; whether the citizen will read it is said under the field."""
    return forms.CharField(
        label=_("说明（可不填）"),
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=PUBLIC_HELP if public else INTERNAL_HELP,
    )


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotoField(forms.FileField):
    """Photos from the phone camera or the disk; the service checks them as images."""

    def __init__(self, **kwargs: Any) -> None:
        attrs = {"accept": "image/*", "capture": "environment", "multiple": True}
        kwargs.setdefault("widget", MultiplePhotoInput(attrs=attrs))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(PhotoField, self).clean(f, initial) for f in files if f]


class ActionForm(forms.Form):
    """The base: the case's ``version`` as the page showed it, to refuse a stale page."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    #: Where a domain error of the service is shown (``None``: above the fields).
    error_field: ClassVar[str | None] = None

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("version", case.version)
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.case = case
        self.user = user

    def error_field_for(self, exc: CaseError) -> str | None:
        if isinstance(exc, AttachmentError) and "photos" in self.fields:
            return "photos"
        return self.error_field

    def run(self) -> Any:
        raise NotImplementedError

    def text(self, name: str) -> str:
        return str(self.cleaned_data.get(name) or "")


class AcceptForm(ActionForm):
    note = _note(public=True)

    def run(self) -> Any:
        return services.accept_case(case=self.case, actor=self.user, note=self.text("note"))


class RejectForm(ActionForm):
    reason = _reason(_("不予受理理由"), public=True)
    error_field = "reason"

    def run(self) -> Any:
        return services.reject_case(case=self.case, actor=self.user, reason=self.text("reason"))


class LocateForm(ActionForm):
    lon = forms.FloatField(
        label=_("经度"), widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 12})
    )
    lat = forms.FloatField(
        label=_("纬度"), widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 12})
    )
    crs = forms.ChoiceField(label=_("坐标系"), choices=CRS_CHOICES, initial=crs.WGS84)
    error_field = "lon"

    def run(self) -> Any:
        data = self.cleaned_data
        return services.locate_case(
            case=self.case, actor=self.user, lon=data["lon"], lat=data["lat"], crs=data["crs"]
        )


class DispatchForm(ActionForm):
    unit = forms.TypedChoiceField(label=_("主办单位"), coerce=int)
    assisting = forms.TypedMultipleChoiceField(
        label=_("协办单位（可多选）"),
        coerce=int,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 3}),
    )
    note = _note(public=True)
    error_field = "unit"

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        initial = kwargs.setdefault("initial", {})
        if case.suggested_unit_id:
            initial.setdefault("unit", case.suggested_unit_id)
        super().__init__(*args, case=case, user=user, **kwargs)
        self.units = {u.pk: u for u in visible_units(user) if u.is_active}
        choices = [(pk, u.name) for pk, u in self.units.items()]
        cast(forms.ChoiceField, self.fields["unit"]).choices = [("", _("请选择单位")), *choices]
        cast(forms.ChoiceField, self.fields["assisting"]).choices = choices
        if case.suggested_unit_id in self.units:
            self.fields["unit"].help_text = _("建议：%(unit)s（按派单目录）") % {
                "unit": self.units[case.suggested_unit_id].name
            }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("unit") and data["unit"] in (data.get("assisting") or []):
            self.add_error("assisting", _("主办单位不能同时是协办单位"))
        return data

    def run(self) -> Any:
        data = self.cleaned_data
        unit: HandlingUnit = self.units[data["unit"]]
        return services.dispatch_case(
            case=self.case,
            actor=self.user,
            unit=unit,
            assisting=[self.units[pk] for pk in data.get("assisting") or []],
            note=self.text("note"),
        )


class AcknowledgeForm(ActionForm):
    def run(self) -> Any:
        return services.acknowledge_case(case=self.case, actor=self.user)


class SendBackForm(ActionForm):
    reason = _reason(_("回退理由"))
    error_field = "reason"

    def run(self) -> Any:
        return services.send_back_case(case=self.case, actor=self.user, reason=self.text("reason"))


class RequestExtensionForm(ActionForm):
    reason = _reason(_("延期理由"))
    extra_amount = forms.DecimalField(
        label=_("延长时限"),
        max_digits=7,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.5", "min": "0.5", "inputmode": "decimal"}),
    )
    error_field = "reason"

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        super().__init__(*args, case=case, user=user, **kwargs)
        running = case.deadlines.filter(finished_at__isnull=True).first()
        if running is not None:
            self.fields["extra_amount"].help_text = _("单位：%(unit)s") % {
                "unit": TimeUnit(running.unit).label
            }

    def clean_extra_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["extra_amount"]
        if amount <= 0:
            raise forms.ValidationError(_("延长时限须大于零"))
        return amount

    def run(self) -> Any:
        return services.request_extension(
            case=self.case,
            actor=self.user,
            reason=self.text("reason"),
            extra_amount=self.cleaned_data["extra_amount"],
        )


class DecisionForm(ActionForm):
    """Approve or deny the pending request of ``kind``, shown above the choice."""

    kind: ClassVar[str]
    decision = forms.ChoiceField(
        label=_("审批意见"), choices=DECISIONS, widget=forms.RadioSelect, initial="approve"
    )
    note = _reason(_("审批说明（驳回时必填）"), required=False)
    error_field = "note"

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        super().__init__(*args, case=case, user=user, **kwargs)
        self.pending: Approval | None = (
            case.approvals.filter(kind=self.kind, status=ApprovalStatus.PENDING)
            .select_related("requested_by")
            .first()
        )

    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"


class DecideExtensionForm(DecisionForm):
    kind = ApprovalKind.EXTENSION

    def run(self) -> Any:
        return services.decide_extension(
            case=self.case, actor=self.user, approve=self.approve(), note=self.text("note")
        )


class ParkForm(ActionForm):
    reason = _reason(_("挂账理由"))
    error_field = "reason"

    def run(self) -> Any:
        return services.park_case(case=self.case, actor=self.user, reason=self.text("reason"))


class ResumeForm(ActionForm):
    note = _note(public=False)

    def run(self) -> Any:
        return services.resume_case(case=self.case, actor=self.user, note=self.text("note"))


class HandleForm(ActionForm):
    result = forms.CharField(
        label=_("处置结果"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "required": True}),
        help_text=PUBLIC_HELP,
    )
    photos = PhotoField(label=_("处置后照片"), help_text=_("可拍照或选择多张照片"))
    error_field = "result"

    def run(self) -> Any:
        return services.handle_case(
            case=self.case,
            actor=self.user,
            result=self.text("result"),
            photos=self.cleaned_data.get("photos") or [],
        )


class VerifyForm(ActionForm):
    verdict = forms.ChoiceField(label=_("核查结果"), choices=VERDICTS, widget=forms.RadioSelect)
    note = _reason(_("核查说明（不通过时必填）"), required=False, help_text=PUBLIC_IF_PASSED_HELP)
    photos = PhotoField(label=_("现场照片"))
    error_field = "note"

    def run(self) -> Any:
        return services.verify_case(
            case=self.case,
            actor=self.user,
            passed=self.cleaned_data["verdict"] == "pass",
            note=self.text("note"),
            photos=self.cleaned_data.get("photos") or [],
        )


class CloseForm(ActionForm):
    note = _note(public=True)

    def run(self) -> Any:
        return services.close_case(case=self.case, actor=self.user, note=self.text("note"))


class FollowUpForm(ActionForm):
    satisfaction = forms.TypedChoiceField(
        label=_("满意度"), choices=SATISFACTION, coerce=int, widget=forms.RadioSelect
    )
    note = _note(public=False)
    error_field = "satisfaction"

    def run(self) -> Any:
        return services.follow_up_case(
            case=self.case,
            actor=self.user,
            satisfaction=self.cleaned_data["satisfaction"],
            note=self.text("note"),
        )


class ReopenForm(ActionForm):
    reason = _reason(_("重办理由"), public=True)
    error_field = "reason"

    def run(self) -> Any:
        return services.reopen_case(case=self.case, actor=self.user, reason=self.text("reason"))


class UrgeForm(ActionForm):
    reason = _reason(_("督办意见"))
    error_field = "reason"

    def run(self) -> Any:
        return services.urge_case(case=self.case, actor=self.user, reason=self.text("reason"))


class RequestVoidForm(ActionForm):
    reason = _reason(_("作废理由"))
    error_field = "reason"

    def run(self) -> Any:
        return services.request_void(case=self.case, actor=self.user, reason=self.text("reason"))


class DecideVoidForm(DecisionForm):
    kind = ApprovalKind.VOID

    def run(self) -> Any:
        return services.decide_void(
            case=self.case, actor=self.user, approve=self.approve(), note=self.text("note")
        )


class MergeForm(ActionForm):
    into = forms.CharField(
        label=_("并入案件编号"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    note = _note(public=False)
    error_field = "into"

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        super().__init__(*args, case=case, user=user, **kwargs)
        found = selectors.possible_duplicates(
            category=case.category,
            lon=case.lon,
            lat=case.lat,
            at=case.received_at,
            exclude_id=case.pk,
            limit=5,
        )
        visible = set(
            visible_cases(user)
            .filter(pk__in=[c.pk for c, _m in found])
            .values_list("pk", flat=True)
        )
        #: Possible duplicates the user may see, nearest first: (case, metres).
        self.candidates = [(c, round(m)) for c, m in found if c.pk in visible]
        if self.candidates:
            self.fields["into"].widget.attrs["list"] = f"merge-candidates-{case.pk}"
            self.fields["into"].help_text = _("疑似重复：%(cases)s") % {
                "cases": "、".join(
                    _("%(n)s（%(m)s 米）") % {"n": c.number, "m": m} for c, m in self.candidates
                )
            }

    def clean_into(self) -> Case:
        number = self.cleaned_data["into"].strip()
        target = visible_cases(self.user).filter(number=number).first()
        if target is None:
            raise forms.ValidationError(_("找不到编号为 %(n)s 的案件") % {"n": number})
        return target

    def run(self) -> Any:
        return services.merge_case(
            case=self.case, into=self.cleaned_data["into"], actor=self.user, note=self.text("note")
        )


@dataclass(frozen=True)
class ActionSpec:
    #: The URL's action slug.
    name: str
    label: str | Promise
    form_class: type[ActionForm]
    #: The workflow actions that make this form available.
    triggers: frozenset[str]
    #: Shown open (the main thing to do); the others fold away until clicked.
    primary: bool = False
    #: Ends or undoes something: a quieter, red button.
    danger: bool = False


def _spec(
    name: str,
    label: str | Promise,
    form_class: type[ActionForm],
    *triggers: str,
    primary: bool = False,
    danger: bool = False,
) -> ActionSpec:
    return ActionSpec(name, label, form_class, frozenset(triggers), primary, danger)


ACTIONS: dict[str, ActionSpec] = {
    s.name: s
    for s in [
        _spec("accept", _("受理"), AcceptForm, Action.ACCEPT, primary=True),
        _spec("locate", _("人工定位"), LocateForm, Action.LOCATE),
        _spec(
            "dispatch", _("派遣"), DispatchForm, Action.DISPATCH, Action.REDISPATCH, primary=True
        ),
        _spec("acknowledge", _("签收"), AcknowledgeForm, Action.ACKNOWLEDGE, primary=True),
        _spec("handle", _("处置反馈"), HandleForm, Action.HANDLE, primary=True),
        _spec(
            "verify",
            _("提交核查结果"),
            VerifyForm,
            Action.VERIFY_PASS,
            Action.VERIFY_FAIL,
            primary=True,
        ),
        _spec("close", _("结案"), CloseForm, Action.CLOSE, primary=True),
        _spec("follow_up", _("记录回访"), FollowUpForm, Action.FOLLOW_UP, primary=True),
        _spec(
            "decide_extension",
            _("审批延期"),
            DecideExtensionForm,
            Action.APPROVE_EXTENSION,
            Action.DENY_EXTENSION,
            primary=True,
        ),
        _spec(
            "decide_void",
            _("审批作废"),
            DecideVoidForm,
            Action.APPROVE_VOID,
            Action.DENY_VOID,
            primary=True,
        ),
        _spec("resume", _("恢复办理"), ResumeForm, Action.RESUME, primary=True),
        _spec("send_back", _("回退"), SendBackForm, Action.SEND_BACK, danger=True),
        _spec("request_extension", _("申请延期"), RequestExtensionForm, Action.REQUEST_EXTENSION),
        _spec("reopen", _("重办"), ReopenForm, Action.REOPEN),
        _spec("urge", _("督办"), UrgeForm, Action.URGE),
        _spec("park", _("挂账"), ParkForm, Action.PARK),
        _spec("merge", _("并单"), MergeForm, Action.MERGE, danger=True),
        _spec("reject", _("不予受理"), RejectForm, Action.REJECT, danger=True),
        _spec("request_void", _("申请作废"), RequestVoidForm, Action.REQUEST_VOID, danger=True),
    ]
}


def offered(actions: list[str]) -> list[ActionSpec]:
    """The forms for the workflow ``actions`` a user may take now, in page order."""
    allowed = set(actions)
    specs = [spec for spec in ACTIONS.values() if spec.triggers & allowed]
    return sorted(specs, key=lambda spec: not spec.primary)  # the main things first
