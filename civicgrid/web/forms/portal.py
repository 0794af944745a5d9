"""The citizen portal's forms: report a problem, find a case, rate the result.

Every field refuses bad input with a message in the citizen's words; photos are
checked here already (``process_image``), so a refused photo is reported next to
its field before anything is stored.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicgrid.cases.attachments import ProcessedImage, process_image
from civicgrid.cases.errors import AttachmentError
from civicgrid.cases.models import Category, Channel
from civicgrid.cases.services import Intake
from civicgrid.cases.services.citizen import (
    COMMENT_MAX_LENGTH,
    is_tracking_code,
    normalize_phone,
    normalize_tracking_code,
)
from civicgrid.grids import crs, locator
from civicgrid.web.portal import SATISFACTION_CHOICES

#: A mobile number, or a landline with its area code (digits only, after normalising).
PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{9,11})$")
TOKEN = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")
DESCRIPTION_MIN, DESCRIPTION_MAX = 5, 2000


def _clean_phone(value: str) -> str:
    phone = normalize_phone(value)
    if not PHONE.match(phone):
        raise forms.ValidationError(
            _("请填写正确的手机号码（11 位），或带区号的固定电话"), code="invalid"
        )
    return phone


# -- the forms -------------------------------------------------------------------------------
class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several photos in one input; each is checked by ``process_image`` in the form."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        single = super().clean
        files = data if isinstance(data, list | tuple) else [data]
        return [single(item, initial) for item in files if item]


def new_form_token() -> str:
    """A random token the report form carries, so a form sent twice makes one case."""
    return secrets.token_urlsafe(16)


class ReportForm(forms.Form):
    major = forms.ModelChoiceField(
        queryset=Category.objects.active().majors(),
        error_messages={
            "required": gettext_lazy("请选择问题大类"),
            "invalid_choice": gettext_lazy("请重新选择问题大类"),
        },
    )
    category = forms.ModelChoiceField(
        queryset=Category.objects.active().minors().filter(parent__is_active=True),
        error_messages={
            "required": gettext_lazy("请选择问题小类"),
            "invalid_choice": gettext_lazy("请重新选择问题小类"),
        },
    )
    description = forms.CharField(
        min_length=DESCRIPTION_MIN,
        max_length=DESCRIPTION_MAX,
        error_messages={
            "required": gettext_lazy("请描述您发现的问题"),
            "min_length": gettext_lazy("请把问题描述得具体一些（至少 %(limit_value)d 个字）"),
            "max_length": gettext_lazy("问题描述不能超过 %(limit_value)d 个字"),
        },
    )
    lon = forms.FloatField(
        required=False,
        min_value=-180,
        max_value=180,
        error_messages={"invalid": gettext_lazy("位置无效，请在地图上重新选择")},
    )
    lat = forms.FloatField(
        required=False,
        min_value=-90,
        max_value=90,
        error_messages={"invalid": gettext_lazy("位置无效，请在地图上重新选择")},
    )
    address = forms.CharField(
        required=False,
        max_length=300,
        error_messages={"max_length": gettext_lazy("地址不能超过 %(limit_value)d 个字")},
    )
    photos = MultiplePhotoField(
        required=False,
        error_messages={
            "empty": gettext_lazy("所选的文件是空的，请重新选择照片"),
            "invalid": gettext_lazy("照片上传不完整，请重新选择"),
        },
    )
    name = forms.CharField(
        required=False,
        max_length=50,
        error_messages={"max_length": gettext_lazy("称呼不能超过 %(limit_value)d 个字")},
    )
    phone = forms.CharField(
        max_length=30,
        error_messages={
            "required": gettext_lazy("请填写联系电话，用于查询办理进度和回访"),
            "max_length": gettext_lazy("请填写正确的手机号码（11 位），或带区号的固定电话"),
        },
    )
    confidential = forms.BooleanField(required=False)
    #: A honeypot: hidden from people, filled in by bots.
    website = forms.CharField(required=False)
    token = forms.CharField(required=False, max_length=64)

    def clean_phone(self) -> str:
        return _clean_phone(self.cleaned_data["phone"])

    def clean_token(self) -> str:
        token: str = self.cleaned_data.get("token") or ""
        return token if TOKEN.match(token) else ""

    def clean_photos(self) -> list[ProcessedImage]:
        uploads: list[UploadedFile] = self.cleaned_data.get("photos") or []
        limit: int = settings.CIVICGRID_PORTAL_MAX_PHOTOS
        if len(uploads) > limit:
            raise forms.ValidationError(
                _("一次最多上传 %(max)s 张照片，您选择了 %(n)s 张")
                % {"max": limit, "n": len(uploads)},
                code="too_many",
            )
        images: list[ProcessedImage] = []
        problems: list[str] = []
        for index, upload in enumerate(uploads, start=1):
            try:
                images.append(
                    process_image(upload, filename=upload.name or _("第 %(i)s 张") % {"i": index})
                )
            except AttachmentError as exc:
                problems.append(exc.message)
        if problems:
            raise forms.ValidationError(problems)
        return images

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("website"):
            raise forms.ValidationError(_("提交失败，请刷新页面后重试"), code="bot")
        major, category = data.get("major"), data.get("category")
        if major is not None and category is not None and category.parent_id != major.pk:
            self.add_error("category", _("请在所选大类下选择小类"))
        self._clean_location(data)
        return data

    def _clean_location(self, data: dict[str, Any]) -> None:
        if "lon" in self.errors or "lat" in self.errors:
            return
        lon, lat = data.get("lon"), data.get("lat")
        if (lon is None) != (lat is None):
            self.add_error("lon", _("位置无效，请在地图上重新选择"))
            return
        if lon is None or lat is None:
            if not data.get("address", "").strip():
                self.add_error(
                    "lon", _("请在地图上标出问题位置、使用当前位置，或在下面填写详细地址")
                )
            return
        try:
            where = locator.locate(lon, lat, crs.WGS84)
        except ValueError:
            where = None
        if where is None or not where.inside:
            self.add_error(
                "lon",
                _("您标出的位置不在本区管辖范围内，请在地图上的辖区范围内重新选择，或填写地址"),
            )

    def intake(self) -> Intake:
        data = self.cleaned_data
        token = data.get("token") or ""
        key = None
        if token:
            # The phone is part of the key: another form's token makes no other's case.
            key = (
                "portal:" + salted_hmac("civicgrid.portal.form", token + data["phone"]).hexdigest()
            )
        return Intake(
            channel=Channel.WEB,
            category=data["category"],
            description=data["description"],
            address=data.get("address") or "",
            lon=data.get("lon"),
            lat=data.get("lat"),
            crs=crs.WGS84,
            requester_name=data.get("name") or "",
            requester_phone=data["phone"],
            is_confidential=bool(data.get("confidential")),
            idempotency_key=key,
        )


class TrackForm(forms.Form):
    code = forms.CharField(max_length=32, error_messages={"required": gettext_lazy("请输入查询码")})
    phone = forms.CharField(
        max_length=30,
        error_messages={"required": gettext_lazy("请输入反映问题时留下的联系电话")},
    )

    def clean_code(self) -> str:
        code = normalize_tracking_code(self.cleaned_data["code"])
        if not is_tracking_code(code):
            raise forms.ValidationError(
                _("查询码由 10 位大写字母和数字组成，请核对后重新输入"), code="format"
            )
        return code

    def clean_phone(self) -> str:
        return _clean_phone(self.cleaned_data["phone"])


class RateForm(forms.Form):
    satisfaction = forms.TypedChoiceField(
        choices=SATISFACTION_CHOICES,
        coerce=int,
        error_messages={
            "required": gettext_lazy("请选择您对办理结果的满意程度"),
            "invalid_choice": gettext_lazy("请选择您对办理结果的满意程度"),
        },
    )
    comment = forms.CharField(
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        error_messages={"max_length": gettext_lazy("评价内容不能超过 %(limit_value)d 个字")},
    )
