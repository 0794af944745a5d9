"""``civicgrid locate``: which grid a point is in, as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from civicgrid.grids import crs, locator


class Command(BaseCommand):
    # Read-only and used in scripts: no system checks (nor their warnings on stderr).
    requires_system_checks: list[str] = []
    help = _(
        "查询一个点落在哪个网格，输出 JSON：inside、存储坐标 lon/lat、最深的网格 grid 及其上级路径 path。"
        '在辖区内退出码为 0，在辖区外为 1（"inside": false）。'
        "例：civicgrid locate 103.79 36.06 --crs gcj02"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lon", type=float, metavar="LON", help=_("经度"))
        parser.add_argument("lat", type=float, metavar="LAT", help=_("纬度"))
        parser.add_argument(
            "--crs",
            metavar="C",
            default=crs.WGS84,
            help=_("坐标系：wgs84（默认）、cgcs2000、gcj02（高德/腾讯）、bd09（百度）或 EPSG:代码"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            location = locator.locate(options["lon"], options["lat"], options["crs"])
        except crs.CRSInputError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(json.dumps(location.as_dict(), ensure_ascii=False, indent=2))
        if not location.inside:
            raise CommandError(_("该点不在辖区内"), returncode=1)
