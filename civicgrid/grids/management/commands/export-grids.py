"""``civicgrid export-grids``: the grid tree, or a subtree, as GeoJSON."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.grids import io
from civicgrid.grids.models import Grid, Level


class Command(BaseCommand):
    # Read-only and used in scripts: no system checks (nor their warnings on stderr).
    requires_system_checks: list[str] = []
    help = _(
        "把网格树（或其中一棵子树）导出为 GeoJSON（WGS-84/CGCS2000 经纬度），"
        "属性 code、name、level、kind、parent_code 可由 import-grids 原样导回。"
        "例：civicgrid export-grids --root 620103009 -o xiuchuan.geojson"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--root",
            metavar="CODE",
            help=_("只导出这个网格及其全部下级（默认导出整棵树）"),
        )
        parser.add_argument(
            "--level",
            type=int,
            choices=Level.values,
            help=_("只导出这一层级：0 区县、1 街道/乡镇、2 社区/村、3 网格"),
        )
        parser.add_argument(
            "--active-only",
            action="store_true",
            help=_("不导出已停用的网格"),
        )
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            help=_("写入此文件（默认写到标准输出）"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        root = None
        if options["root"]:
            root = Grid.objects.filter(code=options["root"]).first()
            if root is None:
                raise CommandError(_("网格 %(code)s 不存在") % {"code": options["root"]})
        qs = io.grids_for_export(
            root=root, level=options["level"], active_only=options["active_only"]
        )
        grids = io.iter_export(qs)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as handle:
                count = io.write_geojson(grids, handle)
            self.stderr.write(
                _("已导出 %(n)d 个网格到 %(file)s") % {"n": count, "file": options["output"]}
            )
        else:
            io.write_geojson(grids, _Writer(self))


class _Writer:
    """``self.stdout`` as a plain text stream (no line endings added)."""

    def __init__(self, command: BaseCommand) -> None:
        self.command = command

    def write(self, text: str) -> int:
        self.command.stdout.write(text, ending="")
        return len(text)
