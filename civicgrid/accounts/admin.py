from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from civicgrid.accounts import services
from civicgrid.accounts.models import (
    AccessLog,
    ApiToken,
    Integration,
    IntegrationKey,
    Membership,
    Scope,
    User,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["grid", "unit"]
    fields = ["role", "grid", "unit", "title", "is_active"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "display_name", "phone", "is_active", "is_staff"]
    search_fields = ["username", "display_name", "phone"]
    inlines = [MembershipInline]
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        (_("联系方式"), {"fields": ["display_name", "phone"]}),
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "grid", "unit", "title", "is_active"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "user__display_name", "grid__name", "unit__name"]
    autocomplete_fields = ["user", "grid", "unit"]
    list_select_related = ["user", "grid", "unit"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `civicgrid create-api-token` (the key shows once);
    here they are listed, expired and revoked."""

    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def has_add_permission(self, request: object) -> bool:
        return False


# -- integrations ---------------------------------------------------------------------
class IntegrationForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("权限范围"),
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Integration
        fields = [
            "name",
            "description",
            "contact",
            "is_active",
            "scopes",
            "districts",
            "rate_limit_per_minute",
            "acting_user",
            "deferred_intake",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["acting_user"].required = False
        self.fields["acting_user"].help_text = _(
            "留空则新建一个无密码、无岗位的服务账号；给它岗位（如受理员）后才能通过接口读写案件"
        )


class IntegrationKeyInline(admin.TabularInline):
    model = IntegrationKey
    extra = 0
    can_delete = False
    fields = ["prefix", "name", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "name", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    """Integrations are added here or with `civicgrid create-api-key`; a new key is
    issued with the action below and shown once."""

    form = IntegrationForm
    list_display = [
        "name",
        "is_active",
        "scope_list",
        "rate_limit_per_minute",
        "acting_user",
        "created_at",
        "revoked_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "contact"]
    autocomplete_fields = ["districts", "acting_user"]
    readonly_fields = ["created_at", "revoked_at"]
    inlines = [IntegrationKeyInline]
    actions = ["issue_key", "revoke"]

    @admin.display(description=_("权限范围"))
    def scope_list(self, obj: Integration) -> str:
        return ", ".join(obj.scopes or [])

    def save_model(self, request: HttpRequest, obj: Integration, form: Any, change: bool) -> None:
        if obj.acting_user_id is None:
            obj.acting_user = services.service_account(obj.name)
        super().save_model(request, obj, form, change)

    @admin.action(description=_("签发新密钥（只显示一次）"))
    def issue_key(
        self, request: HttpRequest, queryset: QuerySet[Integration]
    ) -> HttpResponse | None:
        issued = []
        for integration in queryset:
            try:
                key, raw = services.issue_integration_key(integration=integration)
            except services.IntegrationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            issued.append((key, raw))
        if not issued:
            return None
        # Shown on this page alone: a message would keep the key in a cookie or session.
        return TemplateResponse(
            request,
            "admin/accounts/integration/new_keys.html",
            {**self.admin_site.each_context(request), "issued": issued, "opts": self.model._meta},
        )

    @admin.action(description=_("吊销对接系统（其全部密钥立即失效）"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for integration in queryset:
            services.revoke_integration(integration=integration)
        self.message_user(request, _("已吊销 %(n)s 个对接系统") % {"n": queryset.count()})


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(admin.ModelAdmin):
    list_display = ["integration", "prefix", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "integration"]
    search_fields = ["prefix", "name", "integration__name"]
    fields = ["integration", "prefix", "name", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["integration", "prefix", "created_at", "last_used_at"]
    list_select_related = ["integration"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("吊销所选密钥"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[IntegrationKey]) -> None:
        for key in queryset:
            services.revoke_integration_key(key=key)
        self.message_user(request, _("已吊销 %(n)s 个密钥") % {"n": queryset.count()})


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    list_display = ["at", "integration", "method", "path", "status", "duration_ms", "remote_addr"]
    list_filter = ["status", "method", "integration"]
    search_fields = ["path", "remote_addr", "integration__name"]
    date_hierarchy = "at"
    list_select_related = ["integration"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
