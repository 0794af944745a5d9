"""Reading the POSTs: a service request (with its ``attribute[...]``) and a citizen's update."""

from __future__ import annotations

import math
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils.translation import gettext as _

from civicgrid.cases.models import Case, Category
from civicgrid.open311 import selectors
from civicgrid.open311.gateway import Call
from civicgrid.open311.models import Datatype, ServiceAttribute
from civicgrid.open311.params import parse_when
from civicgrid.open311.render import Open311Error
from civicgrid.open311.services import RequestData, UpdateData

MAX_DESCRIPTION = 4000
MAX_EXTERNAL_ID = 50
MYSOCIETY_STATUSES = frozenset(
    {
        "OPEN",
        "CLOSED",
        "FIXED",
        "IN_PROGRESS",
        "ACTION_SCHEDULED",
        "INVESTIGATING",
        "DUPLICATE",
        "NOT_COUNCILS_RESPONSIBILITY",
        "NO_FURTHER_ACTION",
        "INTERNAL_REFERRAL",
        "CANCELLED",
        "REOPEN",
    }
)
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")


class Problems:
    """Every problem of one POST, so the client hears of all at once (400)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_any(self) -> None:
        if self.items:
            raise Open311Error(400, *self.items)


def _text(call: Call, name: str, problems: Problems, *, most: int) -> str:
    value = call.param(name) or ""
    if len(value) > most:
        problems.add(_("%(n)s 超过 %(m)s 个字符") % {"n": name, "m": most})
    return value


def _coordinate(call: Call, name: str, low: float, high: float, problems: Problems) -> float | None:
    raw = call.param(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        problems.add(_("%(n)s 不是有效的 WGS-84 坐标：%(v)s") % {"n": name, "v": raw})
        return None
    return value


def _raw_attributes(call: Call) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in call.request.POST:
        match = _ATTRIBUTE.match(name)
        if match:
            values = [v.strip() for v in call.request.POST.getlist(name) if v.strip()]
            found.setdefault(match.group(1), []).extend(values)
    return found


def _check_value(attribute: ServiceAttribute, values: list[str], problems: Problems) -> Any:
    label = attribute.description
    if attribute.datatype == Datatype.MULTIVALUELIST:
        keys = {v.key: v.name for v in attribute.values.all()}
        unknown = [v for v in values if v not in keys]
        if unknown:
            problems.add(
                _("属性 %(c)s（%(l)s）没有取值 %(v)s")
                % {"c": attribute.code, "l": label, "v": ", ".join(unknown)}
            )
        return list(dict.fromkeys(values))
    if len(values) > 1:
        problems.add(_("属性 %(c)s 只能有一个值") % {"c": attribute.code})
    value = values[0]
    if attribute.datatype == Datatype.SINGLEVALUELIST:
        if value not in {v.key for v in attribute.values.all()}:
            problems.add(
                _("属性 %(c)s（%(l)s）没有取值 %(v)s")
                % {"c": attribute.code, "l": label, "v": value}
            )
    elif attribute.datatype == Datatype.NUMBER:
        try:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
        except ValueError:
            problems.add(_("属性 %(c)s 须为数字：%(v)s") % {"c": attribute.code, "v": value})
    elif attribute.datatype == Datatype.DATETIME:
        try:
            parse_when(value, f"attribute[{attribute.code}]")
        except Open311Error as error:
            problems.add(error.descriptions[0])
    elif len(value) > (MAX_DESCRIPTION if attribute.datatype == Datatype.TEXT else 300):
        problems.add(_("属性 %(c)s 过长") % {"c": attribute.code})
    return value


def _line(attribute: ServiceAttribute, value: Any) -> str:
    names: dict[str, str] = {v.key: v.name for v in attribute.values.all()}
    if isinstance(value, list):
        shown = "、".join(names.get(str(v), str(v)) for v in value)
    else:
        shown = names.get(str(value), str(value))
    return f"{attribute.description}：{shown}"


def _attributes(
    call: Call, category: Category, problems: Problems
) -> tuple[dict[str, Any], list[str]]:
    """The service's attributes, checked against its definition; codes the service
    does not define are kept as given (clients such as FixMyStreet send their own)."""
    raw = _raw_attributes(call)
    if len(raw) > 50 or any(len(v) > 1000 for values in raw.values() for v in values):
        problems.add(_("属性过多或过长"))
        return {}, []
    checked: dict[str, Any] = {}
    lines: list[str] = []
    for attribute in selectors.attributes_of(category):
        values = raw.pop(attribute.code, [])
        if not attribute.variable:
            continue
        if not values:
            if attribute.required:
                problems.add(
                    _("缺少必填属性 attribute[%(c)s]（%(l)s）")
                    % {"c": attribute.code, "l": attribute.description}
                )
            continue
        value = _check_value(attribute, values, problems)
        checked[attribute.code] = value
        lines.append(_line(attribute, value))
    for code, values in raw.items():
        checked[code] = values if len(values) > 1 else values[0] if values else ""
    return checked, lines


def read_service_request(call: Call) -> RequestData:
    """The arguments of POST requests, checked; every problem at once as a 400."""
    code = call.param("service_code")
    if code is None:
        raise Open311Error(400, _("缺少 service_code"))
    category = selectors.get_service(code)  # 404 for an unknown one
    problems = Problems()
    lat = _coordinate(call, "lat", -90, 90, problems)
    lon = _coordinate(call, "long", -180, 180, problems)
    address = _text(call, "address_string", problems, most=300)
    address_id = _text(call, "address_id", problems, most=64)
    has_lat, has_long = call.param("lat") is not None, call.param("long") is not None
    if has_lat != has_long:
        problems.add(_("lat 和 long 须同时提供"))
    elif not has_lat and not address and not address_id:
        problems.add(_("须提供位置：lat 和 long，或 address_string，或 address_id"))
    attributes, lines = _attributes(call, category, problems)
    email = _text(call, "email", problems, most=254)
    if email:
        try:
            EmailValidator()(email)
        except ValidationError:
            problems.add(_("email 格式不正确"))
    media_url = _text(call, "media_url", problems, most=500)
    if media_url:
        try:
            URLValidator(schemes=["http", "https"])(media_url)
        except ValidationError:
            problems.add(_("media_url 不是有效的 http(s) 链接"))
    external_id = call.param("external_id") or call.request.headers.get("Idempotency-Key", "")
    external_id = external_id.strip()
    if len(external_id) > MAX_EXTERNAL_ID:
        problems.add(_("external_id 超过 %(m)s 个字符") % {"m": MAX_EXTERNAL_ID})
    data = RequestData(
        category=category,
        description=_text(call, "description", problems, most=MAX_DESCRIPTION),
        lat=lat,
        lon=lon,
        address=address,
        address_id=address_id,
        attributes=attributes,
        attribute_lines=lines,
        email=email,
        device_id=_text(call, "device_id", problems, most=128),
        account_id=_text(call, "account_id", problems, most=128),
        first_name=_text(call, "first_name", problems, most=50),
        last_name=_text(call, "last_name", problems, most=50),
        phone=_text(call, "phone", problems, most=30),
        media_url=media_url,
        external_id=external_id,
    )
    problems.raise_any()
    return data


def read_update(call: Call) -> tuple[str, UpdateData]:
    """The arguments of POST servicerequestupdates: the request id and the update."""
    problems = Problems()
    required = ["service_request_id", "update_id", "status", "updated_datetime", "description"]
    for name in required:
        if call.param(name) is None:
            problems.add(_("缺少 %(n)s") % {"n": name})
    problems.raise_any()
    status = (call.param("status") or "").upper()
    if status not in MYSOCIETY_STATUSES:
        problems.add(_("status 不是有效的状态：%(s)s") % {"s": call.param("status")})
    when = None
    try:
        when = parse_when(call.param("updated_datetime") or "", "updated_datetime")
    except Open311Error as error:
        problems.add(error.descriptions[0])
    description = _text(call, "description", problems, most=MAX_DESCRIPTION)
    update_id = _text(call, "update_id", problems, most=64)
    media_url = _text(call, "media_url", problems, most=500)
    if media_url:
        try:
            URLValidator(schemes=["http", "https"])(media_url)
        except ValidationError:
            problems.add(_("media_url 不是有效的 http(s) 链接"))
    problems.raise_any()
    assert when is not None
    return call.param("service_request_id") or "", UpdateData(
        update_id=update_id,
        status=status,
        description=description,
        updated_at=when,
        media_url=media_url,
        first_name=_text(call, "first_name", problems, most=50),
        last_name=_text(call, "last_name", problems, most=50),
        email=_text(call, "email", problems, most=254),
    )


def find_public_case(call: Call, number: str) -> Case:
    case = selectors.public_cases(call.roots).filter(number=number).first()
    if case is None:
        raise Open311Error(404, _("未知的 service_request_id：%(n)s") % {"n": number})
    return case
