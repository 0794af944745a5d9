"""``civicgrid create-api-token USERNAME NAME``: a bearer token for the API, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicgrid.accounts.models import User
from civicgrid.accounts.services import create_api_token


class Command(BaseCommand):
    help = "为用户创建接口令牌（Bearer），令牌只显示这一次。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="令牌代表的用户")
        parser.add_argument("name", help="令牌名称，如对接系统的名字")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"没有用户 {options['username']}")
        token, raw = create_api_token(user=user, name=options["name"])
        self.stdout.write(raw)
        self.stderr.write(f"令牌 {token} 已创建；请立即保存，它不会再次显示。")
