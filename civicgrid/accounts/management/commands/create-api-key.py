"""``civicgrid create-api-key NAME``: a key for an integration, printed once.

The integration is made when it does not exist yet (with a service account to act
as, unless ``--user`` names one); for an existing one a further key is issued and
the options given change its settings.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicgrid.accounts import services
from civicgrid.accounts.models import Integration, Scope, User
from civicgrid.grids.models import Grid

DEFAULT_SCOPES = [Scope.OPEN311_READ.value, Scope.OPEN311_WRITE.value]


class Command(BaseCommand):
    help = "为对接系统签发接口密钥（Open311 api_key），密钥只显示这一次。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="对接系统名称；不存在时新建")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=Scope.values,
            help=f"权限范围，可重复；新建时默认 {' '.join(DEFAULT_SCOPES)}",
        )
        parser.add_argument(
            "--district",
            action="append",
            dest="districts",
            metavar="CODE",
            help="可提交和读取的辖区（根网格编码），可重复；不给表示全部辖区",
        )
        parser.add_argument("--rate", type=int, help="每个密钥每分钟调用上限（新建时默认 60）")
        parser.add_argument("--user", help="以该用户名义登记案件（新建时默认新建服务账号）")
        parser.add_argument("--deferred", action="store_true", help="异步受理：提交时先返回 token")
        parser.add_argument("--key-name", default="", help="密钥的备注名")

    def _districts(self, codes: list[str] | None) -> list[Grid] | None:
        if codes is None:
            return None
        grids = {g.code: g for g in Grid.objects.filter(code__in=codes)}
        missing = [c for c in codes if c not in grids]
        if missing:
            raise CommandError(f"没有网格 {', '.join(missing)}")
        return [grids[c] for c in codes]

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        districts = self._districts(options["districts"])
        integration = Integration.objects.filter(name=name).first()
        try:
            if integration is None:
                user = None
                if options["user"]:
                    user = User.objects.filter(username=options["user"]).first()
                    if user is None:
                        raise CommandError(f"没有用户 {options['user']}")
                integration = services.create_integration(
                    name=name,
                    scopes=options["scopes"] or DEFAULT_SCOPES,
                    districts=districts,
                    rate_limit_per_minute=options["rate"] or 60,
                    acting_user=user,
                    deferred_intake=options["deferred"],
                )
                self.stderr.write(
                    f"已新建对接系统 {integration}，服务账号 {integration.acting_user.username}"
                )
            elif options["scopes"] or districts is not None or options["rate"]:
                services.update_integration(
                    integration=integration,
                    scopes=options["scopes"],
                    districts=districts,
                    rate_limit_per_minute=options["rate"],
                )
            key, raw = services.issue_integration_key(
                integration=integration, name=options["key_name"]
            )
        except services.IntegrationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
        scopes = ", ".join(integration.scopes) or "-"
        places = ", ".join(g.code for g in integration.districts.all()) or "全部辖区"
        self.stderr.write(
            f"密钥 {key.prefix}… 已签发（权限 {scopes}；辖区 {places}；"
            f"每分钟 {integration.rate_limit_per_minute} 次）。请立即保存，它不会再次显示。"
        )
