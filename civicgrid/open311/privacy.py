"""Text shown to the public: masked of the personal data it may carry.

Descriptions taken in by the hotline and the reasons staff write may name the
requester or a member of staff and carry phone numbers, ID card numbers or e-mail
addresses. What the Open311 endpoint publishes passes through ``public_text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATTERNS = [
    # ID card numbers (18 characters) first, before their digits look like a phone.
    re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"),
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    # Mobile numbers, with or without +86 and separators.
    re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)"),
    # Landlines with their area code.
    re.compile(r"(?<!\d)0\d{2,3}[\s-]?\d{7,8}(?!\d)"),
]
MASK = "***"


def public_text(text: str | None, *, names: Iterable[str] = ()) -> str:
    """``text`` with phone and ID numbers, e-mail addresses and the given names masked."""
    if not text:
        return ""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len)[::-1]:
        text = text.replace(name, MASK)
    return text
