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


# -- integrations: other systems calling civicgrid with a key ---------------------------
class Scope(models.TextChoices):
    """What an integration's keys may call."""

    OPEN311_READ = "open311:read", _("Open311 读取")
    OPEN311_WRITE = "open311:write", _("Open311 提交诉求与进展")
    CASES_READ = "api:cases:read", _("接口：读取案件")
    CASES_WRITE = "api:cases:write", _("接口：登记与办理案件")
    GRIDS_READ = "api:grids:read", _("接口：读取网格与定位")


class IntegrationQuerySet(models.QuerySet["Integration"]):
    def usable(self) -> IntegrationQuerySet:
        return self.filter(is_active=True, revoked_at__isnull=True)


class Integration(models.Model):
    """Another system (an app, FixMyStreet, the city's 12345 platform) that calls
    civicgrid with its own keys: what it may call, where, how often, and as whom."""

    name = models.CharField(_("名称"), max_length=100, unique=True)
    description = models.TextField(_("说明"), blank=True)
    contact = models.CharField(
        _("对接联系人"), max_length=200, blank=True, help_text=_("对方系统的负责人和联系方式")
    )
    is_active = models.BooleanField(_("启用"), default=True)
    #: A list of ``Scope`` values.
    scopes = models.JSONField(_("权限范围"), default=list, blank=True)
    districts = models.ManyToManyField(
        "grids.Grid",
        verbose_name=_("辖区"),
        blank=True,
        related_name="integrations",
        limit_choices_to={"parent__isnull": True},
        help_text=_("可提交和读取的辖区（网格树的根）；不选表示本部署的全部辖区"),
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        _("每分钟调用上限"), default=60, help_text=_("每个密钥每分钟的调用次数上限")
    )
    acting_user = models.ForeignKey(
        User,
        verbose_name=_("服务账号"),
        on_delete=models.PROTECT,
        related_name="integrations",
        help_text=_("以该账号的名义登记案件；其岗位决定能通过接口看到和办理哪些案件"),
    )
    deferred_intake = models.BooleanField(
        _("异步受理"),
        default=False,
        help_text=_("提交时先返回受理凭证（token），由后台任务建案"),
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        verbose_name = _("对接系统")
        verbose_name_plural = _("对接系统")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.is_active and self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class IntegrationKeyQuerySet(models.QuerySet["IntegrationKey"]):
    def usable(self) -> IntegrationKeyQuerySet:
        return self.filter(
            revoked_at__isnull=True,
            integration__is_active=True,
            integration__revoked_at__isnull=True,
            integration__acting_user__is_active=True,
        )


class IntegrationKey(models.Model):
    """A key of an integration (Open311 ``api_key``); only a hash of it is stored."""

    integration = models.ForeignKey(
        Integration, verbose_name=_("对接系统"), on_delete=models.CASCADE, related_name="keys"
    )
    name = models.CharField(_("名称"), max_length=100, blank=True)
    prefix = models.CharField(_("前缀"), max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    objects = IntegrationKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("接口密钥")
        verbose_name_plural = _("接口密钥")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.integration} {self.prefix}…"


class AccessLog(models.Model):
    """One row per call that carried an integration key (valid or not)."""

    at = models.DateTimeField(_("时间"), db_index=True)
    integration = models.ForeignKey(
        Integration,
        verbose_name=_("对接系统"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="access_log",
    )
    key = models.ForeignKey(
        IntegrationKey,
        verbose_name=_("密钥"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    method = models.CharField(_("方法"), max_length=8)
    #: The path only: a query string may carry the key itself.
    path = models.CharField(_("路径"), max_length=255)
    status = models.PositiveSmallIntegerField(_("状态码"))
    duration_ms = models.PositiveIntegerField(_("耗时（毫秒）"))
    remote_addr = models.GenericIPAddressField(_("来源地址"), null=True, blank=True)

    class Meta:
        verbose_name = _("接口访问日志")
        verbose_name_plural = _("接口访问日志")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["integration", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.path} {self.status}"
