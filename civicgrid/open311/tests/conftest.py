"""Fixtures and checks of the Open311 tests: an integration with its key, a client
that speaks GeoReport, and validation of every answer (JSON against the official
schemas in ``schemas/``, XML against the structure of the specification's examples)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from django.core.cache import cache
from django.test import Client
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from civicgrid.accounts.models import Integration, Scope
from civicgrid.accounts.services import create_integration, issue_integration_key
from civicgrid.cases.models import Category
from civicgrid.grids.tests.fixtures import Tree

SCHEMAS = Path(__file__).parent / "schemas"
BASE = "https://schemas.open311.test/georeport-v2/"
PREFIX = "/open311/v2/"

#: The child elements of one ``request`` of GET requests, in the specification's order.
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]
ATTRIBUTE_FIELDS = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
]
UPDATE_FIELDS = [
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
    "external_status_code",
]
NOISE = "SJ0602"  # 商业噪声, with the seeded attributes noise_source and time_of_day


def _registry() -> Registry:
    resources = [
        (BASE + path.name, Resource.from_contents(json.loads(path.read_text()), DRAFT4))
        for path in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


REGISTRY = _registry()

#: Draft 4's format checks, and the two the schemas use that need no extra package:
#: an RFC 3339 date-time (with its offset) and an absolute URI.
FORMATS = jsonschema.FormatChecker(jsonschema.Draft4Validator.FORMAT_CHECKER.checkers)


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def validate(schema_name: str, body: Any) -> None:
    """Validate a JSON answer against one of the official schemas (draft 4)."""
    validator = jsonschema.Draft4Validator(
        {"$ref": BASE + schema_name},
        registry=REGISTRY,
        format_checker=FORMATS,
    )
    validator.validate(body)


def xml_root(response: Any, root: str) -> ET.Element:
    """Parse an XML answer (well-formed, UTF-8, no namespace) and check its root."""
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    element = ET.fromstring(response.content)  # noqa: S314 - our own output
    assert element.tag == root
    return element


def children(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def check_error(response: Any, status: int, fmt: str = "json") -> list[str]:
    """The answer is an Open311 error body with ``status``; returns the descriptions."""
    assert response.status_code == status, response.content.decode()
    if fmt == "json":
        assert response["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        assert isinstance(body, list)
        assert body
        for error in body:
            assert set(error) == {"code", "description"}
            assert error["code"] == status
        return [e["description"] for e in body]
    root = xml_root(response, "errors")
    assert root
    assert all(e.tag == "error" for e in root)
    descriptions = []
    for error in root:
        assert children(error) == ["code", "description"]
        assert error.findtext("code") == str(status)
        descriptions.append(error.findtext("description") or "")
    return descriptions


class Open311Client:
    """``/open311/v2/`` through Django's test client."""

    def __init__(self) -> None:
        self.client = Client()

    def get(self, resource: str, fmt: str = "json", **params: Any) -> Any:
        return self.client.get(f"{PREFIX}{resource}.{fmt}", params)

    def post(
        self,
        resource: str,
        data: dict[str, Any],
        fmt: str = "json",
        headers: dict[str, str] | None = None,
        **meta: Any,
    ) -> Any:
        """A form POST; ``meta`` sets request META such as ``REMOTE_ADDR``."""
        return self.client.post(f"{PREFIX}{resource}.{fmt}", data, headers=headers, **meta)


@pytest.fixture
def o311(db: None) -> Open311Client:
    return Open311Client()


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Rate-limit counters of one test must not leak into the next."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class Key:
    integration: Integration
    raw: str


@pytest.fixture
def app_key(tree: Tree) -> Key:
    """随手拍 App: reads and writes Open311 in the test district, 60 calls a minute."""
    integration = create_integration(
        name="随手拍 App",
        scopes=[Scope.OPEN311_READ, Scope.OPEN311_WRITE],
        districts=[tree.district],
    )
    _key, raw = issue_integration_key(integration=integration)
    return Key(integration, raw)


@pytest.fixture
def noise(db: None) -> Category:
    return Category.objects.get(code=NOISE)
