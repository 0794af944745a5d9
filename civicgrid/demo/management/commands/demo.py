"""``civicgrid demo``: load the demo district (七里河区) and print its logins."""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.accounts.models import Role, User
from civicgrid.cases.models import Status
from civicgrid.demo import history
from civicgrid.demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
from civicgrid.demo.district import DEFAULT_SEED
from civicgrid.demo.history import HistoryError, load_history
from civicgrid.demo.recent import DAYS, RecentError, load_recent
from civicgrid.demo.services import load_demo
from civicgrid.grids.models import Grid, Level
from civicgrid.grids.services import GridError
from civicgrid.stats import selectors


def _seed(value: str) -> int:
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(_("种子须为非负整数：%(v)s") % {"v": value})
    return seed


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        days = 0
    if not 1 <= days <= 60:
        raise argparse.ArgumentTypeError(_("天数须为 1～60 的整数：%(v)s") % {"v": value})
    return days


class Command(BaseCommand):
    help = _(
        "载入演示区县：兰州市七里河区的真实街道、社区及编码，生成的 325 个网格、"
        "18 个处置单位、1644 名网格员和各角色的演示账号，以及最近两周到此刻的案件。"
        "可重复运行，已有的数据不会改动。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help=_("系统中已有任何网格时什么也不做"),
        )
        parser.add_argument(
            "--seed",
            type=_seed,
            default=DEFAULT_SEED,
            help=_("生成边界和人员的随机种子（默认 %(default)s）"),
        )
        parser.add_argument(
            "--history",
            action="store_true",
            help=_(
                "另生成 2020 年全年的 12345 热线案件（2020-01-01 至 12-23 共 61802 件，"
                "含事件、时限和统计；可重复运行）"
            ),
        )
        parser.add_argument(
            "--history-scale", type=float, default=1.0, help=_("历史案件数量的比例（测试用）")
        )
        parser.add_argument(
            "--no-recent",
            action="store_true",
            help=_("不生成最近两周到此刻的案件（默认生成，让各工作台有待办）"),
        )
        parser.add_argument(
            "--recent-days",
            type=_days,
            default=DAYS,
            help=_("最近案件覆盖的天数，含今天（默认 %(default)s）"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options.get("verbosity", 1))
        loaded = self._load(options)
        if loaded and not options["no_recent"]:
            self._recent(options)
        if loaded:
            self._print_logins()
        if options["history"]:
            self._history(options)

    def _recent(self, options: dict[str, Any]) -> None:
        try:
            summary = load_recent(seed=options["seed"], days=options["recent_days"])
        except RecentError as exc:
            raise CommandError(str(exc)) from exc
        if summary.existing:
            self.stdout.write(
                _("最近的演示案件已有 %(n)d 件，未重新生成。") % {"n": summary.existing}
            )
            self.stdout.write("")
            return
        self.stdout.write(
            _(
                "最近 %(days)d 天的案件（%(start)s 至此刻）：写入 %(w)d 件"
                "（事件 %(ev)d 条，时限 %(d)d 条），用时 %(s).1f 秒"
            )
            % {
                "days": options["recent_days"],
                "start": summary.start.isoformat(),
                "w": summary.written,
                "ev": summary.events,
                "d": summary.deadlines,
                "s": summary.seconds,
            }
        )
        counts = "，".join(
            f"{label} {summary.statuses[value]}"
            for value, label in Status.choices
            if summary.statuses.get(value)
        )
        self.stdout.write(_("  此刻：%(counts)s") % {"counts": counts})
        self.stdout.write("")

    def _history(self, options: dict[str, Any]) -> None:
        try:
            summary = load_history(
                seed=options["seed"], scale=options["history_scale"], progress=self._progress
            )
        except HistoryError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            _(
                "2020 年历史案件：计划 %(p)d 件，已有 %(e)d 件，本次写入 %(w)d 件"
                "（事件 %(ev)d 条，时限 %(d)d 条），用时 %(s).1f 秒"
            )
            % {
                "p": summary.planned,
                "e": summary.existing,
                "w": summary.written,
                "ev": summary.events,
                "d": summary.deadlines,
                "s": summary.seconds,
            }
        )
        # What the statistics compute from the rows (not the plan's figures).
        stats = selectors.summary(scope=None, start=history.START, end=history.END)
        totals = stats["totals"]
        self.stdout.write(
            _("  统计 %(a)s ~ %(b)s：接办 %(r)d，办结 %(c)d，在办 %(o)d；承办单位 %(n)d 个")
            % {
                "a": history.START.isoformat(),
                "b": history.END.isoformat(),
                "r": totals["received"],
                "c": totals["closed"],
                "o": totals["in_progress"],
                "n": stats["units_involved"],
            }
        )
        for domain in stats["domains"]:
            self.stdout.write(
                _("    %(name)s：接办 %(r)d，办结 %(c)d，在办 %(o)d")
                % {
                    "name": domain["name"],
                    "r": domain["received"],
                    "c": domain["closed"],
                    "o": domain["in_progress"],
                }
            )

    def _progress(self, message: str) -> None:
        if self.verbosity > 1:
            self.stderr.write(message)

    def _load(self, options: dict[str, Any]) -> bool:
        """Load the demo district; False when ``--if-empty`` finds grids."""
        if options["if_empty"] and Grid.objects.exists():
            self.stdout.write(_("系统中已有网格，未载入演示数据。"))
            self._print_logins()
            return False
        started = time.monotonic()
        try:
            summary = load_demo(seed=options["seed"])
        except GridError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        created = summary.created
        levels = summary.grids
        lines = [
            _("演示区县：七里河区（620103），用时 %(s).1f 秒") % {"s": elapsed},
            _("  网格：区县 %(d)d，街道/乡镇 %(s)d，社区/村 %(c)d，网格 %(g)d（本次新建 %(n)d）")
            % {
                "d": levels[Level.DISTRICT],
                "s": levels[Level.SUBDISTRICT],
                "c": levels[Level.COMMUNITY],
                "g": levels[Level.GRID],
                "n": created["grids"],
            },
            _("  处置单位：%(units)d（本次新建 %(n)d）")
            % {"units": summary.units, "n": created["units"]},
            _("  网格员：%(workers)d，社区书记：%(secretaries)d，演示账号：%(accounts)d")
            % {
                "workers": summary.grid_workers,
                "secretaries": summary.secretaries,
                "accounts": summary.accounts,
            },
            _("  本次新建用户 %(users)d 个，岗位 %(memberships)d 个")
            % {"users": created["users"], "memberships": created["memberships"]},
            "",
        ]
        for line in lines:
            self.stdout.write(line)
        return True

    def _print_logins(self) -> None:
        if not User.objects.filter(username__in=[a.username for a in DEMO_ACCOUNTS]).exists():
            return
        self.stdout.write(
            self.style.SUCCESS(_("演示账号（密码均为 %(p)s）：") % {"p": DEMO_PASSWORD})
        )
        width = max(len(a.username) for a in DEMO_ACCOUNTS)
        for account in DEMO_ACCOUNTS:
            self.stdout.write(
                f"  {account.username:<{width}}  {account.password}  "
                f"{Role(account.role).label}  {account.scope}  {account.description}"
            )
