"""``civicgrid load-categories``: load the category catalogue, or export it.

civicgrid load-categories                      # the shipped catalogue
civicgrid load-categories 类别目录.xlsx         # an edited copy (CSV or XLSX)
civicgrid load-categories 类别目录.xlsx --check # only check it
civicgrid load-categories --export 类别目录.xlsx  # write the catalogue out for editing
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.cases import catalogue


class Command(BaseCommand):
    # Used in scripts and on fresh installs: no system checks (nor their warnings).
    requires_system_checks: list[str] = []
    help = _(
        "导入案件类别目录（大类、小类、立案/结案条件、默认责任单位、各环节时限），"
        "文件为 CSV（UTF-8）或 XLSX，先检查全部行，有错误则不写入任何数据；"
        "不给文件时导入系统自带的目录。--export 把当前目录导出为 XLSX 或 CSV 以便编辑；"
        "只给 --export 时只导出、不导入。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            nargs="?",
            metavar="FILE",
            help=_("类别目录文件 .csv 或 .xlsx（默认：系统自带的 %(path)s）")
            % {"path": catalogue.DEFAULT_PATH.name},
        )
        parser.add_argument(
            "--export",
            metavar="FILE",
            help=_("把类别目录写入此文件（.xlsx 或 .csv）"),
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help=_("只检查文件，不写入"),
        )
        parser.add_argument(
            "--no-update",
            action="store_true",
            help=_("只新增系统中没有的类别，已有的保持不变"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = Path(options["file"]) if options["file"] else None
        export = Path(options["export"]) if options["export"] else None
        if export is not None and export.suffix.lower() not in {".xlsx", ".csv"}:
            raise CommandError(_("导出文件须为 .xlsx 或 .csv：%(path)s") % {"path": export})
        if options["check"]:
            self._check(source or catalogue.DEFAULT_PATH)
        elif source is not None or export is None:
            self._load(source, update=not options["no_update"])
        if export is not None and not options["check"]:
            count = catalogue.export_catalogue(export)
            self.stdout.write(
                self.style.SUCCESS(
                    _("已导出 %(n)d 个类别到 %(path)s") % {"n": count, "path": export}
                )
            )

    def _fail(self, path: Path, exc: catalogue.CatalogueError) -> CommandError:
        return CommandError(
            _("%(path)s 有 %(n)d 处错误，未写入任何数据：\n%(errors)s")
            % {
                "path": path,
                "n": len(exc.problems),
                "errors": "\n".join(str(p) for p in exc.problems),
            }
        )

    def _check(self, path: Path) -> None:
        try:
            parsed = catalogue.check_catalogue(path=path)
        except catalogue.CatalogueError as exc:
            raise self._fail(path, exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                _("%(path)s 无误：%(n)d 个类别。") % {"path": path, "n": len(parsed.rows)}
            )
        )

    def _load(self, source: Path | None, *, update: bool) -> None:
        path = source or catalogue.DEFAULT_PATH
        try:
            result = catalogue.load_catalogue(path=source, update=update)
        except catalogue.CatalogueError as exc:
            raise self._fail(path, exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "%(path)s：%(rows)d 个类别，新增 %(created)d，更新 %(updated)d，"
                    "未变 %(unchanged)d，保留原样 %(skipped)d；"
                    "时限新增 %(lc)d、修改 %(lu)d、删除 %(ld)d。"
                )
                % {
                    "path": path,
                    "rows": result.rows,
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "skipped": result.skipped,
                    "lc": result.limits_created,
                    "lu": result.limits_updated,
                    "ld": result.limits_deleted,
                }
            )
        )
        if result.units_unset:
            self.stdout.write(
                self.style.WARNING(
                    _(
                        "%(n)d 个类别的默认责任单位未设置：系统中没有编码为 %(codes)s 的处置单位。"
                        "建好这些单位后再导入一次即可。"
                    )
                    % {"n": result.units_unset, "codes": "、".join(result.unknown_units)}
                )
            )
