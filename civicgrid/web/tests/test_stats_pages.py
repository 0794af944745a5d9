"""The leader dashboard, the big screen, their JSON and downloads, per persona.

Cases come from the shared fixtures: four driven through the real services in grid
C1 of 东街道 (closed, handled, returned, parked), one new there too, and one new in
grid A1 of 甲社区 (西街道). Leaders and supervisors of the district see all six, the
staff of 东街道 five, the staff of 甲社区 one; anyone without a statistics role 404s.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from civicgrid.accounts.models import Membership, Role, User
from civicgrid.cases.models import Case, Status
from civicgrid.cases.tests.fixtures import WEST_POINT, IntakeFactory
from civicgrid.grids.models import Grid
from civicgrid.grids.tests.fixtures import Tree
from civicgrid.stats import selectors
from civicgrid.stats.periods import MAX_DAYS, PeriodError, parse_period
from civicgrid.web.tests.case_pages import signed_in

pytestmark = pytest.mark.django_db

URLS = (
    "/stats/",
    "/stats/screen/",
    "/stats/data/",
    "/stats/geo/",
    "/stats/heat/",
    "/stats/export/unit.xlsx",
    "/stats/export/major.csv",
    "/stats/report/month.xlsx",
)


@pytest.fixture
def cases(drive: Callable[[str], Case], new_case: IntakeFactory) -> list[Case]:
    made = [drive(s) for s in (Status.CLOSED, Status.HANDLED, Status.RETURNED, Status.PARKED)]
    made.append(new_case())
    made.append(new_case(lon=WEST_POINT[0], lat=WEST_POINT[1]))
    return made


@pytest.fixture
def east_staff(tree: Tree) -> User:
    """钱伟, staff of 东街道 (a subdistrict): its subtree only."""
    user = User.objects.create_user(username="qianwei", password=None, display_name="钱伟")
    Membership.objects.create(user=user, role=Role.COMMUNITY_STAFF, grid=tree.east)
    return user


def _json(client: Client, url: str, **params: Any) -> dict[str, Any]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    return response.json()


def _today() -> date:
    return timezone.localdate()


# -- who may see what ------------------------------------------------------------------------
@pytest.mark.usefixtures("tree")
@pytest.mark.parametrize("url", URLS)
def test_anonymous_visitors_are_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/stats/")


@pytest.mark.parametrize("persona", ["outsider", "dispatcher", "grid_worker", "unit_handler"])
@pytest.mark.parametrize("url", URLS)
def test_people_without_a_statistics_role_get_404(
    request: pytest.FixtureRequest, persona: str, url: str
) -> None:
    user: User = request.getfixturevalue(persona)
    assert signed_in(user).get(url).status_code == 404


@pytest.mark.usefixtures("cases")
@pytest.mark.parametrize("persona", ["leader", "supervisor", "superuser"])
def test_the_centre_reads_the_whole_district(
    request: pytest.FixtureRequest, persona: str, tree: Tree
) -> None:
    client = signed_in(request.getfixturevalue(persona))

    data = _json(client, "/stats/data/")

    assert data["scope"]["id"] == tree.district.pk
    assert data["kpis"]["received"] == 6
    assert [a["name"] for a in data["areas"]] == ["西街道", "东街道"]
    assert {a["name"]: a["received"] for a in data["areas"]} == {"西街道": 1, "东街道": 5}
    assert data["scope"]["trail"] == [
        {"id": tree.district.pk, "name": "示范区", "code": "620103", "level": 0}
    ]
    assert data["scope"]["up"] is None


@pytest.mark.usefixtures("cases")
def test_subdistrict_staff_read_their_subtree_and_drill_down_within_it(
    east_staff: User, tree: Tree
) -> None:
    client = signed_in(east_staff)
    community_c = tree["620103002001"]

    data = _json(client, "/stats/data/")
    assert data["scope"]["id"] == tree.east.pk
    assert data["kpis"]["received"] == 5
    assert [a["name"] for a in data["areas"]] == ["丙社区", "丁社区"]
    assert data["scope"]["up"] is None  # nothing above their root

    down = _json(client, "/stats/data/", grid=community_c.pk)
    assert down["kpis"]["received"] == 5
    assert [a["received"] for a in down["areas"]] == [5, 0]
    assert down["scope"]["up"] == tree.east.pk
    assert [g["name"] for g in down["scope"]["trail"]] == ["东街道", "丙社区"]

    for outside in (tree.district, tree.west, tree.community_a, tree.grid_a1):
        for url in URLS:
            assert client.get(url, {"grid": outside.pk}).status_code == 404, (url, outside)
    assert client.get("/stats/data/", {"grid": "x1"}).status_code == 404
    assert client.get("/stats/data/", {"grid": 999999}).status_code == 404


@pytest.mark.usefixtures("cases")
def test_community_staff_read_their_community_only(community_staff: User, tree: Tree) -> None:
    client = signed_in(community_staff)

    data = _json(client, "/stats/data/")
    geo = _json(client, "/stats/geo/")
    heat = _json(client, "/stats/heat/")

    assert data["scope"]["name"] == "甲社区"
    assert data["kpis"]["received"] == 1
    assert [a["name"] for a in data["areas"]] == ["甲社区第1网格", "甲社区第2网格"]
    assert [f["properties"]["name"] for f in geo["features"]] == [
        "甲社区第1网格",
        "甲社区第2网格",
    ]
    assert not any(f["properties"]["has_children"] for f in geo["features"])
    assert heat["cases"] == 1
    assert [p[2] for p in heat["points"]] == [1]
    assert client.get("/stats/geo/", {"grid": tree.east.pk}).status_code == 404


@pytest.mark.usefixtures("tree")
def test_the_navigation_shows_the_pages_to_statistics_roles_only(
    leader: User, community_staff: User, dispatcher: User
) -> None:
    for user, shown in ((leader, True), (community_staff, True), (dispatcher, False)):
        html = signed_in(user).get("/").content.decode()
        assert ('href="/stats/"' in html) is shown, user


# -- the figures ------------------------------------------------------------------------------
@pytest.mark.usefixtures("cases")
def test_the_json_figures_are_the_selectors_figures(leader: User, tree: Tree) -> None:
    today = _today()
    start, end = today.replace(day=1), today
    month_end = selectors.period_bounds("month", today)[1]
    scope = tree.district

    data = _json(signed_in(leader), "/stats/data/", period="month", date=end.isoformat())

    assert data["period"]["start"] == start.isoformat()
    assert data["period"]["end"] == month_end.isoformat()
    totals = selectors.totals(scope=scope, start=start, end=month_end)
    assert data["kpis"] == {k: totals[k] for k in data["kpis"]}
    assert data["kpis"]["closed"] == 1
    assert data["kpis"]["in_progress"] == 5
    assert data["hotline"] == selectors.hotline_kpis(scope=scope, start=start, end=month_end)
    trend = selectors.trend(scope=scope, start=start, end=month_end, grain="day")
    assert [r["received"] for r in data["trend"]["rows"]] == [r["received"] for r in trend]
    assert [r["closed"] for r in data["trend"]["rows"]] == [r["closed"] for r in trend]
    majors = selectors.breakdown(scope=scope, start=start, end=month_end, by="major")
    assert [(r["key"], r["received"]) for r in data["categories"]] == [
        (r["key"], r["received"]) for r in majors
    ]
    channels = selectors.breakdown(scope=scope, start=start, end=month_end, by="channel")
    assert [(r["key"], r["received"]) for r in data["channels"]] == [
        (r["key"], r["received"]) for r in channels
    ]
    league = selectors.unit_league(scope=scope, start=start, end=month_end)
    assert [(r["name"], r["received"], r["score"], r["band"]) for r in data["league"]] == [
        (r["name"], r["received"], r["score"], r["band"]) for r in league
    ]
    assert data["league"][0]["band_color"].startswith("#")
    areas = selectors.grid_values(parent=scope, start=start, end=month_end)
    assert [
        (a["grid_id"], a["received"], a["overdue"], a["satisfaction_rate"]) for a in data["areas"]
    ] == [(a["grid_id"], a["received"], a["overdue"], a["satisfaction_rate"]) for a in areas]


@pytest.mark.usefixtures("cases")
def test_the_figures_come_from_the_rollups_not_from_counting_cases(leader: User) -> None:
    client = signed_in(leader)
    client.get("/stats/data/")  # the session and the user, read once

    with CaptureQueriesContext(connection) as queries:
        _json(client, "/stats/data/")

    on_cases = [q["sql"] for q in queries.captured_queries if '"cases_case"' in q["sql"]]
    # One read of cases: the live feed's newest rows (ORDER BY … LIMIT), no counting.
    assert len(on_cases) == 1, on_cases
    assert "LIMIT" in on_cases[0]
    assert "COUNT(" not in on_cases[0].upper()
    assert len(queries) <= 20


@pytest.mark.usefixtures("cases")
def test_the_live_feed_carries_no_personal_data(leader: User) -> None:
    data = _json(signed_in(leader), "/stats/data/")

    feed = data["feed"]
    assert len(feed) == 6
    text = str(feed)
    for secret in ("张先生", "13912345678", "桥下环岛", "103.8", "35.9"):
        assert secret not in text
    assert {"number", "category", "status_label", "grid", "time"} <= set(feed[0])


@pytest.mark.usefixtures("cases")
def test_the_heat_map_sums_case_locations_into_cells(leader: User, tree: Tree) -> None:
    heat = _json(signed_in(leader), "/stats/heat/")

    assert heat["cases"] == 6
    assert sorted(p[2] for p in heat["points"]) == [1, 5]
    assert heat["max"] == 5
    assert heat["truncated"] is False
    lat, lon, _n = max(heat["points"], key=lambda p: p[2])
    assert (round(lon, 3), round(lat, 3)) == (103.825, 35.975)


@pytest.mark.usefixtures("cases")
def test_a_past_period_has_no_cases(leader: User) -> None:
    client = signed_in(leader)
    last_year = _today().replace(day=1) - timedelta(days=370)

    data = _json(client, "/stats/data/", period="month", date=last_year.isoformat())
    heat = _json(client, "/stats/heat/", period="month", date=last_year.isoformat())

    assert data["kpis"]["received"] == 0
    assert heat["points"] == []


def test_the_outlines_are_cached_until_the_grid_tree_changes(leader: User, tree: Tree) -> None:
    from civicgrid.grids.services import bump_version

    client = signed_in(leader)
    first = _json(client, "/stats/geo/")
    assert [f["properties"]["name"] for f in first["features"]] == ["西街道", "东街道"]
    assert all(f["properties"]["has_children"] for f in first["features"])
    assert first["features"][0]["geometry"]["type"] == "Polygon"

    # A change behind the services' back: the same tree version, the cached outlines.
    Grid.objects.filter(pk=tree.east.pk).update(name="东街道（改）")
    assert _json(client, "/stats/geo/") == first
    bump_version()  # what every change of the tree does
    names = [f["properties"]["name"] for f in _json(client, "/stats/geo/")["features"]]
    assert names == ["西街道", "东街道（改）"]


# -- periods -------------------------------------------------------------------------------------
TODAY = date(2020, 6, 17)  # a Wednesday


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ("month", date(2020, 6, 1), date(2020, 6, 30))),
        ({"period": "today"}, ("today", TODAY, TODAY)),
        ({"period": "week"}, ("week", date(2020, 6, 15), date(2020, 6, 21))),
        ({"period": "year", "date": "2019-03-02"}, ("year", date(2019, 1, 1), date(2019, 12, 31))),
        (
            {"period": "custom", "from": "2020-01-01", "to": "2020-12-23"},
            ("custom", date(2020, 1, 1), date(2020, 12, 23)),
        ),
    ],
)
def test_periods_are_read_from_the_query_string(
    params: dict[str, str], expected: tuple[str, date, date]
) -> None:
    period = parse_period(params, today=TODAY)
    assert (period.kind, period.start, period.end) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "fortnight"}, "未知的统计时段“fortnight”"),
        (
            {"period": "month", "date": "2020-13-01"},
            "日期的格式应为 YYYY-MM-DD，收到的是“2020-13-01”",
        ),
        ({"period": "custom", "to": "2020-01-31"}, "自定义时段需要填写开始日期"),
        (
            {"period": "custom", "from": "2020-02-01", "to": "2020-01-31"},
            "开始日期不能晚于结束日期",
        ),
        ({"period": "custom", "from": "2015-01-01", "to": "2020-01-31"}, f"最长 {MAX_DAYS} 天"),
        ({"period": "year", "date": "9999-12-31"}, "日期应在"),
    ],
)
def test_a_bad_period_says_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        parse_period(params, today=TODAY)


def test_the_trend_grain_follows_the_length_of_the_period() -> None:
    grains = [
        parse_period(p, today=TODAY).grain()
        for p in (
            {"period": "month"},
            {"period": "custom", "from": "2020-01-01", "to": "2020-06-30"},
        )
    ]
    assert [*grains, parse_period({"period": "year"}, today=TODAY).grain()] == [
        "day",
        "week",
        "month",
    ]


@pytest.mark.usefixtures("tree")
def test_the_endpoints_answer_a_bad_period_with_400_and_the_reason(leader: User) -> None:
    client = signed_in(leader)

    data = client.get(
        "/stats/data/", {"period": "custom", "from": "2020-02-30", "to": "2020-03-01"}
    )
    heat = client.get("/stats/heat/", {"period": "decade"})
    export = client.get("/stats/export/unit.xlsx", {"period": "custom", "from": "2020-03-01"})
    page = client.get("/stats/", {"period": "custom", "from": "2020-03-02", "to": "2020-03-01"})
    screen = client.get("/stats/screen/", {"period": "week", "date": "yesterday"})

    assert data.status_code == 400
    assert "开始日期的格式应为 YYYY-MM-DD，收到的是“2020-02-30”" in data.json()["error"]
    assert heat.status_code == 400
    assert "decade" in heat.json()["error"]
    assert export.status_code == 400
    assert "结束日期" in export.content.decode()
    assert page.status_code == 400
    assert "开始日期不能晚于结束日期" in page.content.decode()
    assert screen.status_code == 400
    assert "yesterday" in screen.content.decode()


# -- downloads -----------------------------------------------------------------------------------
def _sheet(response: Any) -> list[list[Any]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


@pytest.mark.usefixtures("cases")
def test_the_unit_league_downloads_as_xlsx_with_its_scores(leader: User, tree: Tree) -> None:
    today = _today()
    start, end = selectors.period_bounds("month", today)

    response = signed_in(leader).get("/stats/export/unit.xlsx")
    rows = _sheet(response)

    assert "attachment" in response["Content-Disposition"]
    header = rows[0]
    assert header[:3] == ["单位编号", "处置单位", "接办"]
    assert {"结案率", "按期处置率", "综合得分", "等级", "排名"} <= set(header)
    league = selectors.unit_league(scope=tree.district, start=start, end=end)
    assert len(rows) == len(league) + 1
    by_name = {row[1]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    for unit in league:
        got = by_name[unit["name"]]
        assert (got["接办"], got["综合得分"], got["等级"]) == (
            unit["received"],
            unit["score"],
            unit["band"],
        )


@pytest.mark.usefixtures("cases")
def test_the_children_table_follows_the_scope_of_the_person(
    leader: User, community_staff: User, tree: Tree
) -> None:
    district = _sheet(signed_in(leader).get("/stats/export/children.xlsx"))
    community = _sheet(signed_in(community_staff).get("/stats/export/children.xlsx"))

    assert [(r[1], r[2]) for r in district[1:]] == [("西街道", 1), ("东街道", 5)]
    assert [(r[1], r[2]) for r in community[1:]] == [("甲社区第1网格", 1), ("甲社区第2网格", 0)]
    assert district[0][1] == "街道/乡镇"


@pytest.mark.usefixtures("cases")
def test_every_table_downloads_as_csv_too(east_staff: User, tree: Tree) -> None:
    client = signed_in(east_staff)
    for table in ("kpis", "trend", "major", "category", "channel", "unit", "areas", "children"):
        response = client.get(f"/stats/export/{table}.csv", {"period": "today"})
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
        assert response.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0], table
        assert all(rows[0]), table
    kpis = list(
        csv.DictReader(
            io.StringIO(client.get("/stats/export/kpis.csv").content.decode("utf-8-sig"))
        )
    )
    assert (kpis[0]["接办"], kpis[0]["办结"]) == ("5", "1")
    assert signed_in(east_staff).get("/stats/export/people.csv").status_code == 404
    assert signed_in(east_staff).get("/stats/export/unit.pdf").status_code == 404


@pytest.mark.usefixtures("cases")
def test_the_centres_report_downloads_for_the_scope(east_staff: User, leader: User) -> None:
    today = _today()

    response = signed_in(east_staff).get("/stats/report/week.xlsx", {"date": today.isoformat()})
    book = load_workbook(io.BytesIO(response.content))
    district = load_workbook(io.BytesIO(signed_in(leader).get("/stats/report/day.xlsx").content))

    assert response.status_code == 200
    assert book.sheetnames[:3] == ["周报", "概况", "12345考核指标"]
    headline = {row[0]: row[1] for row in book["周报"].iter_rows(min_row=2, values_only=True)}
    assert headline["范围"] == "东街道"
    summary = [list(r) for r in book["概况"].iter_rows(values_only=True)]
    assert summary[1][summary[0].index("接办")] == 5
    assert district.sheetnames[0] == "日报"
    d_summary = [list(r) for r in district["概况"].iter_rows(values_only=True)]
    assert d_summary[1][d_summary[0].index("接办")] == 6
    assert signed_in(leader).get("/stats/report/quarter.xlsx").status_code == 404
    assert signed_in(leader).get("/stats/report/day.xlsx", {"date": "1.1.2020"}).status_code == 400


# -- the pages -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("cases")
def test_the_pages_carry_their_configuration_and_the_download_links(
    east_staff: User, tree: Tree
) -> None:
    client = signed_in(east_staff)

    page = client.get("/stats/", {"period": "week"}).content.decode()
    screen = client.get("/stats/screen/", {"refresh": "5"}).content.decode()

    assert "统计分析" in page
    assert "东街道" in page
    assert f"/stats/export/unit.xlsx?grid={tree.east.pk}&amp;period=week" in page
    assert f"/stats/report/month.xlsx?grid={tree.east.pk}" in page
    assert "vendor/echarts/echarts.min.js" in page
    assert "web/stats.js" in page
    assert '"refresh": 10' in screen  # at least 10 seconds between fetches
    assert '"mode": "screen"' in screen
    # No day asked for: the screen's "month" follows the calendar when left running.
    assert '"period": {"period": "month"}' in screen
    pinned = client.get("/stats/screen/", {"period": "week", "date": "2020-06-17"}).content
    assert '"period": {"period": "week", "date": "2020-06-17"}' in pinned.decode()
