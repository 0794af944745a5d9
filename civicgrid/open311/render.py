"""GeoReport v2 documents in XML and JSON, and its error bodies.

JSON follows the XML so that lists are bare arrays (``/services.json`` is
``[{...}]``); XML has no namespace, a list is a wrapper element whose children are
named after the singular (``<services><service>…``), ``None`` is an empty element
and booleans are ``true``/``false``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from django.http import HttpResponse
from django.utils import timezone
from django.utils.functional import Promise

XML = "xml"
JSON = "json"
CONTENT_TYPES = {
    XML: "text/xml; charset=utf-8",
    JSON: "application/json; charset=utf-8",
}

#: The element name of one item of each list.
ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
    "service_request_updates": "request_update",
    "notes": "note",
    "grid_path": "grid",
}

#: Characters XML 1.0 cannot carry at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Open311Error(Exception):
    """A refused call: its HTTP status and one or more descriptions."""

    def __init__(
        self, status: int, *descriptions: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(descriptions[0] if descriptions else str(status))
        self.status = status
        self.descriptions = list(descriptions) or [str(status)]
        self.headers = dict(headers or {})


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the offset of the platform's time zone, to the second."""
    if value is None:
        return None
    return timezone.localtime(value).isoformat(timespec="seconds")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return repr(value)
    return _NOT_XML.sub("", str(value))


def _fill(element: Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for name, child in value.items():
            _fill(SubElement(element, name), child)
    elif isinstance(value, list):
        item = ITEM.get(element.tag, "item")
        for child in value:
            _fill(SubElement(element, item), child)
    else:
        element.text = _text(value)


def to_xml(root: str, data: Any) -> bytes:
    element = Element(root)
    _fill(element, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(element, encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Promise):  # a lazy translation
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, default=_json_default).encode()


def render(root: str, data: Any, fmt: str, *, status: int = 200) -> HttpResponse:
    body = to_json(data) if fmt == JSON else to_xml(root, data)
    return HttpResponse(body, status=status, content_type=CONTENT_TYPES[fmt])


def render_error(error: Open311Error, fmt: str) -> HttpResponse:
    errors = [{"code": error.status, "description": d} for d in error.descriptions]
    response = render("errors", errors, fmt if fmt in CONTENT_TYPES else XML, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response
