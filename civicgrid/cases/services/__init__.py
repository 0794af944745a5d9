"""Every write to a case: intake and one verb function per transition.

Each function checks role, scope and state against ``workflow.TRANSITIONS``,
moves the case with a conditional update on its version (so of two people
acting at once exactly one wins; the other gets ``CaseConflict``), appends an
event, closes the deadline of the stage it leaves and opens the next one.
"""

from __future__ import annotations

from civicgrid.cases.services.attachments import (
    add_attachment,
    attach_citizen_photos,
    attach_photos,
)
from civicgrid.cases.services.citizen import (
    citizen_rating,
    find_case_for_citizen,
    rate_case_by_citizen,
    report_by_citizen,
)
from civicgrid.cases.services.deadlines import mark_overdue
from civicgrid.cases.services.field import report_by_grid_worker
from civicgrid.cases.services.intake import Intake, create_case, self_handle_case
from civicgrid.cases.services.transitions import (
    accept_case,
    acknowledge_case,
    close_case,
    decide_extension,
    decide_void,
    dispatch_case,
    follow_up_case,
    handle_case,
    locate_case,
    merge_case,
    park_case,
    reject_case,
    reopen_case,
    request_extension,
    request_void,
    resume_case,
    send_back_case,
    urge_case,
    verify_case,
)

__all__ = [
    "Intake",
    "accept_case",
    "acknowledge_case",
    "add_attachment",
    "attach_citizen_photos",
    "attach_photos",
    "citizen_rating",
    "close_case",
    "create_case",
    "decide_extension",
    "decide_void",
    "dispatch_case",
    "find_case_for_citizen",
    "follow_up_case",
    "handle_case",
    "locate_case",
    "mark_overdue",
    "merge_case",
    "park_case",
    "rate_case_by_citizen",
    "reject_case",
    "reopen_case",
    "report_by_citizen",
    "report_by_grid_worker",
    "request_extension",
    "request_void",
    "resume_case",
    "self_handle_case",
    "send_back_case",
    "urge_case",
    "verify_case",
]
