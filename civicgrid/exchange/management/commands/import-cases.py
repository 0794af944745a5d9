"""``civicgrid import-cases``: cases from a 12345 platform's export (``docs/exchange.md``).

civicgrid import-cases 工单.xlsx                          # the shipped 12345 mapping, historical
civicgrid import-cases 工单.csv --mapping 本市12345.toml --mode live
civicgrid import-cases 工单.csv --dry-run                 # check only, write no case
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.accounts.models import User
from civicgrid.exchange import importer
from civicgrid.exchange.mapping import MappingError, load_mapping
from civicgrid.exchange.reader import ReadError
from civicgrid.exchange.rows import HISTORICAL, LIVE, HeaderError


class ProgressLine:
    """A carriage-return progress line on stderr, only on a terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        rate = done / max(time.monotonic() - self.started, 1e-6)
        if total:
            share = min(done / total, 1.0)
            bar = "█" * int(share * 30) + "·" * (30 - int(share * 30))
            line = _("%(bar)s %(pct)3d%% %(done)d/%(total)d 行 %(rate)d 行/秒") % {
                "bar": bar,
                "pct": share * 100,
                "done": done,
                "total": total,
                "rate": rate,
            }
        else:
            line = _("已读 %(done)d 行 %(rate)d 行/秒") % {"done": done, "rate": rate}
        self.stream.write("\r" + line)
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class Command(BaseCommand):
    help = _(
        "导入 12345 平台导出的工单（CSV：UTF-8、带 BOM 的 UTF-8 或 GB18030/GBK；或 XLSX），"
        "按映射文件把列和取值对应到本系统。historical 模式保留原始时间和最终状态，"
        "补齐相应的办理事件、环节时限和统计；live 模式逐条经受理服务进入待受理。"
        "同一工单编号不会重复导入；有问题的行被拒绝并写入输入文件旁的错误报告。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help=_("导出文件 .csv 或 .xlsx"))
        parser.add_argument(
            "--mapping",
            metavar="MAPPING",
            help=_("映射文件 .toml，或系统自带映射的名称（默认：12345）"),
        )
        parser.add_argument(
            "--mode",
            choices=[HISTORICAL, LIVE],
            default=HISTORICAL,
            help=_("historical：按导出的时间和状态导入历史工单（默认）；live：作为新工单受理"),
        )
        parser.add_argument("--dry-run", action="store_true", help=_("只检查，不写入任何案件"))
        parser.add_argument(
            "--batch", type=int, default=importer.BATCH, help=_("每批（每个事务）的行数")
        )
        parser.add_argument("--actor", metavar="USERNAME", help=_("记为登记人的用户名（可选）"))
        parser.add_argument(
            "--errors", metavar="FILE", help=_("错误报告的路径（默认在输入文件旁）")
        )
        parser.add_argument("--no-progress", action="store_true", help=_("不显示进度"))

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            mapping = load_mapping(options["mapping"])
        except MappingError as exc:
            raise CommandError(
                _("映射文件 %(path)s 有 %(n)d 处错误，未导入任何数据：\n%(errors)s")
                % {"path": exc.path, "n": len(exc.problems), "errors": "\n".join(exc.problems)}
            ) from exc
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(_("没有用户 %(u)s") % {"u": options["actor"]})
        if options["batch"] < 1:
            raise CommandError(_("--batch 须为正整数"))
        progress = None
        if not options["no_progress"] and sys.stderr.isatty():
            progress = ProgressLine(sys.stderr)
        try:
            result = importer.import_cases(
                path=path,
                mapping=mapping,
                mode=options["mode"],
                dry_run=options["dry_run"],
                batch=options["batch"],
                actor=actor,
                report_path=Path(options["errors"]) if options["errors"] else None,
                progress=progress,
            )
        except (ReadError, HeaderError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if progress:
                progress.close()
        self._summary(result)

    def _summary(self, result: importer.ImportResult) -> None:
        verb = _("可导入") if result.dry_run else _("导入")
        self.stdout.write(
            _(
                "%(path)s（%(mode)s，%(enc)s）：读取 %(read)d 行，%(verb)s %(imported)d，"
                "已存在跳过 %(skipped)d，拒绝 %(refused)d；用时 %(s).1f 秒。"
            )
            % {
                "path": result.path,
                "mode": result.mode,
                "enc": result.encoding,
                "read": result.read,
                "verb": verb,
                "imported": result.imported,
                "skipped": result.skipped,
                "refused": result.refused,
                "s": result.seconds,
            }
        )
        if result.mode == HISTORICAL and not result.dry_run and result.imported:
            self.stdout.write(
                _("写入事件 %(e)d 条、环节时限 %(d)d 条。")
                % {"e": result.events, "d": result.deadlines}
            )
        if result.needs_location:
            self.stdout.write(
                self.style.WARNING(
                    _("%(n)d 件没有坐标，待人工定位。") % {"n": result.needs_location}
                )
            )
        if result.dry_run:
            self.stdout.write(self.style.WARNING(_("试运行：未写入任何案件。")))
        if result.report:
            self.stdout.write(
                self.style.WARNING(_("被拒绝的行及原因见 %(p)s") % {"p": result.report})
            )
        elif not result.dry_run:
            self.stdout.write(self.style.SUCCESS(_("全部有效行已处理，没有被拒绝的行。")))
