"""The shape of the demo district's 2020: how many cases of what, when, and in whose words.

Plain data. Weights are relative within a domain (城市管理 or 民生诉求): the
generator draws each case's category from them, multiplied by the month's
seasonal factor. The seed district's published top topics are noise (噪音扰民),
street vending (摆摊设点 → 占道经营) and city appearance (市容市貌 → 市容环境); the
weights make them the three largest topics by a wide margin. Everything here is
invented: no real case, person or complaint is reproduced.
"""

from __future__ import annotations

# fmt: off
#: Monthly factors (January … December) of seasonal categories.
SEASONS: dict[str, tuple[float, ...]] = {
    "flat":         (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "summer":       (0.5, 0.5, 0.7, 0.9, 1.2, 1.5, 1.7, 1.7, 1.3, 0.9, 0.6, 0.5),
    "ice":          (2.4, 1.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 1.4, 2.6),
    "heating":      (2.2, 1.7, 1.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 2.3, 2.3),
    "rain":         (0.2, 0.2, 0.4, 0.8, 1.3, 1.8, 2.3, 2.0, 1.2, 0.6, 0.2, 0.2),
    "school":       (0.6, 0.8, 0.8, 0.8, 0.9, 1.4, 2.2, 2.4, 1.5, 0.6, 0.5, 0.5),
    "wages":        (2.4, 1.2, 0.8, 0.7, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 1.2, 2.2),
    "epidemic":     (2.5, 4.0, 2.5, 1.0, 0.6, 0.8, 0.5, 0.4, 0.4, 0.5, 0.8, 1.2),
    "dust":         (1.4, 1.3, 1.2, 1.0, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.2, 1.4),
    "construction": (0.2, 0.1, 0.8, 1.2, 1.3, 1.3, 1.3, 1.3, 1.3, 1.2, 0.8, 0.3),
}
#: Share of calls in each hour of the day (0 … 23) by profile.
HOURS: dict[str, tuple[float, ...]] = {
    "day":     (0.3, 0.2, 0.2, 0.2, 0.2, 0.4, 0.8, 2.0, 6.0, 9.0, 9.5, 8.5,
                5.0, 5.0, 7.5, 8.0, 8.0, 7.0, 5.0, 4.5, 4.0, 3.0, 2.0, 1.0),
    "evening": (2.0, 1.2, 0.6, 0.3, 0.2, 0.2, 0.4, 1.0, 2.5, 3.5, 3.5, 3.5,
                3.0, 3.0, 3.5, 3.5, 4.0, 5.0, 6.5, 8.5, 10.0, 11.0, 10.0, 5.5),
    "morning": (0.3, 0.2, 0.2, 0.4, 1.0, 3.0, 7.0, 12.0, 14.0, 11.0, 8.0, 6.0,
                4.0, 3.5, 3.5, 3.5, 3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.5),
    # Grid workers on their rounds (the demo's present).
    "patrol":  (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.5, 9.0, 13.0, 13.0, 10.0,
                2.5, 1.5, 6.0, 11.0, 12.0, 10.0, 4.0, 1.5, 0.8, 0.3, 0.0, 0.0),
}
#: Day-of-week factors (Monday … Sunday).
WEEKDAYS = (1.15, 1.08, 1.05, 1.02, 1.0, 0.64, 0.6)
#: The same for grid workers' reports (rounds on workdays) and the citizens' portal.
PATROL_WEEKDAYS = (1.1, 1.1, 1.1, 1.1, 1.05, 0.3, 0.25)
PORTAL_WEEKDAYS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1)
#: Factor on an official holiday; the Spring Festival holiday of 2020 was extended
#: (24 January … 2 February) and the hotline was quieter still.
HOLIDAY = 0.55
SPRING_FESTIVAL = ("2020-01-24", "2020-02-02", 0.42)
#: The year's months (January … December), whatever the category.
MONTHS = (0.96, 0.9, 1.0, 0.98, 1.0, 1.05, 1.12, 1.12, 1.0, 0.93, 1.0, 1.04)
# fmt: on

