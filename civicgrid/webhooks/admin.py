from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from civicgrid.webhooks import outbox, services
from civicgrid.webhooks.delivery import new_secret
from civicgrid.webhooks.models import Attempt, Delivery, EventType, Subscription


class SubscriptionForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=_("事件类型"),
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("不选表示全部事件"),
    )

    target_url = forms.URLField(label=_("推送地址"), max_length=500, assume_scheme="https")

    class Meta:
        model = Subscription
        fields = ["integration", "name", "target_url", "event_types", "grid", "is_active"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions of integrations to case events; the secret is made on save and
    shown on the subscription's page (receivers need it to check signatures)."""

    form = SubscriptionForm
    list_display = ["__str__", "integration", "target_url", "is_active", "created_at"]
    list_filter = ["is_active", "integration"]
    search_fields = ["name", "target_url", "integration__name"]
    autocomplete_fields = ["grid"]
    list_select_related = ["integration"]
    readonly_fields = ["secret", "created_at"]
    actions = ["rotate_secrets"]

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        if not obj.secret:
            obj.secret = new_secret()
        super().save_model(request, obj, form, change)
        outbox.invalidate()

    @admin.action(description=_("更换签名密钥"))
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            services.rotate_secret(subscription=subscription)
        self.message_user(request, _("已更换 %(n)d 个订阅的签名密钥") % {"n": queryset.count()})


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("at", "status_code", "ok", "duration_ms", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The outbox and its delivery log: each attempt with its answer."""

    list_display = [
        "id",
        "event_type",
        "case",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ]
    list_filter = ["status", "event_type", "subscription"]
    search_fields = ["event_id", "case__number"]
    list_select_related = ["case", "subscription__integration"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline]
    actions = ["retry", "replay", "cancel"]
    exclude = ["claimed_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Delivery._meta.fields if f.name != "claimed_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("立即重试（失败或等待中的）"))
    def retry(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        n = services.retry(deliveries=queryset)
        self.message_user(request, _("已安排重试 %(n)d 条推送") % {"n": n})

    @admin.action(description=_("重新推送（已送达或已取消的，事件编号不变）"))
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        n = len(services.replay(deliveries=queryset))
        self.message_user(request, _("已重新排队 %(n)d 条推送") % {"n": n})

    @admin.action(description=_("取消（不再推送，放行该案件后续事件）"))
    def cancel(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        n = services.cancel(deliveries=queryset)
        self.message_user(request, _("已取消 %(n)d 条推送") % {"n": n}, messages.WARNING)
