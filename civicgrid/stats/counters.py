"""The counters every fact and rollup row carries, their names and their labels.

A case contributes one vector of *case counters* (what it is now and what has
happened to it, ``docs/statistics.md``), and each person who acted on it one
vector of *person counters* per day they acted. Rollups are sums of them.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

#: The stages with a deadline, in workflow order (``cases.models.Stage``).
STAGES = ("accept", "dispatch", "acknowledge", "handle", "verify", "close")

#: Upper bounds (hours, natural time from intake to closing) of the handling-time
#: histogram; the last bucket is open. Changing them needs a migration and a rebuild.
DURATION_BOUNDS_HOURS: tuple[int, ...] = (
    1,
    2,
    4,
    8,
    12,
    24,
    48,
    72,
    96,
    120,
    168,
    240,
    336,
    504,
    720,
    1080,
    1440,
    2160,
)
DURATION_BUCKETS: tuple[str, ...] = tuple(
    f"dur_{i:02d}" for i in range(len(DURATION_BOUNDS_HOURS) + 1)
)
SATISFACTION_LEVELS = (1, 2, 3, 4, 5)
SATISFACTION: tuple[str, ...] = tuple(f"sat_{n}" for n in SATISFACTION_LEVELS)

CASE_COUNTS: tuple[str, ...] = (
    "received",
    "open",
    "closed",
    "rejected",
    "voided",
    "merged",
    "parked",
    "deferred",
    "filed",
    "filed_public",
    "dispatched",
    "dispatches",
    "accurate_dispatches",
    "reworked_dispatches",
    "sent_back",
    "handled",
    "reworked",
    "reworked_cases",
    "ever_closed",
    "reopened",
    "reopened_cases",
    "extension_requests",
    "extensions",
    "extended_cases",
    "urged",
    "urged_cases",
    "overdue",
    "overdue_open",
    "closed_ontime",
    "followed_up",
    *SATISFACTION,
)
STAGE_COUNTS: tuple[str, ...] = tuple(
    f"{stage}_{what}" for stage in STAGES for what in ("done", "ontime", "overdue_open")
)
#: Sums in seconds (64-bit columns): natural and office time from intake to closing.
CASE_SUMS: tuple[str, ...] = ("handle_seconds", "work_seconds")
CASE_COUNTERS: tuple[str, ...] = CASE_COUNTS + STAGE_COUNTS + DURATION_BUCKETS + CASE_SUMS

PERSON_ACTIONS: tuple[str, ...] = (
    "events",
    "reports",
    "valid_reports",
    "accepts",
    "rejects",
    "dispatches",
    "accurate_dispatches",
    "reworked_dispatches",
    "acknowledges",
    "send_backs",
    "handles",
    "verifies",
    "verify_fails",
    "closes",
    "follow_ups",
    "reopens",
    "urges",
    "decisions",
)
PERSON_STAGES: tuple[str, ...] = tuple(
    f"{stage}_{what}" for stage in STAGES for what in ("timed", "ontime")
)
PERSON_COUNTERS: tuple[str, ...] = PERSON_ACTIONS + PERSON_STAGES

_STAGE_LABELS = {
    "accept": _("受理"),
    "dispatch": _("派遣"),
    "acknowledge": _("签收"),
    "handle": _("处置"),
    "verify": _("核查"),
    "close": _("结案"),
}

LABELS: dict[str, Promise] = {
    "received": _("接办"),
    "open": _("在办"),
    "closed": _("办结"),
    "rejected": _("不予受理"),
    "voided": _("作废"),
    "merged": _("并单"),
    "parked": _("挂账"),
    "deferred": _("缓办"),
    "filed": _("立案"),
    "filed_public": _("公众举报立案"),
    "dispatched": _("应派遣"),
    "dispatches": _("派遣次数"),
    "accurate_dispatches": _("准确派遣"),
    "reworked_dispatches": _("派遣后返工"),
    "sent_back": _("回退"),
    "handled": _("处置反馈"),
    "reworked": _("返工"),
    "reworked_cases": _("返工案件"),
    "ever_closed": _("曾办结"),
    "reopened": _("重办次数"),
    "reopened_cases": _("重办案件"),
    "extension_requests": _("延期申请"),
    "extensions": _("批准延期"),
    "extended_cases": _("延期案件"),
    "urged": _("督办次数"),
    "urged_cases": _("督办案件"),
    "overdue": _("超期"),
    "overdue_open": _("在办超期"),
    "closed_ontime": _("按期办结"),
    "followed_up": _("回访"),
    "sat_1": _("非常不满意"),
    "sat_2": _("不满意"),
    "sat_3": _("基本满意"),
    "sat_4": _("满意"),
    "sat_5": _("非常满意"),
    "handle_seconds": _("办理时长合计（秒）"),
    "work_seconds": _("办理工作时合计（秒）"),
    "events": _("操作"),
    "reports": _("登记/上报"),
    "valid_reports": _("有效上报"),
    "accepts": _("受理"),
    "rejects": _("不予受理"),
    "acknowledges": _("签收"),
    "send_backs": _("回退"),
    "handles": _("处置反馈"),
    "verifies": _("核查"),
    "verify_fails": _("核查不通过"),
    "closes": _("结案"),
    "follow_ups": _("回访"),
    "reopens": _("重办"),
    "urges": _("督办"),
    "decisions": _("审批"),
}
for _stage, _label in _STAGE_LABELS.items():
    LABELS[f"{_stage}_done"] = format_lazy(_("{stage}完成"), stage=_label)
    LABELS[f"{_stage}_ontime"] = format_lazy(_("{stage}按时"), stage=_label)
    LABELS[f"{_stage}_overdue_open"] = format_lazy(_("{stage}超期未完成"), stage=_label)
    LABELS[f"{_stage}_timed"] = format_lazy(_("{stage}计时"), stage=_label)
for _i, _name in enumerate(DURATION_BUCKETS):
    LABELS[_name] = format_lazy(_("时长分段{n}"), n=_i)


def stage_label(stage: str) -> Promise:
    return _STAGE_LABELS[stage]


def zero_case() -> dict[str, int]:
    return dict.fromkeys(CASE_COUNTERS, 0)


def zero_person() -> dict[str, int]:
    return dict.fromkeys(PERSON_COUNTERS, 0)


def duration_bucket(seconds: float) -> str:
    """The histogram column of a handling time."""
    hours = seconds / 3600
    for index, bound in enumerate(DURATION_BOUNDS_HOURS):
        if hours <= bound:
            return DURATION_BUCKETS[index]
    return DURATION_BUCKETS[-1]
