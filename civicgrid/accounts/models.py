"""Users and what they may do: a membership is a role over a scope.

The scope is a grid subtree (the grid and everything below it) or a handling
unit. A user may hold several memberships, e.g. a grid worker covering two
grids, or a community secretary who also patrols a grid.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("系统管理员")
    CALL_TAKER = "call_taker", _("受理员")
    DISPATCHER = "dispatcher", _("派遣员")
    SUPERVISOR = "supervisor", _("值班长")
    UNIT_HANDLER = "unit_handler", _("处置单位人员")
    GRID_WORKER = "grid_worker", _("网格员")
    COMMUNITY_STAFF = "community_staff", _("街道/社区工作人员")
    LEADER = "leader", _("领导")


#: Roles whose scope is a handling unit; every other role is scoped by a grid subtree.
UNIT_ROLES = frozenset({Role.UNIT_HANDLER})


class User(AbstractUser):
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(is_active=True)

    def with_role(self, *roles: str) -> MembershipQuerySet:
        return self.filter(role__in=roles)


class Membership(models.Model):
    user = models.ForeignKey(
        User, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices)
    grid = models.ForeignKey(
        "grids.Grid",
        verbose_name=_("网格范围"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="memberships",
    )
    unit = models.ForeignKey(
        "grids.HandlingUnit",
        verbose_name=_("所属单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="memberships",
    )
    title = models.CharField(
        _("职务"), max_length=50, blank=True, help_text=_("如：社区书记、网格长")
    )
    is_active = models.BooleanField(_("有效"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("岗位")
        verbose_name_plural = _("岗位")
        constraints = [
            models.CheckConstraint(
                name="membership_scope_is_grid_or_unit",
                condition=(
                    Q(role="unit_handler", unit__isnull=False, grid__isnull=True)
                    | (~Q(role="unit_handler") & Q(grid__isnull=False, unit__isnull=True))
                ),
                violation_error_message=_("处置单位人员的范围是一个单位，其他角色的范围是一个网格"),
            ),
            models.UniqueConstraint(
                fields=["user", "role", "grid"], name="membership_unique_grid_scope"
            ),
            models.UniqueConstraint(
                fields=["user", "role", "unit"], name="membership_unique_unit_scope"
            ),
        ]
        indexes = [models.Index(fields=["role", "grid"])]

    def __str__(self) -> str:
        scope = self.unit if self.unit_id else self.grid
        return f"{self.user} · {self.get_role_display()} · {scope}"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self) -> ApiTokenQuerySet:
        from django.utils import timezone

        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    """A bearer token acting as its user; only a hash of the key is stored."""

    user = models.ForeignKey(
        User, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("名称"), max_length=100)
    prefix = models.CharField(_("前缀"), max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("过期时间"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("接口令牌")
        verbose_name_plural = _("接口令牌")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
