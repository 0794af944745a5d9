"""``civicgrid stats``: figures of a period as JSON, CSV or XLSX; the centre's report; rebuilds.

    civicgrid stats --from 2020-01-01 --to 2020-12-23 [--by unit] [--format json] [-o FILE]
    civicgrid stats report --period day|week|month --date 2020-12-21 -o 周报.xlsx
    civicgrid stats rebuild --from 2020-01-01 --to 2020-12-23 [--refresh]

Every figure is computed from the rollups of the cases taken in during the period
(``stats.selectors``). JSON carries the totals, the domains (城市管理 …), the 12345
KPIs, the number of units involved and the rows of the breakdown; CSV and XLSX the
breakdown table (XLSX: the totals too, on a second sheet).
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.core.routers import use_replica
from civicgrid.grids.models import Grid
from civicgrid.stats import exports, measures, selectors
from civicgrid.stats.rollups import rebuild_rollups

BY = (
    "unit",
    "category",
    "major",
    "kind",
    "domain",
    "topic",
    "channel",
    "request_type",
    "subdistrict",
    "community",
    "grid",
    "areas",
    "positions",
)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(_("日期须为 YYYY-MM-DD：%(v)s") % {"v": value}) from exc


class Command(BaseCommand):
    help = _(
        "统计：按时段输出接办、办结、在办等指标及分项（JSON/CSV/XLSX），"
        "生成中心日报/周报/月报（report），或重建汇总表（rebuild）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            nargs="?",
            default="table",
            choices=["table", "report", "rebuild"],
            help=_("table（默认）：指标与分项；report：中心报表；rebuild：重建汇总表"),
        )
        parser.add_argument("--from", dest="start", help=_("起始日期（含），YYYY-MM-DD"))
        parser.add_argument("--to", dest="end", help=_("截止日期（含），YYYY-MM-DD"))
        parser.add_argument(
            "--by",
            choices=BY,
            default="unit",
            help=_("分项维度（默认 unit，含综合得分）；areas：下级区域考评；positions：岗位考评"),
        )
        parser.add_argument(
            "--role",
            choices=list(exports.POSITION_COLUMNS),
            default="grid_worker",
            help=_("岗位考评的岗位（--by positions）"),
        )
        parser.add_argument(
            "--format", choices=["json", "csv", "xlsx"], default="json", help=_("输出格式")
        )
        parser.add_argument("-o", "--output", help=_("输出文件（默认标准输出；xlsx 必须指定）"))
        parser.add_argument("--scope", help=_("网格编码：只统计该网格及其下级（默认全部）"))
        parser.add_argument(
            "--period", choices=["day", "week", "month"], default="day", help=_("报表周期")
        )
        parser.add_argument("--date", help=_("报表所在日期，YYYY-MM-DD"))
        parser.add_argument(
            "--refresh", action="store_true", help=_("重建前先按案件重新计算统计事实")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "rebuild":
            self._rebuild(options)
            return
        # Figures and reports bear a replica's lag; a rebuild must read the primary.
        with use_replica():
            scope = self._scope(options["scope"])
            if options["action"] == "report":
                self._report(options, scope)
            else:
                self._table(options, scope)

    def _scope(self, code: str | None) -> Grid | None:
        if not code:
            return None
        grid = Grid.objects.filter(code=code).first()
        if grid is None:
            raise CommandError(_("没有编码为 %(c)s 的网格") % {"c": code})
        return grid

    def _period(self, options: dict[str, Any]) -> tuple[date, date]:
        if not options["start"] or not options["end"]:
            raise CommandError(_("请用 --from 和 --to 指定时段"))
        start, end = _day(options["start"]), _day(options["end"])
        if end < start:
            raise CommandError(_("截止日期早于起始日期"))
        return start, end

    def _table(self, options: dict[str, Any], scope: Grid | None) -> None:
        start, end = self._period(options)
        by, fmt, output = options["by"], options["format"], options["output"]
        if by == "areas":
            table = exports.area_table(parent=scope, start=start, end=end)
        elif by == "positions":
            table = exports.position_table(scope=scope, start=start, end=end, role=options["role"])
        else:
            table = exports.breakdown_table(scope=scope, start=start, end=end, by=by)
        if fmt == "xlsx":
            if not output:
                raise CommandError(_("XLSX 须用 -o 指定输出文件"))
            totals = selectors.totals(scope=scope, start=start, end=end)
            summary = exports.Table(
                _("合计"), exports.measure_columns(list(measures.MEASURES)), [totals]
            )
            exports.write_xlsx([table, summary], Path(output))
            self.stderr.write(_("已写入 %(p)s") % {"p": output})
            return
        if fmt == "csv":
            if output:
                with Path(output).open("w", encoding="utf-8-sig", newline="") as handle:
                    exports.write_csv(table, handle)
            else:
                buffer = io.StringIO()
                exports.write_csv(table, buffer)
                self.stdout.write(buffer.getvalue(), ending="")
            return
        summary_data = selectors.summary(scope=scope, start=start, end=end)
        document = {
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "scope": {"code": scope.code, "name": scope.name} if scope else None,
            **summary_data,
            "hotline": selectors.hotline_kpis(scope=scope, start=start, end=end),
            "by": by,
            "rows": table.rows,
        }
        text = json.dumps(document, ensure_ascii=False, indent=2, default=str)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
        else:
            self.stdout.write(text)

    def _report(self, options: dict[str, Any], scope: Grid | None) -> None:
        if not options["date"] or not options["output"]:
            raise CommandError(_("报表须指定 --date 和 -o"))
        day = _day(options["date"])
        tables = exports.write_report(
            Path(options["output"]), kind=options["period"], day=day, scope=scope
        )
        self.stderr.write(
            _("已写入 %(p)s（%(n)d 张表）") % {"p": options["output"], "n": len(tables)}
        )

    def _rebuild(self, options: dict[str, Any]) -> None:
        start, end = self._period(options)
        result = rebuild_rollups(start, end, refresh_facts=options["refresh"])
        self.stdout.write(
            _(
                "已重建 %(a)s ~ %(b)s：网格汇总 %(g)d 行，分项汇总 %(d)d 行，多维汇总 %(r)d 行，"
                "人员汇总 %(p)d 行，重算案件 %(f)d 件"
            )
            % {
                "a": start.isoformat(),
                "b": end.isoformat(),
                "r": result.rollup_rows,
                "g": result.grid_rows,
                "d": result.dim_rows,
                "p": result.person_rows,
                "f": result.facts_refreshed,
            }
        )
