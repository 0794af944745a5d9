"""The dispatcher queue's forms: one case to a unit, or a checked selection to one unit."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from civicgrid.grids.models import HandlingUnit


class _UnitForm(forms.Form):
    unit = forms.TypedChoiceField(
        label=_("派往单位"),
        coerce=int,
        error_messages={
            "required": _("请选择单位"),
            "invalid_choice": _("该单位不可派遣，请重新选择"),
        },
    )

    def __init__(self, *args: Any, units: list[HandlingUnit], **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units if u.is_active}
        cast(forms.ChoiceField, self.fields["unit"]).choices = [
            ("", _("请选择单位")),
            *((pk, u.name) for pk, u in self.units.items()),
        ]

    @property
    def chosen_unit(self) -> HandlingUnit:
        return self.units[self.cleaned_data["unit"]]

    def first_error(self) -> str:
        return next((str(m) for errors in self.errors.values() for m in errors), "")


class DispatchRowForm(_UnitForm):
    """One row's select and button; ``version`` is the case as the queue showed it."""

    version = forms.IntegerField(widget=forms.HiddenInput)


class BulkDispatchForm(_UnitForm):
    """The checked rows (``case``, checkboxes of the table) to one unit."""

    case = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={
            "required": _("请先勾选要派遣的案件"),
            "invalid_choice": _("所选案件无效，请刷新后重试"),
        },
    )

    def __init__(self, *args: Any, units: list[HandlingUnit], **kwargs: Any) -> None:
        super().__init__(*args, units=units, **kwargs)
        # Any number: which of them the user may dispatch is the service's to say.
        data = args[0] if args else None
        picked = data.getlist("case") if data is not None and hasattr(data, "getlist") else []
        cast(forms.ChoiceField, self.fields["case"]).choices = [
            (v, v) for v in picked if str(v).isdigit() and len(str(v)) <= 18
        ]
