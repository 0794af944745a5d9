"""The server read back through an independent GeoReport v2 client from PyPI
(``georeport``, which reads only: the request is POSTed with ``requests``)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from georeport import GeoReport

from civicgrid.cases.tests.fixtures import EAST_POINT
from civicgrid.open311.tests.conftest import NOISE, Key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_independent_georeport_client_reads_back_what_was_posted(
    live_server: Any, app_key: Key
) -> None:
    root = f"{live_server.url}/open311/v2"
    posted = requests.post(
        f"{root}/requests.json",
        data={
            "api_key": app_key.raw,
            "jurisdiction_id": "620103",
            "service_code": NOISE,
            "lat": str(EAST_POINT[1]),
            "long": str(EAST_POINT[0]),
            "description": "广场舞音响太吵",
            "attribute[noise_source]": "square_dance",
            "attribute[time_of_day][]": ["evening", "night"],
        },
        timeout=10,
    )
    assert posted.status_code == 200, posted.text
    number = posted.json()[0]["service_request_id"]

    for fmt in ("json", "xml"):
        client = GeoReport(root, jurisdiction="620103", output_format=fmt)
        services = client.get_service_list()
        noise = next(s for s in services if s["service_code"] == NOISE)
        assert noise["service_name"] == "商业噪声"
        assert str(noise["metadata"]).lower() == "true"

        definition = client.get_service_definition(NOISE)
        attributes = definition["attributes"]
        if fmt == "xml":  # xmltodict: <attributes><attribute>…
            attributes = attributes["attribute"]
        assert [a["code"] for a in attributes] == ["noise_source", "time_of_day"]

        found = client.get_service_requests(service_code=NOISE, status="open")
        if fmt == "xml" and isinstance(found, dict):  # one element is not a list
            found = [found]
        assert [r["service_request_id"] for r in found] == [number]

        one = client.get_service_request(number)
        assert one["service_request_id"] == number
        assert one["status"] == "open"
        assert one["service_code"] == NOISE
        assert float(one["lat"]) == EAST_POINT[1]
        assert "噪声来源：广场舞" in one["description"]
