"""What every Open311 endpoint does around its view: the format, the method, the
``api_key`` (scope, district, rate limit), the jurisdiction, the error body and the
access log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from civicgrid.accounts import services as accounts
from civicgrid.accounts.models import Integration, IntegrationKey, Scope
from civicgrid.cases.errors import CaseError
from civicgrid.grids.models import Grid
from civicgrid.open311 import jurisdictions
from civicgrid.open311.render import CONTENT_TYPES, XML, Open311Error, render, render_error


@dataclass
class Call:
    """One call to the endpoint, as its view sees it."""

    request: HttpRequest
    fmt: str
    key: IntegrationKey | None = None
    jurisdiction: Grid | None = None
    #: The roots a read may cover: ``None`` for every district of the deployment.
    roots: list[Grid] | None = None

    def param(self, name: str) -> str | None:
        """A parameter of the body (POST) or the query; empty counts as absent."""
        value = None
        if self.request.method == "POST":
            value = self.request.POST.get(name)
        if value is None:
            value = self.request.GET.get(name)
        value = (value or "").strip()
        return value or None

    def param_list(self, name: str) -> list[str]:
        """Every value of a repeated parameter, without the empty ones."""
        source = self.request.POST if self.request.method == "POST" else self.request.GET
        return [v.strip() for v in source.getlist(name) if v.strip()]

    @property
    def integration(self) -> Integration | None:
        return self.key.integration if self.key else None

    def require_jurisdiction(self) -> Grid:
        if self.jurisdiction is None:
            raise Open311Error(400, _("本平台服务多个辖区，请提供 jurisdiction_id"))
        return self.jurisdiction


@dataclass
class Reply:
    """A view's answer: the root element and the document."""

    root: str
    data: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


View = Callable[..., Reply]


def _authenticate(call: Call, raw: str | None, *, write: bool) -> None:
    if raw is None:
        if write:
            raise Open311Error(403, _("缺少 api_key"))
        return
    key = accounts.authenticate_integration_key(raw)
    if key is None:
        call.key = accounts.find_integration_key(raw)  # for the log: who tried
        raise Open311Error(403, _("api_key 无效或已吊销"))
    call.key = key
    scope = Scope.OPEN311_WRITE if write else Scope.OPEN311_READ
    if not key.integration.has_scope(scope):
        raise Open311Error(403, _("该 api_key 没有 %(s)s 权限") % {"s": scope})
    retry_after = accounts.take_rate_slot(key)
    if retry_after is not None:
        raise Open311Error(
            429,
            _("调用过于频繁：每分钟最多 %(n)s 次，请 %(s)s 秒后再试")
            % {"n": key.integration.rate_limit_per_minute, "s": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def _place(call: Call) -> None:
    """Resolve the jurisdiction and hold it against the integration's districts.

    Without ``jurisdiction_id`` a key limited to districts means its own (its one
    district, or all of them for reads); else the deployment's default applies.
    """
    explicit = call.param("jurisdiction_id")
    allowed = list(call.integration.districts.all()) if call.integration else []
    if allowed and not explicit:
        call.jurisdiction = allowed[0] if len(allowed) == 1 else None
        call.roots = allowed
        return
    call.jurisdiction = jurisdictions.resolve(explicit)
    grid = call.jurisdiction
    if allowed and grid is not None and grid.pk not in {g.pk for g in allowed}:
        raise Open311Error(403, _("该 api_key 无权访问此辖区"))
    call.roots = [call.jurisdiction] if call.jurisdiction is not None else None


def _log(call: Call, raw_key: str | None, status: int, started: float) -> None:
    if raw_key is None:
        return
    accounts.record_access(
        key=call.key,
        method=call.request.method or "",
        path=call.request.path,
        status=status,
        duration_ms=(time.perf_counter() - started) * 1000,
        remote_addr=call.request.META.get("REMOTE_ADDR"),
    )


def endpoint(*, methods: tuple[str, ...] = ("GET",)) -> Callable[[View], Callable[..., Any]]:
    """Wrap an Open311 view ``view(call, **kwargs) -> Reply``.

    A POST is a write: it needs an ``api_key`` with ``open311:write``. A GET needs
    no key, but a key given must be valid and hold ``open311:read``. Calls that
    carry a key count against its rate limit and are written to the access log.
    """

    def wrap(view: View) -> Callable[..., Any]:
        @csrf_exempt
        @wraps(view)
        def run(request: HttpRequest, fmt: str, **kwargs: Any) -> HttpResponse:
            started = time.perf_counter()
            call = Call(request=request, fmt=fmt if fmt in CONTENT_TYPES else XML)
            raw_key = call.param("api_key")
            try:
                if fmt not in CONTENT_TYPES:
                    raise Open311Error(
                        400, _("不支持的格式 .%(f)s，请使用 .xml 或 .json") % {"f": fmt}
                    )
                if request.method not in methods:
                    raise Open311Error(
                        405,
                        _("不支持 %(m)s 方法") % {"m": request.method},
                        headers={"Allow": ", ".join(methods)},
                    )
                _authenticate(call, raw_key, write=request.method == "POST")
                _place(call)
                reply = view(call, **kwargs)
                response = render(reply.root, reply.data, call.fmt, status=reply.status)
                for name, value in reply.headers.items():
                    response[name] = value
            except Open311Error as error:
                response = render_error(error, call.fmt)
            except CaseError as error:
                response = render_error(Open311Error(400, error.message), call.fmt)
            except Http404:
                response = render_error(Open311Error(404, _("未找到")), call.fmt)
            except Exception:
                _log(call, raw_key, 500, started)
                raise
            _log(call, raw_key, response.status_code, started)
            return response

        return run

    return wrap


def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under the endpoint: 404 with the error body."""
    fmt = "json" if path.endswith(".json") else XML
    return render_error(Open311Error(404, _("没有这个资源：%(p)s") % {"p": request.path}), fmt)
