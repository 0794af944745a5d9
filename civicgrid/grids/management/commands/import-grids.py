"""``civicgrid import-grids``: grids from GeoJSON or a zipped Shapefile, all or nothing."""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.grids import crs, io
from civicgrid.grids.models import Grid, Level
from civicgrid.grids.services import GridError, save_grids
from civicgrid.grids.validation import Problem


class Command(BaseCommand):
    help = _(
        "导入网格边界：GeoJSON（FeatureCollection）、Shapefile 压缩包（.zip）或 .shp 文件。"
        "整批检查（边界有效、在上级范围内、同级不重叠、编码不重复……），"
        "有任何问题就逐条列出（要素序号从 1 数起、编码、原因）并且一个也不写入。"
        "例：civicgrid import-grids streets.geojson --level 1 --parent 620103"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            metavar="FILE",
            help=_(
                "GeoJSON 文件、Shapefile 压缩包（.zip）或 .shp 文件；“-”表示从标准输入读 GeoJSON"
            ),
        )
        parser.add_argument(
            "--level",
            type=int,
            choices=Level.values,
            help=_(
                "所有要素的层级：0 区县、1 街道/乡镇、2 社区/村、3 网格（默认读要素的 level 属性）"
            ),
        )
        parent = parser.add_mutually_exclusive_group()
        parent.add_argument(
            "--parent",
            metavar="CODE",
            help=_("所有要素的上级网格编码（已在系统中或在同一文件中）"),
        )
        parent.add_argument(
            "--parent-field",
            metavar="F",
            help=_("存放上级编码的属性名（默认 %(field)s）") % {"field": io.DEFAULT_PARENT_FIELD},
        )
        parser.add_argument(
            "--code-field",
            metavar="F",
            default=io.DEFAULT_CODE_FIELD,
            help=_("存放网格编码的属性名（默认 %(default)s）"),
        )
        parser.add_argument(
            "--name-field",
            metavar="F",
            default=io.DEFAULT_NAME_FIELD,
            help=_("存放网格名称的属性名（默认 %(default)s）"),
        )
        parser.add_argument(
            "--crs",
            metavar="C",
            help=_(
                "源坐标系：wgs84、cgcs2000、gcj02（高德/腾讯）、bd09（百度）或 EPSG:代码"
                "（如 EPSG:4544，CGCS2000 高斯-克吕格 105°E）；"
                "不指定时用文件声明的坐标系（GeoJSON 的 crs、Shapefile 的 .prj），都没有则为 WGS-84"
            ),
        )
        parser.add_argument(
            "--encoding",
            metavar="ENC",
            help=_("Shapefile 属性的字符编码（默认看 .cpg，否则 UTF-8，不行再试 GBK）"),
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help=_("编码已存在的网格按文件更新（不加此项时编码重复即报错）"),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("只检查、报告，不写入"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        read_options = io.ReadOptions(
            level=options["level"],
            parent_code=options["parent"],
            parent_field=options["parent_field"],
            code_field=options["code_field"],
            name_field=options["name_field"],
            crs=options["crs"],
            encoding=options["encoding"],
        )
        try:
            result = io.read_path(options["file"], read_options)
        except FileNotFoundError as exc:
            raise CommandError(_("文件不存在：%(file)s") % {"file": exc.filename}) from exc
        except (io.ImportFormatError, crs.CRSInputError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for note in result.notes:
            self.stderr.write(self.style.WARNING(_("注意：%(note)s") % {"note": note}))

        replace = options["update"]
        if result.problems or options["dry_run"]:
            # Reading problems and validation problems together, so that a file
            # can be fixed in one go. A clean read is validated once, by
            # save_grids, inside the transaction that writes it.
            problems = result.check(replace_existing=replace)
            if problems:
                self._fail(problems)
        if not result.items:
            raise CommandError(_("文件中没有要素"))

        codes = [item.code for item in result.items]
        stored = set(Grid.objects.filter(code__in=codes).values_list("code", flat=True))
        counts = {
            "n": len(result.items),
            "new": len(result.items) - len(stored),
            "updated": len(stored),
            "crs": result.source.label,
        }
        if options["dry_run"]:
            self.stdout.write(
                _(
                    "检查通过：%(n)d 个网格可导入（新增 %(new)d，更新 %(updated)d），"
                    "源坐标系 %(crs)s；--dry-run，未写入"
                )
                % counts
            )
            return
        try:
            save_grids(items=result.items, replace_existing=replace)
        except GridError as exc:
            self._fail(exc.problems)
        self.stdout.write(
            self.style.SUCCESS(
                _("已导入 %(n)d 个网格（新增 %(new)d，更新 %(updated)d），源坐标系 %(crs)s")
                % counts
            )
        )

    def _fail(self, problems: list[Problem]) -> NoReturn:
        for problem in problems:
            self.stderr.write(f"- {problem}")
        raise CommandError(_("%(n)d 处问题，未写入任何网格") % {"n": len(problems)}, returncode=1)
