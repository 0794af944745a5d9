"""Per-case facts and the rollups summed from them.

A **fact** is what one case contributes to the statistics now: its dimensions
(day of intake, category, lead unit, grid, channel, request type) and its case
counters (``counters.CASE_COUNTERS``); a **person fact** is what one person did on
it on one day (``counters.PERSON_COUNTERS``). ``rollups.refresh_case`` recomputes
both in the transaction of every transition and moves the difference into three
rollups, each a ``GROUP BY`` of the facts, each by grain (day, or month) and period:

- ``GridRollup``: by grid node at every level of the tree: totals, trends and
  choropleths of any subtree.
- ``DimRollup``: by grid node (levels of ``dim_levels``: district, subdistrict) ×
  the value of one dimension (category, unit, channel or request type): the
  breakdowns and league tables of the dashboards.
- ``Rollup``: by grid node (levels of ``rollup_levels``: district, subdistrict) ×
  category × unit × channel × request type: a cube for filtered figures (12345
  cases by category, 城市管理 by unit …) and exports.
- ``PersonRollup``: by grid node (``rollup_levels``) × person × role: positions.

Ids of grids, categories, units and users are plain integers (0: none), so that
keys never hold NULL and the upserts are plain ``ON CONFLICT`` statements.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseCounters(models.Model):
    """``counters.CASE_COUNTERS``, in that order."""

    received = models.IntegerField(default=0)
    open = models.IntegerField(default=0)
    closed = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    voided = models.IntegerField(default=0)
    merged = models.IntegerField(default=0)
    parked = models.IntegerField(default=0)
    deferred = models.IntegerField(default=0)
    filed = models.IntegerField(default=0)
    filed_public = models.IntegerField(default=0)
    dispatched = models.IntegerField(default=0)
    dispatches = models.IntegerField(default=0)
    accurate_dispatches = models.IntegerField(default=0)
    reworked_dispatches = models.IntegerField(default=0)
    sent_back = models.IntegerField(default=0)
    handled = models.IntegerField(default=0)
    reworked = models.IntegerField(default=0)
    reworked_cases = models.IntegerField(default=0)
    ever_closed = models.IntegerField(default=0)
    reopened = models.IntegerField(default=0)
    reopened_cases = models.IntegerField(default=0)
    extension_requests = models.IntegerField(default=0)
    extensions = models.IntegerField(default=0)
    extended_cases = models.IntegerField(default=0)
    urged = models.IntegerField(default=0)
    urged_cases = models.IntegerField(default=0)
    overdue = models.IntegerField(default=0)
    overdue_open = models.IntegerField(default=0)
    closed_ontime = models.IntegerField(default=0)
    followed_up = models.IntegerField(default=0)
    sat_1 = models.IntegerField(default=0)
    sat_2 = models.IntegerField(default=0)
    sat_3 = models.IntegerField(default=0)
    sat_4 = models.IntegerField(default=0)
    sat_5 = models.IntegerField(default=0)
    accept_done = models.IntegerField(default=0)
    accept_ontime = models.IntegerField(default=0)
    accept_overdue_open = models.IntegerField(default=0)
    dispatch_done = models.IntegerField(default=0)
    dispatch_ontime = models.IntegerField(default=0)
    dispatch_overdue_open = models.IntegerField(default=0)
    acknowledge_done = models.IntegerField(default=0)
    acknowledge_ontime = models.IntegerField(default=0)
    acknowledge_overdue_open = models.IntegerField(default=0)
    handle_done = models.IntegerField(default=0)
    handle_ontime = models.IntegerField(default=0)
    handle_overdue_open = models.IntegerField(default=0)
    verify_done = models.IntegerField(default=0)
    verify_ontime = models.IntegerField(default=0)
    verify_overdue_open = models.IntegerField(default=0)
    close_done = models.IntegerField(default=0)
    close_ontime = models.IntegerField(default=0)
    close_overdue_open = models.IntegerField(default=0)
    dur_00 = models.IntegerField(default=0)
    dur_01 = models.IntegerField(default=0)
    dur_02 = models.IntegerField(default=0)
    dur_03 = models.IntegerField(default=0)
    dur_04 = models.IntegerField(default=0)
    dur_05 = models.IntegerField(default=0)
    dur_06 = models.IntegerField(default=0)
    dur_07 = models.IntegerField(default=0)
    dur_08 = models.IntegerField(default=0)
    dur_09 = models.IntegerField(default=0)
    dur_10 = models.IntegerField(default=0)
    dur_11 = models.IntegerField(default=0)
    dur_12 = models.IntegerField(default=0)
    dur_13 = models.IntegerField(default=0)
    dur_14 = models.IntegerField(default=0)
    dur_15 = models.IntegerField(default=0)
    dur_16 = models.IntegerField(default=0)
    dur_17 = models.IntegerField(default=0)
    dur_18 = models.IntegerField(default=0)
    handle_seconds = models.BigIntegerField(default=0)
    work_seconds = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class PersonCounters(models.Model):
    """``counters.PERSON_COUNTERS``, in that order."""

    events = models.IntegerField(default=0)
    reports = models.IntegerField(default=0)
    valid_reports = models.IntegerField(default=0)
    accepts = models.IntegerField(default=0)
    rejects = models.IntegerField(default=0)
    dispatches = models.IntegerField(default=0)
    accurate_dispatches = models.IntegerField(default=0)
    reworked_dispatches = models.IntegerField(default=0)
    acknowledges = models.IntegerField(default=0)
    send_backs = models.IntegerField(default=0)
    handles = models.IntegerField(default=0)
    verifies = models.IntegerField(default=0)
    verify_fails = models.IntegerField(default=0)
    closes = models.IntegerField(default=0)
    follow_ups = models.IntegerField(default=0)
    reopens = models.IntegerField(default=0)
    urges = models.IntegerField(default=0)
    decisions = models.IntegerField(default=0)
    accept_timed = models.IntegerField(default=0)
    accept_ontime = models.IntegerField(default=0)
    dispatch_timed = models.IntegerField(default=0)
    dispatch_ontime = models.IntegerField(default=0)
    acknowledge_timed = models.IntegerField(default=0)
    acknowledge_ontime = models.IntegerField(default=0)
    handle_timed = models.IntegerField(default=0)
    handle_ontime = models.IntegerField(default=0)
    verify_timed = models.IntegerField(default=0)
    verify_ontime = models.IntegerField(default=0)
    close_timed = models.IntegerField(default=0)
    close_ontime = models.IntegerField(default=0)

    class Meta:
        abstract = True


class CaseFact(CaseCounters):
    """What one case contributes to the statistics now."""

    case = models.OneToOneField(
        "cases.Case", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    #: Local (Asia/Shanghai) date of intake, and the first day of its month.
    day = models.DateField()
    month = models.DateField()
    #: The grid's ancestors by level (0 district … 3 grid); 0 where there is none.
    node0 = models.IntegerField(default=0)
    node1 = models.IntegerField(default=0)
    node2 = models.IntegerField(default=0)
    node3 = models.IntegerField(default=0)
    grid_path = models.CharField(max_length=255, blank=True, db_index=True)
    category = models.IntegerField()
    unit = models.IntegerField(default=0)
    channel = models.CharField(max_length=16)
    request_type = models.CharField(max_length=16, blank=True)

    class Meta:
        verbose_name = _("案件统计事实")
        verbose_name_plural = _("案件统计事实")
        # A scope deeper than the rollups is read by its node at its level and days.
        indexes = [
            models.Index(fields=["day"], name="stats_fact_day"),
            models.Index(fields=["node1", "day"], name="stats_fact_node1_day"),
            models.Index(fields=["node2", "day"], name="stats_fact_node2_day"),
            models.Index(fields=["node3", "day"], name="stats_fact_node3_day"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.day}"


class PersonFact(PersonCounters):
    """What one person did on one case on one day."""

    id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="+")
    #: Local date of the actions, and the first day of its month.
    day = models.DateField()
    month = models.DateField()
    user = models.IntegerField()
    role = models.CharField(max_length=32, blank=True)
    node0 = models.IntegerField(default=0)
    node1 = models.IntegerField(default=0)
    node2 = models.IntegerField(default=0)
    node3 = models.IntegerField(default=0)
    grid_path = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        verbose_name = _("人员统计事实")
        verbose_name_plural = _("人员统计事实")
        constraints = [
            models.UniqueConstraint(
                fields=["case", "day", "user", "role"], name="stats_personfact_key"
            )
        ]
        indexes = [
            models.Index(fields=["day"], name="stats_personfact_day"),
            models.Index(fields=["node2", "day"], name="stats_personfact_node2_day"),
            models.Index(fields=["node3", "day"], name="stats_personfact_node3_day"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.day} {self.user} {self.role}"


class Grain(models.TextChoices):
    DAY = "d", _("日")
    MONTH = "m", _("月")


class Rollup(CaseCounters):
    """Case counters by period × grid node × category × unit × channel × request type."""

    id = models.BigAutoField(primary_key=True)
    grain = models.CharField(max_length=1, choices=Grain.choices)
    #: The day, or the first day of the month.
    period = models.DateField()
    level = models.PositiveSmallIntegerField()
    node = models.IntegerField()
    category = models.IntegerField()
    unit = models.IntegerField()
    channel = models.CharField(max_length=16)
    request_type = models.CharField(max_length=16)

    class Meta:
        verbose_name = _("统计汇总")
        verbose_name_plural = _("统计汇总")
        constraints = [
            models.UniqueConstraint(
                fields=["node", "grain", "period", "category", "unit", "channel", "request_type"],
                name="stats_rollup_key",
            )
        ]
        # The key serves a node's periods; this, everything (``scope=None``).
        indexes = [models.Index(fields=["level", "grain", "period"], name="stats_rollup_level")]

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.node}"


class GridRollup(CaseCounters):
    """Case counters by grain × period × grid node, at every level of the tree."""

    id = models.BigAutoField(primary_key=True)
    grain = models.CharField(max_length=1, choices=Grain.choices)
    period = models.DateField()
    level = models.PositiveSmallIntegerField()
    node = models.IntegerField()
    #: The node's parent (0 for a root): the choropleth of a parent's children.
    parent = models.IntegerField()

    class Meta:
        verbose_name = _("网格汇总")
        verbose_name_plural = _("网格汇总")
        constraints = [
            models.UniqueConstraint(fields=["node", "grain", "period"], name="stats_gridrollup_key")
        ]
        indexes = [
            models.Index(fields=["parent", "grain", "period"], name="stats_gridrollup_parent"),
            models.Index(fields=["level", "grain", "period"], name="stats_gridrollup_level"),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.node}"


class Dimension(models.TextChoices):
    CATEGORY = "category", _("类别")
    UNIT = "unit", _("处置单位")
    CHANNEL = "channel", _("渠道")
    REQUEST_TYPE = "request_type", _("诉求类型")


class DimRollup(CaseCounters):
    """Case counters by grain × period × grid node × one dimension's value: the
    breakdowns of the dashboards, a few hundred rows a year whatever the volume."""

    id = models.BigAutoField(primary_key=True)
    grain = models.CharField(max_length=1, choices=Grain.choices)
    period = models.DateField()
    level = models.PositiveSmallIntegerField()
    node = models.IntegerField()
    dim = models.CharField(max_length=16, choices=Dimension.choices)
    #: The value: a category or unit id (as text; "0": no unit), a channel, a request type.
    key = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("分项汇总")
        verbose_name_plural = _("分项汇总")
        constraints = [
            models.UniqueConstraint(
                fields=["node", "dim", "grain", "period", "key"], name="stats_dimrollup_key"
            )
        ]
        indexes = [
            models.Index(fields=["level", "dim", "grain", "period"], name="stats_dimrollup_level")
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.node} {self.dim}={self.key}"


class PersonRollup(PersonCounters):
    """Person counters by grain (day or month) × period × grid node × person × role."""

    id = models.BigAutoField(primary_key=True)
    grain = models.CharField(max_length=1, choices=Grain.choices)
    #: The day the person acted, or the first day of its month.
    period = models.DateField()
    level = models.PositiveSmallIntegerField()
    node = models.IntegerField()
    user = models.IntegerField()
    role = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("人员汇总")
        verbose_name_plural = _("人员汇总")
        # A position's evaluation reads one role of one node over the periods.
        constraints = [
            models.UniqueConstraint(
                fields=["node", "role", "grain", "period", "user"], name="stats_personrollup_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["level", "role", "grain", "period"], name="stats_personrollup_level"
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.node} {self.user} {self.role}"