#: Category code → (weight, season, hours). Codes missing from the catalogue are skipped.
URBAN: dict[str, tuple[float, str, str]] = {
    # 噪音扰民 (an extension of the catalogue: SJ06 by source)
    "SJ0601": (700, "construction", "evening"),
    "SJ0602": (820, "summer", "evening"),
    "SJ0603": (1500, "summer", "evening"),
    "SJ0604": (300, "flat", "evening"),
    # 摆摊设点 → 占道经营
    "SJ0502": (2800, "summer", "day"),
    "SJ0501": (150, "flat", "day"),
    # 市容市貌 → 市容环境 (events and components)
    "SJ0101": (300, "construction", "day"),
    "SJ0102": (700, "summer", "day"),
    "SJ0103": (260, "flat", "day"),
    "SJ0104": (350, "flat", "day"),
    "SJ0105": (40, "summer", "day"),
    "SJ0106": (130, "summer", "day"),
    "SJ0107": (450, "flat", "day"),
    "SJ0108": (60, "flat", "day"),
    "BJ0301": (120, "flat", "day"),
    "BJ0302": (90, "flat", "day"),
    "BJ0303": (30, "flat", "day"),
    "BJ0304": (40, "flat", "day"),
    "BJ0305": (15, "flat", "day"),
    "BJ0306": (30, "flat", "day"),
    "BJ0307": (20, "flat", "day"),
    "BJ0308": (10, "flat", "day"),
    # the rest of the city-management catalogue
    "SJ0404": (450, "ice", "morning"),
    "SJ0403": (150, "rain", "day"),
    "SJ0401": (120, "flat", "day"),
    "SJ0402": (40, "rain", "day"),
    "SJ0405": (220, "rain", "day"),
    "SJ0301": (220, "construction", "evening"),
    "SJ0302": (90, "construction", "day"),
    "SJ0303": (200, "dust", "day"),
    "SJ0304": (80, "construction", "day"),
    "SJ0505": (420, "flat", "day"),
    "SJ0506": (160, "summer", "day"),
    "SJ0503": (30, "flat", "day"),
    "SJ0504": (40, "flat", "day"),
    "SJ0605": (260, "summer", "evening"),
    "SJ0606": (220, "summer", "evening"),
    "SJ0607": (160, "summer", "day"),
    "SJ0201": (120, "flat", "day"),
    "SJ0202": (50, "flat", "day"),
    "SJ0203": (60, "flat", "day"),
    "SJ0204": (30, "flat", "day"),
    "BJ0101": (40, "flat", "day"),
    "BJ0102": (60, "flat", "day"),
    "BJ0103": (40, "rain", "day"),
    "BJ0104": (40, "rain", "day"),
    "BJ0105": (15, "flat", "day"),
    "BJ0106": (15, "flat", "day"),
    "BJ0107": (15, "flat", "day"),
    "BJ0108": (15, "flat", "day"),
    "BJ0109": (15, "heating", "day"),
    "BJ0110": (20, "flat", "day"),
    "BJ0111": (10, "flat", "day"),
    "BJ0112": (15, "flat", "day"),
    "BJ0113": (10, "flat", "day"),
    "BJ0114": (160, "flat", "evening"),
    "BJ0115": (30, "flat", "evening"),
    "BJ0201": (40, "flat", "day"),
    "BJ0202": (25, "flat", "day"),
    "BJ0203": (40, "flat", "day"),
    "BJ0204": (20, "flat", "day"),
    "BJ0205": (10, "flat", "day"),
    "BJ0206": (10, "flat", "day"),
    "BJ0207": (30, "flat", "day"),
    "BJ0208": (20, "flat", "day"),
    "BJ0209": (10, "flat", "day"),
    "BJ0401": (110, "summer", "day"),
    "BJ0402": (10, "flat", "day"),
    "BJ0403": (50, "summer", "day"),
    "BJ0404": (20, "flat", "day"),
    "BJ0405": (5, "flat", "day"),
    "BJ0406": (20, "flat", "day"),
    "BJ0407": (10, "flat", "day"),
    "BJ0408": (10, "summer", "day"),
    "BJ0501": (10, "flat", "day"),
    "BJ0502": (5, "flat", "day"),
    "BJ0503": (20, "flat", "day"),
    "BJ0504": (20, "flat", "day"),
    "BJ0601": (5, "flat", "day"),
    "BJ0602": (20, "construction", "day"),
    "BJ0603": (5, "flat", "day"),
    "BJ0604": (5, "flat", "day"),
    "BJ0605": (15, "flat", "day"),
    "BJ0606": (10, "flat", "day"),
}

