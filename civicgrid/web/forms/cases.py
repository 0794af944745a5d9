"""The filters of every case list (``web/cases/_filters.html``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicgrid.accounts.models import User
from civicgrid.cases.models import Category, Channel, Status
from civicgrid.cases.selectors import NEWEST, SORT_LABELS, SORTS, CaseFilters
from civicgrid.grids.access import scope_roots, visible_units
from civicgrid.grids.models import Grid, Level

ANY = [("", _("全部"))]


def category_choices() -> list[tuple[str, Any]]:
    """大类 as options (all its 小类), each followed by its 小类, grouped by 大类 (one query)."""
    rows = list(Category.objects.active().order_by("sort_order", "code"))
    children: dict[int, list[Category]] = defaultdict(list)
    for c in rows:
        if c.parent_id is not None:
            children[c.parent_id].append(c)
    groups: list[tuple[str, Any]] = []
    for major in (c for c in rows if c.parent_id is None):
        options = [(major.code, _("%(name)s（全部小类）") % {"name": major.name})]
        options += [(minor.code, f"{minor.code} {minor.name}") for minor in children[major.pk]]
        groups.append((f"{major.code} {major.name}", options))
    return groups


def _choices(form: forms.Form, name: str, choices: list[tuple[Any, Any]]) -> None:
    cast(forms.ChoiceField, form.fields[name]).choices = choices


def date_start(day: date) -> datetime:
    """The start of ``day`` in local time."""
    return timezone.make_aware(datetime.combine(day, time.min))


class CaseFilterForm(forms.Form):
    q = forms.CharField(
        label=_("关键词"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": _("案件编号、描述、地址"),
                "autocomplete": "off",
            }
        ),
    )
    status = forms.MultipleChoiceField(
        label=_("状态"),
        required=False,
        choices=Status.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    category = forms.ChoiceField(label=_("类别"), required=False)
    unit = forms.TypedChoiceField(label=_("处置单位"), required=False, coerce=int, empty_value=None)
    grid = forms.TypedChoiceField(label=_("区域"), required=False, coerce=int, empty_value=None)
    channel = forms.ChoiceField(label=_("来源"), required=False, choices=ANY + Channel.choices)
    overdue = forms.BooleanField(label=_("只看超期"), required=False)
    received_from = forms.DateField(
        label=_("接收日期从"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        label=_("至"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(label=_("排序"), required=False)

    def __init__(self, data: Any, *, user: User, default_sort: str = NEWEST) -> None:
        data = data.copy()
        if not data.get("sort"):
            data["sort"] = default_sort
        super().__init__(data, auto_id="cf_%s", label_suffix="")
        self.default_sort = default_sort
        _choices(self, "category", ANY + category_choices())
        _choices(self, "sort", [(k, SORT_LABELS[k]) for k in SORTS])
        units = [u for u in visible_units(user) if u.is_active]
        _choices(self, "unit", ANY + [(u.pk, u.name) for u in units])
        self.grids = {g.pk: g for g in self._grids(user)}
        _choices(
            self,
            "grid",
            ANY + [(g.pk, "　" * max(0, g.level - 1) + g.name) for g in self.grids.values()],
        )

    @staticmethod
    def _grids(user: User) -> list[Grid]:
        """The subdistricts and communities in the user's scope (and the level-3 grids,
        when the scope is a community or smaller)."""
        roots = scope_roots(user)
        levels = [Level.SUBDISTRICT, Level.COMMUNITY]
        if roots and all(r.level >= Level.COMMUNITY for r in roots):
            levels.append(Level.GRID)
        grids = Grid.objects.in_any_subtree(roots).filter(level__in=levels)
        return list(grids.only("id", "name", "level", "path").order_by("path"))

    @property
    def has_grids(self) -> bool:
        return len(self.grids) > 1

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("received_from"), cleaned.get("received_to")
        if start and end and end < start:
            self.add_error("received_to", _("结束日期不能早于开始日期"))
        return cleaned

    def filters(self) -> CaseFilters:
        """The filters of the fields that are valid (an invalid one is shown with its
        error and left out)."""
        self.is_valid()
        data = self.cleaned_data
        to = data.get("received_to")
        grid_id = data.get("grid")
        return CaseFilters(
            status=data.get("status") or (),
            category=data.get("category") or "",
            unit=data.get("unit"),
            grid=self.grids.get(grid_id) if grid_id else None,
            channel=data.get("channel") or "",
            overdue=True if data.get("overdue") else None,
            received_from=date_start(data["received_from"]) if data.get("received_from") else None,
            received_to=date_start(to + timedelta(days=1)) if to else None,
            q=data.get("q") or "",
        )

    def sort_order(self) -> str:
        self.is_valid()
        return self.cleaned_data.get("sort") or self.default_sort

    @property
    def is_narrowed(self) -> bool:
        """Whether any filter is set (the sort does not count)."""
        self.is_valid()
        return any(
            v not in (None, "", [], (), False) for k, v in self.cleaned_data.items() if k != "sort"
        )
