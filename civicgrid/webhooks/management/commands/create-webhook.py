"""``civicgrid create-webhook INTEGRATION URL``: subscribe an integration to case events.

Prints the new subscription's signing secret on stdout (a note on stderr); the
secret stays visible to administrators on the subscription's admin page.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicgrid.accounts.models import Integration
from civicgrid.grids.models import Grid
from civicgrid.webhooks import services
from civicgrid.webhooks.models import EventType


class Command(BaseCommand):
    help = "为对接系统订阅案件事件推送（webhook），输出签名密钥。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", help="对接系统名称")
        parser.add_argument("url", help="推送地址（http 或 https）")
        parser.add_argument(
            "--event",
            action="append",
            dest="events",
            choices=EventType.values,
            help="事件类型，可重复；不给表示全部事件",
        )
        parser.add_argument("--grid", metavar="CODE", help="只推送该网格及其下级网格的案件")
        parser.add_argument("--name", default="", help="订阅的备注名")

    def handle(self, *args: Any, **options: Any) -> None:
        integration = Integration.objects.filter(name=options["integration"].strip()).first()
        if integration is None:
            raise CommandError(f"没有对接系统 {options['integration']}")
        grid = None
        if options["grid"]:
            grid = Grid.objects.filter(code=options["grid"]).first()
            if grid is None:
                raise CommandError(f"没有网格 {options['grid']}")
        try:
            subscription = services.create_subscription(
                integration=integration,
                target_url=options["url"],
                event_types=options["events"] or [],
                grid=grid,
                name=options["name"],
            )
        except services.WebhookError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(subscription.secret)
        events = ", ".join(subscription.event_types) or "全部事件"
        self.stderr.write(
            f"已订阅 {integration} → {subscription.target_url}（{events}）。"
            "以上为签名密钥，接收方用它校验签名（docs/webhooks.md）。"
        )