REQUESTS: dict[str, tuple[float, str, str]] = {
    "SQ0101": (1300, "flat", "day"),
    "SQ0102": (550, "summer", "day"),
    "SQ0103": (350, "flat", "day"),
    "SQ0104": (450, "heating", "day"),
    "SQ0105": (350, "flat", "day"),
    "SQ0201": (1000, "summer", "day"),
    "SQ0202": (300, "summer", "day"),
    "SQ0203": (250, "flat", "day"),
    "SQ0204": (350, "flat", "day"),
    "SQ0301": (1500, "heating", "morning"),
    "SQ0302": (350, "heating", "day"),
    "SQ0303": (450, "heating", "day"),
    "SQ0304": (200, "heating", "day"),
    "SQ0401": (300, "flat", "day"),
    "SQ0402": (350, "heating", "day"),
    "SQ0403": (300, "flat", "day"),
    "SQ0404": (250, "flat", "day"),
    "SQ0501": (1400, "flat", "day"),
    "SQ0502": (1000, "flat", "day"),
    "SQ0503": (750, "flat", "day"),
    "SQ0504": (1200, "flat", "day"),
    "SQ0505": (300, "flat", "day"),
    "SQ0601": (1300, "wages", "day"),
    "SQ0602": (600, "flat", "day"),
    "SQ0603": (1000, "flat", "day"),
    "SQ0604": (700, "flat", "day"),
    "SQ0701": (900, "school", "day"),
    "SQ0702": (500, "school", "day"),
    "SQ0703": (400, "school", "day"),
    "SQ0704": (250, "flat", "day"),
    "SQ0801": (800, "flat", "day"),
    "SQ0802": (800, "flat", "day"),
    "SQ0803": (1200, "epidemic", "day"),
    "SQ0804": (500, "epidemic", "day"),
    "SQ0901": (800, "flat", "day"),
    "SQ0902": (500, "flat", "day"),
    "SQ0903": (600, "flat", "day"),
    "SQ0904": (1000, "flat", "day"),
    "SQ1001": (900, "flat", "day"),
    "SQ1002": (700, "flat", "day"),
    "SQ1003": (600, "flat", "day"),
    "SQ1004": (1000, "flat", "day"),
    "SQ1005": (900, "construction", "day"),
    "SQ1101": (1200, "flat", "day"),
    "SQ1102": (600, "summer", "day"),
    "SQ1103": (400, "flat", "day"),
    "SQ1104": (300, "flat", "day"),
    "SQ1105": (600, "flat", "day"),
    "SQ1201": (500, "flat", "evening"),
    "SQ1202": (900, "summer", "evening"),
    "SQ1203": (300, "heating", "day"),
    "SQ1204": (700, "flat", "day"),
    "SQ1301": (900, "flat", "day"),
    "SQ1302": (600, "flat", "day"),
    "SQ1303": (200, "flat", "day"),
    "SQ1304": (300, "flat", "day"),
    "SQ1305": (1300, "flat", "day"),
    "SQ1401": (600, "dust", "day"),
    "SQ1402": (200, "summer", "day"),
    "SQ1403": (300, "flat", "day"),
    "SQ1501": (900, "flat", "day"),
    "SQ1502": (400, "flat", "day"),
    "SQ1503": (1300, "flat", "day"),
}

#: Request types (12345 诉求类型) by category code prefix, as weights.
REQUEST_TYPES: dict[str, dict[str, float]] = {
    "SQ13": {"enquiry": 80, "help": 20},
    "SQ1501": {"suggestion": 100},
    "SQ1502": {"suggestion": 100},
    "SQ1503": {"enquiry": 50, "help": 40, "complaint": 10},
    "SQ06": {"help": 60, "complaint": 40},
    "SQ07": {"enquiry": 45, "complaint": 40, "help": 15},
    "SQ08": {"enquiry": 40, "complaint": 40, "help": 20},
    "SQ": {"complaint": 45, "help": 35, "enquiry": 15, "report": 5},
    "SJ0101": {"report": 60, "complaint": 40},
    "SJ0201": {"report": 60, "complaint": 40},
    "SJ0501": {"report": 60, "complaint": 40},
    "SJ": {"complaint": 72, "report": 25, "suggestion": 3},
    "BJ": {"complaint": 55, "report": 40, "suggestion": 5},
}

#: Categories where a case is sometimes urgent or an emergency: (urgent, emergency) shares.
URGENT: dict[str, tuple[float, float]] = {
    "SJ04": (0.10, 0.03),
    "SQ0101": (0.10, 0.02),
    "SQ0201": (0.10, 0.02),
    "SQ0402": (0.15, 0.05),
    "BJ0110": (0.20, 0.05),
    "BJ0601": (0.20, 0.10),
}
DEFAULT_URGENT = (0.02, 0.0)

#: Categories whose cases are sometimes parked (挂账): engineering works, plans.
PARKABLE = ("SJ0101", "SJ0402", "SJ0604", "SQ1005", "SQ1001", "SQ0505", "BJ0209", "SQ0903")

#: Real road and place names of 七里河区 (facts, used to make addresses look familiar).
PLACES = (
    "西津西路",
    "西津东路",
    "建兰路",
    "南滨河中路",
    "敦煌路",
    "土门墩",
    "小西湖",
    "秀川路",
    "五里铺",
    "龚家湾",
    "吴家园",
    "兰工坪路",
    "晏家坪",
    "上西园",
    "硷沟沿",
    "七里河桥",
    "骆驼巷",
    "华林坪",
    "彭家坪",
    "西湖公园",
)
BUILDINGS = ("小区", "家属院", "市场", "广场", "商铺", "路口", "公交站", "学校门口", "巷道")

