"""Writes to accounts: personal API tokens, integrations and their keys, the access log."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from civicgrid.accounts.models import (
    AccessLog,
    ApiToken,
    Integration,
    IntegrationKey,
    Scope,
    User,
)
from civicgrid.grids.models import Grid

TOKEN_PREFIX = "cg_"  # noqa: S105 - a public marker, not a secret


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_token(
    *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``; the raw key is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:10], key_hash=hash_key(raw), expires_at=expires_at
    )
    return token, raw


def revoke_api_token(*, token: ApiToken) -> ApiToken:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def authenticate_token(raw: str) -> User | None:
    """The active user a raw key belongs to, or ``None``; notes when it was used."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.usable().select_related("user").filter(key_hash=hash_key(raw)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Touch at most once a minute: a busy integration must not write on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


# -- integrations -----------------------------------------------------------------------
INTEGRATION_KEY_PREFIX = "cgk_"
RATE_WINDOW_SECONDS = 60


class IntegrationError(Exception):
    """A refused change to an integration (unknown scope, district not a root...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_integration(scopes: list[str], districts: list[Grid], rate_limit: int) -> None:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise IntegrationError(
            _("未知的权限范围：%(s)s（可选：%(all)s）")
            % {"s": ", ".join(unknown), "all": ", ".join(Scope.values)}
        )
    for grid in districts:
        if grid.parent_id is not None:
            raise IntegrationError(_("%(g)s 不是辖区（网格树的根）") % {"g": grid.code})
    if rate_limit < 1:
        raise IntegrationError(_("每分钟调用上限须为正整数"))


def service_account(name: str) -> User:
    """A new user without password or memberships, for an integration to act as."""
    base = "svc-" + (slugify(name) or "integration")[:40]
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    user = User(username=username, display_name=name[:50])
    user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def create_integration(
    *,
    name: str,
    scopes: list[str],
    districts: list[Grid] | None = None,
    rate_limit_per_minute: int = 60,
    acting_user: User | None = None,
    deferred_intake: bool = False,
    description: str = "",
    contact: str = "",
) -> Integration:
    """A new integration; without ``acting_user`` a service account is made for it."""
    name = name.strip()
    if not name:
        raise IntegrationError(_("请填写对接系统名称"))
    if Integration.objects.filter(name=name).exists():
        raise IntegrationError(_("对接系统“%(n)s”已存在") % {"n": name})
    districts = list(districts or [])
    _check_integration(scopes, districts, rate_limit_per_minute)
    integration = Integration.objects.create(
        name=name,
        scopes=sorted(set(scopes)),
        rate_limit_per_minute=rate_limit_per_minute,
        acting_user=acting_user or service_account(name),
        deferred_intake=deferred_intake,
        description=description,
        contact=contact,
    )
    integration.districts.set(districts)
    return integration


@transaction.atomic
def update_integration(
    *,
    integration: Integration,
    scopes: list[str] | None = None,
    districts: list[Grid] | None = None,
    rate_limit_per_minute: int | None = None,
) -> Integration:
    """Change what is given; ``None`` leaves a setting as it is."""
    new_scopes = integration.scopes if scopes is None else sorted(set(scopes))
    new_rate = (
        integration.rate_limit_per_minute
        if rate_limit_per_minute is None
        else rate_limit_per_minute
    )
    _check_integration(new_scopes, list(districts or []), new_rate)
    integration.scopes = new_scopes
    integration.rate_limit_per_minute = new_rate
    integration.save(update_fields=["scopes", "rate_limit_per_minute"])
    if districts is not None:
        integration.districts.set(districts)
    return integration


def issue_integration_key(
    *, integration: Integration, name: str = ""
) -> tuple[IntegrationKey, str]:
    """A new key for ``integration``; the raw key is returned once and never stored."""
    if not integration.is_usable:
        raise IntegrationError(_("对接系统“%(n)s”已停用或吊销") % {"n": integration.name})
    raw = INTEGRATION_KEY_PREFIX + secrets.token_urlsafe(32)
    key = IntegrationKey.objects.create(
        integration=integration, name=name, prefix=raw[:12], key_hash=hash_key(raw)
    )
    return key, raw


def revoke_integration_key(*, key: IntegrationKey) -> IntegrationKey:
    IntegrationKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    key.refresh_from_db()
    return key


def revoke_integration(*, integration: Integration) -> Integration:
    """Stop an integration: its keys stop working at once (they stay listed)."""
    now = timezone.now()
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk, revoked_at__isnull=True).update(
            revoked_at=now, is_active=False
        )
        IntegrationKey.objects.filter(integration=integration, revoked_at__isnull=True).update(
            revoked_at=now
        )
    integration.refresh_from_db()
    return integration


def authenticate_integration_key(raw: str) -> IntegrationKey | None:
    """The usable key ``raw`` is, with its integration, or ``None``; notes its use."""
    if not raw or not raw.startswith(INTEGRATION_KEY_PREFIX) or len(raw) > 100:
        return None
    key = (
        IntegrationKey.objects.usable()
        .select_related("integration")
        .filter(key_hash=hash_key(raw))
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        IntegrationKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def find_integration_key(raw: str) -> IntegrationKey | None:
    """The key ``raw`` is, usable or not (for the access log of a refused call)."""
    if not raw or not raw.startswith(INTEGRATION_KEY_PREFIX) or len(raw) > 100:
        return None
    return (
        IntegrationKey.objects.select_related("integration").filter(key_hash=hash_key(raw)).first()
    )


def take_rate_slot(key: IntegrationKey, *, now: float | None = None) -> int | None:
    """Count one call of ``key`` in the current minute (a fixed window in the cache).

    Returns ``None`` when the call is within the integration's limit, else the
    seconds until the window ends. The counter lives in Django's default cache:
    with several application nodes that cache must be shared (Redis, Memcached,
    or the database cache), or each node counts on its own.
    """
    now = time.time() if now is None else now
    window = int(now // RATE_WINDOW_SECONDS)
    # The hash, not the id: a test database may give a new key an old id.
    counter = f"civicgrid:rate:{key.key_hash[:24]}:{window}"
    cache.add(counter, 0, timeout=RATE_WINDOW_SECONDS * 2)
    try:
        count = cache.incr(counter)
    except ValueError:  # evicted between add and incr
        cache.set(counter, 1, timeout=RATE_WINDOW_SECONDS * 2)
        count = 1
    if count > key.integration.rate_limit_per_minute:
        return max(1, int((window + 1) * RATE_WINDOW_SECONDS - now) + 1)
    return None


def record_access(
    *,
    key: IntegrationKey | None,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    remote_addr: str | None,
    at: datetime | None = None,
) -> AccessLog:
    """Write one row of the integration access log."""
    try:
        address = str(ipaddress.ip_address(remote_addr or ""))
    except ValueError:  # behind a unix socket, or no address at all
        address = None
    return AccessLog.objects.create(
        at=at or timezone.now(),
        integration_id=key.integration_id if key else None,
        key=key,
        method=method[:8],
        path=path[:255],
        status=status,
        duration_ms=max(0, round(duration_ms)),
        remote_addr=address,
    )
