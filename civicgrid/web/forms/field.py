"""The grid worker's 3-tap problem report (``/field/report/``)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.errors import AttachmentError, CaseError, IntakeError
from civicgrid.cases.models import Case, Category, Channel
from civicgrid.grids import crs
from civicgrid.grids.models import Grid
from civicgrid.web.forms.case_actions import PhotoField

#: The 小类 grid workers report most, as the big tiles of the report (in this order);
#: codes missing from the catalogue are left out. The search finds the others.
TILE_CODES = (
    "SJ0102",  # 暴露垃圾
    "SJ0502",  # 占道经营
    "SJ0104",  # 道路不洁
    "SJ0107",  # 乱堆物堆料
    "SJ0201",  # 非法小广告
    "BJ0103",  # 雨水井盖
    "BJ0102",  # 污水井盖
    "BJ0114",  # 路灯
    "SJ0403",  # 道路积水
)


def tile_categories(extra: str = "") -> list[Category]:
    """The tiles' categories (and ``extra``, a code picked by search, first), one query."""
    codes = [extra, *TILE_CODES] if extra and extra not in TILE_CODES else list(TILE_CODES)
    found = {
        c.code: c
        for c in Category.objects.active()
        .filter(code__in=codes, parent__isnull=False)
        .select_related("parent")
    }
    return [found[code] for code in codes if code in found]


class FieldReportForm(forms.Form):
    category = forms.CharField(
        label=_("问题类别"),
        max_length=32,
        error_messages={"required": _("请点选问题类别")},
    )
    photos = PhotoField(label=_("现场照片"))
    description = forms.CharField(
        label=_("补充说明（可不填）"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    lon = forms.FloatField(required=False, widget=forms.HiddenInput)
    lat = forms.FloatField(required=False, widget=forms.HiddenInput)
    grid = forms.TypedChoiceField(label=_("所在网格"), coerce=int)
    self_handle = forms.BooleanField(label=_("当场处理"), required=False)
    result = forms.CharField(
        label=_("处置结果"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    after_photos = PhotoField(label=_("处置后照片"))

    def __init__(self, *args: Any, user: User, grids: list[Grid], **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user
        self.grids = {g.pk: g for g in grids}
        cast(forms.ChoiceField, self.fields["grid"]).choices = [(g.pk, g.name) for g in grids]
        if grids:
            self.fields["grid"].initial = grids[0].pk

    def clean_category(self) -> Category:
        code = self.cleaned_data["category"].strip()
        category = (
            Category.objects.active()
            .filter(code=code, parent__isnull=False)
            .select_related("parent")
            .first()
        )
        if category is None:
            raise forms.ValidationError(_("请点选问题类别"))
        return category

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("lon") is None) != (data.get("lat") is None):
            data["lon"] = data["lat"] = None
        if data.get("self_handle") and not (data.get("result") or "").strip():
            self.add_error("result", _("当场处理须填写处置结果"))
        return data

    def error_field_for(self, exc: CaseError) -> str | None:
        if isinstance(exc, AttachmentError):
            return "photos"
        if isinstance(exc, IntakeError):
            return None
        return "result" if self.cleaned_data.get("self_handle") else None

    def run(self) -> Case:
        data = self.cleaned_data
        category: Category = data["category"]
        lon, lat = data.get("lon"), data.get("lat")
        if lon is None or lat is None:
            # No fix from the phone: the middle of the grid the worker is in.
            grid = self.grids[data["grid"]]
            lon, lat = grid.centroid_lon, grid.centroid_lat
        description = (data.get("description") or "").strip() or str(
            _("网格员现场上报：%(name)s") % {"name": category.name}
        )
        handled = bool(data.get("self_handle"))
        return services.report_by_grid_worker(
            data=services.Intake(
                channel=Channel.GRID_WORKER,
                category=category,
                description=description,
                lon=lon,
                lat=lat,
                crs=crs.WGS84,
            ),
            actor=self.user,
            photos=data.get("photos") or [],
            result=(data.get("result") or "") if handled else "",
            after_photos=(data.get("after_photos") or []) if handled else [],
        )
