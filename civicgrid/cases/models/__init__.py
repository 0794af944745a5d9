"""Models of the cases app, one module per concern."""

from __future__ import annotations

from civicgrid.cases.models.attachment import Attachment, AttachmentKind
from civicgrid.cases.models.case import (
    FINAL_STATUSES,
    NO_DEADLINE,
    OPEN_STATUSES,
    Action,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Case,
    CaseEvent,
    CaseQuerySet,
    Channel,
    Deadline,
    Status,
    due_key,
    unit_q,
    urgency_rank,
)
from civicgrid.cases.models.category import (
    Category,
    CategoryKind,
    RequestType,
    Stage,
    TimeLimit,
    Urgency,
)
from civicgrid.cases.models.routing import RoutingRule
from civicgrid.cases.models.workcalendar import (
    CalendarSource,
    OfficeHours,
    TimeUnit,
    WorkCalendarDay,
    WorkCalendarYear,
)

__all__ = [
    "FINAL_STATUSES",
    "NO_DEADLINE",
    "OPEN_STATUSES",
    "Action",
    "Approval",
    "ApprovalKind",
    "ApprovalStatus",
    "Attachment",
    "AttachmentKind",
    "CalendarSource",
    "Case",
    "CaseEvent",
    "CaseQuerySet",
    "Category",
    "CategoryKind",
    "Channel",
    "Deadline",
    "OfficeHours",
    "RequestType",
    "RoutingRule",
    "Stage",
    "Status",
    "TimeLimit",
    "TimeUnit",
    "Urgency",
    "WorkCalendarDay",
    "WorkCalendarYear",
    "due_key",
    "unit_q",
    "urgency_rank",
]
