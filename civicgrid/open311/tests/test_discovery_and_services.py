from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from civicgrid.cases.models import Category
from civicgrid.grids import services as grid_services
from civicgrid.grids.tests.fixtures import DISTRICT, Tree, box
from civicgrid.grids.validation import GridInput
from civicgrid.open311.models import Datatype, ServiceAttribute
from civicgrid.open311.tests.conftest import (
    ATTRIBUTE_FIELDS,
    NOISE,
    SERVICE_FIELDS,
    Open311Client,
    check_error,
    children,
    validate,
    xml_root,
)

pytestmark = pytest.mark.django_db


def test_discovery_lists_this_endpoint_in_both_formats(o311: Open311Client) -> None:
    body = o311.get("discovery").json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    [endpoint] = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]

    root = xml_root(o311.get("discovery", "xml"), "discovery")
    assert children(root) == ["changeset", "contact", "key_service", "endpoints"]
    endpoints = root.find("endpoints")
    assert endpoints is not None
    [element] = list(endpoints)
    assert element.tag == "endpoint"
    assert children(element) == ["specification", "url", "changeset", "type", "formats"]
    assert [f.text for f in element.find("formats")] == ["text/xml", "application/json"]  # type: ignore[union-attr]


def test_every_active_subcategory_is_a_service_grouped_by_its_major_category(
    o311: Open311Client, tree: Tree
) -> None:
    response = o311.get("services")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    services = response.json()
    validate("services.json", services)
    expected = set(
        Category.objects.active()
        .minors()
        .filter(parent__is_active=True)
        .values_list("code", flat=True)
    )
    assert {s["service_code"] for s in services} == expected
    noise = next(s for s in services if s["service_code"] == NOISE)
    assert noise == {
        "service_code": NOISE,
        "service_name": "商业噪声",
        "description": noise["description"],
        "metadata": True,
        "type": "realtime",
        "keywords": "syzs, 噪音扰民, zyrm, 噪音, zy, 噪声, zs, 店铺音响, dpyx",
        "group": Category.objects.get(code="SJ06").name,
    }
    assert "高音广播" in noise["description"]  # the filing criteria
    manhole = next(s for s in services if s["service_code"] == "BJ0101")
    assert manhole["metadata"] is False


def test_the_services_xml_has_the_specifications_elements(o311: Open311Client) -> None:
    root = xml_root(o311.get("services", "xml"), "services")
    assert len(root) == len(o311.get("services").json())
    for service in root:
        assert service.tag == "service"
        assert children(service) == SERVICE_FIELDS
    noise = next(s for s in root if s.findtext("service_code") == NOISE)
    assert noise.findtext("metadata") == "true"
    assert noise.findtext("type") == "realtime"


def test_a_service_definition_lists_the_attributes_with_their_values(
    o311: Open311Client,
) -> None:
    definition = o311.get(f"services/{NOISE}").json()
    validate("service-definition.json", definition)
    assert definition["service_code"] == NOISE
    source, period = definition["attributes"]
    assert source["code"] == "noise_source"
    assert source["datatype"] == "singlevaluelist"
    assert source["required"] is True
    assert source["variable"] is True
    assert source["order"] == 1
    assert source["description"] == "噪声来源"
    assert {"key": "square_dance", "name": "广场舞"} in source["values"]
    assert period["code"] == "time_of_day"
    assert period["datatype"] == "multivaluelist"
    assert period["required"] is False
    assert [v["key"] for v in period["values"]] == ["morning", "day", "evening", "night"]

    root = xml_root(o311.get(f"services/{NOISE}", "xml"), "service_definition")
    assert children(root) == ["service_code", "attributes"]
    attributes = root.find("attributes")
    assert attributes is not None
    for attribute in attributes:
        assert attribute.tag == "attribute"
        assert children(attribute) == [*ATTRIBUTE_FIELDS, "values"]
        for value in attribute.find("values"):  # type: ignore[union-attr]
            assert value.tag == "value"
            assert children(value) == ["key", "name"]
    assert attributes[0].findtext("required") == "true"