#: What citizens say, by category code (or its 大类), ``{place}`` filled in.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "SJ0601": (
        "{place}附近工地夜间施工，机械轰鸣声很大，影响居民休息",
        "{place}工地早上六点前就开始施工，噪音扰民",
    ),
    "SJ0602": (
        "{place}商铺用高音喇叭招揽顾客，噪音很大",
        "{place}酒吧音响声音过大，深夜仍未停止",
    ),
    "SJ0603": (
        "{place}广场舞音响声音过大，晚上十点后仍在跳，影响休息",
        "{place}楼上住户夜间装修，噪音扰民",
        "{place}有人在楼下长时间大声喧哗",
    ),
    "SJ0604": ("{place}路段夜间车辆鸣笛、改装车轰鸣，影响居民休息",),
    "SJ0502": (
        "{place}有人占道摆摊设点，影响行人和车辆通行",
        "{place}流动摊贩占用人行道经营，环境脏乱",
        "{place}商户店外经营，货物摆到人行道上",
    ),
    "SJ01": (
        "{place}环境卫生差，垃圾堆积无人清理",
        "{place}有人乱堆杂物，影响市容",
    ),
    "SJ0101": ("{place}有人私自搭建彩钢房",),
    "SJ0102": ("{place}路边暴露垃圾未及时清运，气味难闻",),
    "SJ0404": (
        "{place}路面结冰，行人车辆多次滑倒，请尽快处理",
        "{place}坡道积雪结冰，出行不便",
    ),
    "SJ0403": ("{place}下雨后路面积水严重，车辆无法通行",),
    "SQ0301": (
        "{place}家中暖气不热，室温只有十几度",
        "{place}整栋楼暖气不热，请供热公司处理",
    ),
    "SQ0101": ("{place}突然停水，未见任何通知",),
    "SQ0201": ("{place}停电多时，未见抢修",),
    "SQ0501": ("{place}物业服务差，楼道卫生无人打扫",),
    "SQ0601": ("反映在{place}附近工地务工，被拖欠工资数月",),
    "SQ0803": ("咨询{place}社区疫情防控有关规定", "反映{place}有人未按规定居家隔离"),
    "SQ1305": ("咨询相关政策办理流程和所需材料",),
}
DEFAULT_DESCRIPTION = ("市民反映{place}存在{name}问题，请相关部门尽快处理",)

#: What units report back, by category code (or its 大类).
RESULTS: dict[str, tuple[str, ...]] = {
    "SJ06": ("已到现场调查，责令噪声源整改，现场已恢复安静", "已与当事人沟通，约定活动时间和音量"),
    "SJ0502": ("已劝离占道摊贩，现场恢复通行", "已对店外经营商户进行教育并责令整改"),
    "SJ01": ("已组织清理，现场恢复整洁", "已安排环卫人员清运完毕"),
    "SJ0404": ("已组织人员清除积雪并撒布融雪剂，路面恢复通行",),
    "SQ03": ("已联系供热单位入户检修，室温已达标",),
    "SQ": ("已联系诉求人了解情况并答复，问题已解决", "已协调相关单位处理完毕并告知诉求人"),
}
DEFAULT_RESULT = ("已到现场处置，问题已解决",)

SEND_BACK_REASONS = ("非我单位职责，请改派", "该地点不在我单位管辖范围，请改派")
EXTENSION_REASONS = ("需协调相关部门共同处理，申请延期", "涉及维修工程，需采购材料，申请延期")
DENY_NOTES = ("理由不充分，请按期办结",)
VERIFY_FAIL_NOTES = ("现场复核问题仍未解决，需返工", "复核发现整改不到位")
REOPEN_REASONS = ("市民对处理结果不满意，要求重新办理", "市民反映问题未实际解决")
URGE_REASONS = ("请加快办理进度", "市民多次来电催办，请尽快处理")
PARK_REASONS = ("需纳入年度工程计划，暂挂账", "涉及历史遗留问题，需专题研究，暂挂账")
REJECT_REASONS = (
    "不属于本区受理范围，已告知市民向相关部门反映",
    "诉求内容不明确，已告知市民补充后再行反映",
    "涉及司法程序，不属于热线受理范围",
)
VOID_REASONS = ("重复诉求，已有同一问题的案件在办", "市民来电撤回诉求", "市民反映的问题已自行解决")
DENY_VOID_NOTES = ("与已有案件不是同一问题，请继续办理",)
#: What a grid worker writes when fixing a small problem on the spot (自处理).
SPOT_RESULTS = (
    "已现场劝离，恢复正常秩序",
    "已现场清理完毕",
    "已现场督促当事人整改到位",
    "已现场处置，问题已解决",
)
