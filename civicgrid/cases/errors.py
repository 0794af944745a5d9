"""Domain errors of the case workflow, each with a message fit for the user."""

from __future__ import annotations


class CaseError(Exception):
    """A refused action: wrong state, missing reason, not allowed for this user."""

    code = "case_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CaseForbidden(CaseError):
    """The user's role or scope does not allow this action on this case."""

    code = "forbidden"


class CaseConflict(CaseError):
    """Someone else changed the case first; reload and try again."""

    code = "conflict"


class IntakeError(CaseError):
    """A new case that cannot be taken in (outside the jurisdiction, bad data)."""

    code = "intake_error"


class AttachmentError(CaseError):
    """A photo refused: not a real image, too big, damaged, or too many on the case."""

    code = "attachment_error"