def test_attributes_edited_as_data_show_in_the_definition(o311: Open311Client) -> None:
    manhole = Category.objects.get(code="BJ0101")
    assert manhole.parent is not None
    ServiceAttribute.objects.create(
        category=manhole.parent,
        code="depth_cm",
        description="高差（厘米）",
        datatype=Datatype.NUMBER,
        order=1,
    )
    ServiceAttribute.objects.create(
        category=manhole, code="old", description="停用", datatype="string", is_active=False
    )
    definition = o311.get("services/BJ0101").json()
    validate("service-definition.json", definition)
    assert [a["code"] for a in definition["attributes"]] == ["depth_cm"]
    assert "values" not in definition["attributes"][0]
    services = {s["service_code"]: s for s in o311.get("services").json()}
    assert services["BJ0101"]["metadata"] is True
    assert services["BJ0102"]["metadata"] is True  # the 大类's attribute applies to all


def test_a_service_without_attributes_has_an_empty_definition(o311: Open311Client) -> None:
    definition = o311.get("services/BJ0101").json()
    validate("service-definition.json", definition)
    assert definition == {"service_code": "BJ0101", "attributes": []}
    root = xml_root(o311.get("services/BJ0101", "xml"), "service_definition")
    assert children(root) == ["service_code", "attributes"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_or_inactive_service_code_is_404(o311: Open311Client, fmt: str) -> None:
    [description] = check_error(o311.get("services/NOPE", fmt), 404, fmt)
    assert "NOPE" in description
    Category.objects.filter(code="BJ0101").update(is_active=False)
    check_error(o311.get("services/BJ0101", fmt), 404, fmt)


def test_an_unsupported_format_is_400_with_an_xml_error_body(o311: Open311Client) -> None:
    [description] = check_error(o311.get("services", "csv"), 400, "xml")
    assert ".csv" in description
    check_error(o311.get("services", "JSON"), 400, "xml")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_resource_is_404_with_the_error_body(o311: Open311Client, fmt: str) -> None:
    check_error(o311.get("nothing/here", fmt), 404, fmt)
    check_error(o311.client.get("/open311/v2/services"), 404, "xml")


def test_a_wrong_method_is_405(o311: Open311Client) -> None:
    response = o311.post("services", {})
    check_error(response, 405)
    assert response["Allow"] == "GET"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_jurisdiction_is_404(o311: Open311Client, tree: Tree, fmt: str) -> None:
    [description] = check_error(o311.get("services", fmt, jurisdiction_id="nowhere"), 404, fmt)
    assert "nowhere" in description
    # A grid that is not a root is no jurisdiction either.
    check_error(o311.get("services", fmt, jurisdiction_id=tree.west.code), 404, fmt)


def test_a_jurisdiction_is_a_root_grid_code_or_a_configured_id(
    o311: Open311Client, tree: Tree, settings: Settings
) -> None:
    assert o311.get("services", jurisdiction_id=DISTRICT).status_code == 200
    settings.CIVICGRID_OPEN311_JURISDICTIONS = {"lanzhou.qilihe": DISTRICT}
    assert o311.get("services", jurisdiction_id="lanzhou.qilihe").status_code == 200
    # An empty optional parameter counts as absent.
    assert o311.get("services", jurisdiction_id="").status_code == 200


def test_a_second_district_on_the_same_deployment_is_its_own_jurisdiction(
    o311: Open311Client, tree: Tree
) -> None:
    grid_services.save_grids(
        items=[
            GridInput(
                code="620104", name="第二区", level=0, geometry=box(104.0, 35.95, 104.2, 36.05)
            )
        ]
    )
    assert o311.get("services", jurisdiction_id="620104").status_code == 200
    assert o311.get("services").status_code == 200  # services are the same everywhere
