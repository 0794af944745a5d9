"""``civicgrid export-updates``: what happened to the 12345 platform's cases since a time.

civicgrid export-updates --since "2026-11-25 08:00"                 # CSV on standard output
civicgrid export-updates --since 2026-11-25 --format xlsx -o 回传.xlsx
"""

from __future__ import annotations

import sys
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _

from civicgrid.exchange import updates


def parse_moment(value: str) -> datetime:
    """A local date or date and time (``2026-11-25``, ``2026-11-25 08:00[:00]``, ISO 8601)."""
    raw = value.strip()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        try:
            moment = datetime.combine(datetime.strptime(raw, "%Y/%m/%d").date(), time.min)
        except ValueError as exc:
            raise CommandError(
                _("无法识别的时间“%(v)s”（例如 2026-11-25 或 2026-11-25 08:00）") % {"v": value}
            ) from exc
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


class Command(BaseCommand):
    help = _(
        "导出某时间以来 12345 工单的办理情况（受理、派单、退回、办理反馈、办结、重办、回访评价），"
        "含工单编号、时间、状态和答复内容，供回传 12345 平台；CSV 或 XLSX。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", required=True, metavar="TIME", help=_("起始时间（含），本地时间")
        )
        parser.add_argument("--until", metavar="TIME", help=_("截止时间（不含），默认为现在"))
        parser.add_argument(
            "--format", choices=["csv", "xlsx"], help=_("默认按 -o 的扩展名，否则 csv")
        )
        parser.add_argument(
            "-o", "--output", metavar="FILE", help=_("输出文件（CSV 默认输出到屏幕）")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_moment(options["since"])
        until = parse_moment(options["until"]) if options["until"] else None
        output = Path(options["output"]) if options["output"] else None
        fmt = options["format"] or (
            "xlsx" if output is not None and output.suffix.lower() == ".xlsx" else "csv"
        )
        events = updates.events_since(since, until)
        if fmt == "xlsx":
            if output is None:
                raise CommandError(_("XLSX 须用 -o 指定输出文件"))
            count = updates.write_xlsx(events, output)
        elif output is None:
            count = updates.write_csv(events, self.stdout)
        else:
            with output.open("w", encoding="utf-8-sig", newline="") as handle:
                count = updates.write_csv(events, handle)
        if output is not None:
            self.stdout.write(
                self.style.SUCCESS(_("已导出 %(n)d 条办理情况到 %(p)s") % {"n": count, "p": output})
            )
        else:
            sys.stderr.write(_("共 %(n)d 条。") % {"n": count} + "\n")
