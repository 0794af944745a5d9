"""The demo logins: one account for every role, all with the same known password.

Plain data (no models imported), so the README, ``make run`` and the command
can list them without a database.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The password of every demo account. A demo database is not for production.
DEMO_PASSWORD = "civicgrid-demo"  # noqa: S105 - published on purpose


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    #: A ``civicgrid.accounts.models.Role`` value.
    role: str
    #: The code of the grid the role covers, or of the handling unit for ``unit_handler``.
    scope: str
    #: What the account is for, in Chinese.
    description: str
    display_name: str
    title: str = ""


#: Codes the demo accounts are placed on.
DISTRICT_SCOPE = "620103"
STREET_SCOPE = "620103009"  # 秀川街道
COMMUNITY_SCOPE = "620103009008"  # 银滩花园社区 (named in the seed report)
GRID_SCOPE = "620103009008001"  # 银滩花园社区第1网格
CITY_MANAGEMENT_UNIT = "620103-CGJ"  # 七里河区城市管理局

DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        username="admin",
        password=DEMO_PASSWORD,
        role="admin",
        scope=DISTRICT_SCOPE,
        description="系统管理员（超级用户）：管理网格、单位、账号，全区",
        display_name="演示管理员",
        title="系统管理员",
    ),
    DemoAccount(
        username="calltaker",
        password=DEMO_PASSWORD,
        role="call_taker",
        scope=DISTRICT_SCOPE,
        description="受理员：受理 12345 热线和网格员上报的事件，全区",
        display_name="演示受理员",
        title="受理员",
    ),
    DemoAccount(
        username="dispatcher",
        password=DEMO_PASSWORD,
        role="dispatcher",
        scope=DISTRICT_SCOPE,
        description="派遣员：立案、派遣、改派，全区",
        display_name="演示派遣员",
        title="派遣员",
    ),
    DemoAccount(
        username="supervisor",
        password=DEMO_PASSWORD,
        role="supervisor",
        scope=DISTRICT_SCOPE,
        description="值班长：审批作废、延期、挂账，结案、督办，全区",
        display_name="演示值班长",
        title="值班长",
    ),
    DemoAccount(
        username="leader",
        password=DEMO_PASSWORD,
        role="leader",
        scope=DISTRICT_SCOPE,
        description="领导：查看全区看板和考评",
        display_name="演示领导",
        title="分管副区长",
    ),
    DemoAccount(
        username="unit",
        password=DEMO_PASSWORD,
        role="unit_handler",
        scope=CITY_MANAGEMENT_UNIT,
        description="处置单位人员：七里河区城市管理局，签收、处置、反馈",
        display_name="演示处置人员",
        title="执法队员",
    ),
    DemoAccount(
        username="gridworker",
        password=DEMO_PASSWORD,
        role="grid_worker",
        scope=GRID_SCOPE,
        description="网格员：秀川街道银滩花园社区第1网格，巡查、上报、核查",
        display_name="演示网格员",
        title="网格长",
    ),
    DemoAccount(
        username="community",
        password=DEMO_PASSWORD,
        role="community_staff",
        scope=COMMUNITY_SCOPE,
        description="社区书记：秀川街道银滩花园社区",
        display_name="演示社区书记",
        title="社区书记",
    ),
    DemoAccount(
        username="street",
        password=DEMO_PASSWORD,
        role="community_staff",
        scope=STREET_SCOPE,
        description="街道工作人员：秀川街道",
        display_name="演示街道干部",
        title="街道网格办主任",
    ),
)
