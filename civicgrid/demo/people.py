"""Invented people for the demo district: names, phone numbers, who patrols which grid.

Everything here is generated from a seed and deterministic; no real person's
data is used.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Common surnames, most frequent first, with the northwest's 马, 魏, 牛, 师, 包, 祁, 雷.
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾"
    "丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤"
    "尹黎易常武乔贺赖龚文牛师包祁达蒲漆安火把权"
)
#: Characters common in given names, by the sex they are more often given to.
GIVEN_MALE = "伟强磊军洋勇杰涛明超刚建文辉力鑫鹏宇浩凯斌亮俊海波峰东国庆荣成志福生龙云飞彬博远"
GIVEN_FEMALE = "芳娜敏静丽艳娟秀霞桂英华玉萍红兰梅晶婷雪慧颖琳欣宁丹倩燕佳嘉晨玲琴凤莉"
#: Mobile prefixes of the three carriers.
# fmt: off
MOBILE_PREFIXES = (
    "139", "138", "137", "136", "135", "134", "159", "158", "157", "152", "151", "150",
    "188", "187", "183", "182", "178", "130", "131", "132", "155", "156", "185", "186",
    "176", "133", "153", "180", "181", "189", "177", "173", "199",
)
# fmt: on
#: Workers on a level-3 grid, before the total is fitted: mostly 4–6.
WORKERS_PER_GRID = ((3, 2), (4, 25), (5, 40), (6, 28), (7, 5))
#: Grid workers who also cover a second grid in their community.
DOUBLE_COVER = 24
WORKER_PREFIX = "gw"
SECRETARY_PREFIX = "sj"


class People:
    """A seeded source of names and unique mobile numbers."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.phones: set[str] = set()

    def name(self) -> str:
        surname = self.random.choice(SURNAMES)
        given = GIVEN_FEMALE if self.random.random() < 0.5 else GIVEN_MALE
        size = 1 if self.random.random() < 0.3 else 2
        return surname + "".join(self.random.choice(given) for _ in range(size))

    def mobile(self) -> str:
        while True:
            number = self.random.choice(MOBILE_PREFIXES) + f"{self.random.randrange(10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def landline(self) -> str:
        """A Lanzhou office number (area code 0931)."""
        return f"0931-{self.random.choice('28')}{self.random.randrange(10**6):06d}"


@dataclass
class WorkerPlan:
    username: str
    display_name: str
    phone: str
    #: (grid code, membership title), the first being the worker's own grid.
    grids: list[tuple[str, str]] = field(default_factory=list)


def plan_grid_workers(
    grid_codes: Sequence[str],
    *,
    total: int,
    seed: int,
    community_length: int = 12,
    people: People | None = None,
) -> list[WorkerPlan]:
    """``total`` grid workers over ``grid_codes``: every grid has some, most 4–6.

    The first worker of a grid is its 网格长. A few workers (``DOUBLE_COVER``)
    also patrol a second grid of their own community.
    """
    rng = random.Random(seed)
    people = people or People(seed)
    codes = sorted(grid_codes)
    values = [n for n, _w in WORKERS_PER_GRID]
    weights = [w for _n, w in WORKERS_PER_GRID]
    counts = dict(zip(codes, rng.choices(values, weights, k=len(codes)), strict=True))
    by_community: dict[str, list[str]] = {}
    for code in codes:
        by_community.setdefault(code[:community_length], []).append(code)
    shared = [c for c, grids in by_community.items() if len(grids) >= 2]
    doubles = min(DOUBLE_COVER, len(shared))
    memberships = total + doubles
    if memberships < len(codes):
        raise ValueError("fewer grid workers than grids")
    _fit(counts, memberships, rng)
    # receiver -> giver: a worker of the community's first grid also covers its second.
    pairs = {by_community[c][1]: by_community[c][0] for c in sorted(rng.sample(shared, doubles))}
    workers: list[WorkerPlan] = []
    lender: dict[str, WorkerPlan] = {}
    for code in codes:
        own = counts[code] - (1 if code in pairs else 0)
        for n in range(1, own + 1):
            worker = WorkerPlan(
                username=f"{WORKER_PREFIX}{code}-{n:02d}",
                display_name=people.name(),
                phone=people.mobile(),
                grids=[(code, "网格长" if n == 1 else "")],
            )
            workers.append(worker)
            if n == min(2, own):  # not the 网格长 if the grid has another
                lender[code] = worker
    for receiver, giver in pairs.items():
        lender[giver].grids.append((receiver, ""))
    return workers


def _fit(counts: dict[str, int], total: int, rng: random.Random) -> None:
    """Move counts by one at a time until they sum to ``total``, keeping them in 4–6
    as long as that is possible and always at least 1."""
    codes = list(counts)
    while (current := sum(counts.values())) != total:
        if current < total:
            tiers = [
                [c for c in codes if counts[c] < 6],
                [c for c in codes if counts[c] < 7],
                codes,
            ]
            step = 1
        else:
            tiers = [[c for c in codes if counts[c] > 4], [c for c in codes if counts[c] > 1]]
            step = -1
        candidates = next(t for t in tiers if t)
        counts[rng.choice(candidates)] += step
