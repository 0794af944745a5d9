"""What a citizen does without an account: report with photos, find the case, rate it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.errors import AttachmentError, CaseError, CaseForbidden, IntakeError
from civicgrid.cases.models import (
    Action,
    Attachment,
    AttachmentKind,
    Case,
    CaseEvent,
    Category,
    Channel,
    Status,
)
from civicgrid.cases.services.citizen import normalize_phone, normalize_tracking_code
from civicgrid.cases.tests.fixtures import EAST_POINT, OUTSIDE_POINT
from civicgrid.grids.models import HandlingUnit

pytestmark = pytest.mark.django_db
Drive = Callable[[str], Case]


@pytest.fixture(autouse=True)
def media_root(settings: Settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def jpeg(color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(data: bytes | None = None, name: str = "现场.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, jpeg() if data is None else data, "image/jpeg")


def intake(category: Category, **overrides: object) -> services.Intake:
    fields: dict[str, object] = {
        "channel": Channel.WEB,
        "category": category,
        "description": "小区东门外井盖破损",
        "lon": EAST_POINT[0],
        "lat": EAST_POINT[1],
        "requester_name": "王女士",
        "requester_phone": "13912345678",
    }
    fields.update(overrides)
    return services.Intake(**fields)  # type: ignore[arg-type]


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def close(
    call_taker: User,
    dispatcher: User,
    unit_handler: User,
    east_worker: User,
    city_unit: HandlingUnit,
) -> Callable[[Case], Case]:
    """Take a new case at EAST_POINT to closed through the real services."""

    def run(case: Case) -> Case:
        case = services.accept_case(case=case, actor=call_taker)
        case = services.dispatch_case(case=case, actor=dispatcher, unit=city_unit)
        case = services.acknowledge_case(case=case, actor=unit_handler)
        case = services.handle_case(case=case, actor=unit_handler, result="井盖已更换")
        return services.verify_case(case=case, actor=east_worker, passed=True)

    return run


# -- reporting -------------------------------------------------------------------------------
@pytest.mark.usefixtures("tree")
def test_a_citizen_report_is_taken_in_from_the_web_with_its_photos(category: Category) -> None:
    case, created = services.report_by_citizen(
        data=intake(category, channel=Channel.HOTLINE), photos=[upload(), upload(name="2.jpg")]
    )
    assert created
    assert case.channel == Channel.WEB  # whatever the form said
    assert case.created_by is None
    assert case.status == Status.NEW
    assert case.grid is not None
    assert case.grid.code == "620103002001001"
    photos = list(case.attachments.order_by("id"))
    assert [p.kind for p in photos] == [AttachmentKind.BEFORE] * 2
    assert all(p.uploaded_by is None for p in photos)
    intake_event = case.events.get(action=Action.CREATE)
    assert all(p.event_id == intake_event.pk for p in photos)
    # No extra "photos added" note in the timeline.
    assert list(case.events.values_list("action", flat=True)) == [Action.CREATE]


@pytest.mark.usefixtures("tree")
def test_a_refused_photo_takes_in_nothing_and_leaves_no_file(
    category: Category, media_root: Path
) -> None:
    with pytest.raises(AttachmentError, match=r"坏\.jpg"):
        services.report_by_citizen(
            data=intake(category), photos=[upload(), upload(b"not a photo", name="坏.jpg")]
        )
    assert not Case.objects.exists()
    assert files_in(media_root) == []


@pytest.mark.usefixtures("tree")
def test_it_refuses_more_photos_than_a_report_may_carry(
    category: Category, settings: Settings
) -> None:
    settings.CIVICGRID_PORTAL_MAX_PHOTOS = 1
    with pytest.raises(AttachmentError, match="最多上传 1 张"):
        services.report_by_citizen(data=intake(category), photos=[upload(), upload()])
    assert not Case.objects.exists()


@pytest.mark.usefixtures("tree")
def test_a_report_needs_a_phone_number_and_a_place_inside(category: Category) -> None:
    with pytest.raises(IntakeError, match="联系电话"):
        services.report_by_citizen(data=intake(category, requester_phone=" - "))
    with pytest.raises(IntakeError, match="不在辖区内"):
        services.report_by_citizen(
            data=intake(category, lon=OUTSIDE_POINT[0], lat=OUTSIDE_POINT[1]),
            photos=[upload()],
        )
    assert not Case.objects.exists()
    assert not Attachment.objects.exists()


@pytest.mark.usefixtures("tree")
def test_a_report_sent_twice_is_one_case_with_its_photos_once(category: Category) -> None:
    first, created = services.report_by_citizen(
        data=intake(category, idempotency_key="portal:abc"), photos=[upload()]
    )
    again, created_again = services.report_by_citizen(
        data=intake(category, idempotency_key="portal:abc"), photos=[upload()]
    )
    assert created
    assert not created_again
    assert again.pk == first.pk
    assert first.attachments.count() == 1


def test_citizen_photos_go_only_to_a_new_web_case_without_an_account(
    new_case: Callable[..., Case], category: Category, call_taker: User
) -> None:
    hotline = new_case()
    with pytest.raises(CaseForbidden):
        services.attach_citizen_photos(case=hotline, uploads=[upload()])
    by_staff = new_case(channel=Channel.WEB)  # typed in by a call-taker
    with pytest.raises(CaseForbidden):
        services.attach_citizen_photos(case=by_staff, uploads=[upload()])
    case, _ = services.report_by_citizen(data=intake(category))
    services.accept_case(case=case, actor=call_taker)
    case.refresh_from_db()
    with pytest.raises(CaseError, match="已受理"):
        services.attach_citizen_photos(case=case, uploads=[upload()])
    assert not Attachment.objects.exists()


# -- finding the case ---------------------------------------------------------------------------
def test_phone_numbers_and_codes_compare_as_typed_loosely() -> None:
    assert normalize_phone("+86 139-1234-5678") == "13912345678"
    assert normalize_phone("0086 13912345678") == "13912345678"
    assert normalize_phone("0931-8123456") == "09318123456"
    assert normalize_tracking_code(" ab2c-d3ef 45 ") == "AB2CD3EF45"


def test_a_case_is_found_by_its_code_and_the_requesters_phone_only(
    new_case: Callable[..., Case],
) -> None:
    case = new_case()  # 13912345678
    code = case.tracking_code
    found = services.find_case_for_citizen(
        tracking_code=f"{code[:5].lower()} {code[5:]}", phone="+86 139 1234 5678"
    )
    assert found is not None
    assert found.pk == case.pk
    assert services.find_case_for_citizen(tracking_code=code, phone="13912345679") is None
    other = "".join("A" if ch != "A" else "B" for ch in code)
    assert services.find_case_for_citizen(tracking_code=other, phone="13912345678") is None
    assert services.find_case_for_citizen(tracking_code="", phone="") is None
    anonymous = new_case(requester_phone="")
    assert services.find_case_for_citizen(tracking_code=anonymous.tracking_code, phone="") is None


# -- rating ------------------------------------------------------------------------------------
def test_the_citizen_rates_a_closed_case_once(
    new_case: Callable[..., Case], close: Callable[[Case], Case]
) -> None:
    case = close(new_case())
    rated = services.rate_case_by_citizen(
        case=case, phone="139-1234-5678", satisfaction=4, comment="  处理及时  "
    )
    assert rated.satisfaction == 4
    event = CaseEvent.objects.get(case=case, action=Action.FOLLOW_UP)
    assert event.actor is None
    assert event.is_public
    assert event.reason == "处理及时"
    assert event.payload == {"satisfaction": 4, "source": "citizen"}
    assert services.citizen_rating(rated) == event
    with pytest.raises(CaseError, match="不能重复评价"):
        services.rate_case_by_citizen(case=rated, phone="13912345678", satisfaction=1)
    rated.refresh_from_db()
    assert rated.satisfaction == 4
    assert rated.events.filter(action=Action.FOLLOW_UP).count() == 1


def test_a_staff_follow_up_does_not_count_as_the_citizens_rating(
    new_case: Callable[..., Case], close: Callable[[Case], Case], call_taker: User
) -> None:
    case = close(new_case())
    case = services.follow_up_case(case=case, actor=call_taker, satisfaction=3)
    assert services.citizen_rating(case) is None
    case = services.rate_case_by_citizen(case=case, phone="13912345678", satisfaction=5)
    assert case.satisfaction == 5


def test_a_case_reopened_and_closed_again_may_be_rated_again(
    new_case: Callable[..., Case],
    close: Callable[[Case], Case],
    call_taker: User,
    unit_handler: User,
    east_worker: User,
) -> None:
    case = close(new_case())
    case = services.rate_case_by_citizen(case=case, phone="13912345678", satisfaction=1)
    case = services.reopen_case(case=case, actor=call_taker, reason="市民不满意，重办")
    with pytest.raises(CaseError, match="办结后"):
        services.rate_case_by_citizen(case=case, phone="13912345678", satisfaction=5)
    case = services.acknowledge_case(case=case, actor=unit_handler)
    case = services.handle_case(case=case, actor=unit_handler, result="重新处理")
    case = services.verify_case(case=case, actor=east_worker, passed=True)
    case = services.rate_case_by_citizen(case=case, phone="13912345678", satisfaction=5)
    assert case.satisfaction == 5
    assert case.events.filter(action=Action.FOLLOW_UP, actor__isnull=True).count() == 2


def test_rating_is_refused_to_a_wrong_phone_an_open_case_and_a_bad_level(
    new_case: Callable[..., Case], close: Callable[[Case], Case]
) -> None:
    open_case = new_case()
    with pytest.raises(CaseError, match="办结后"):
        services.rate_case_by_citizen(case=open_case, phone="13912345678", satisfaction=5)
    case = close(new_case())
    with pytest.raises(CaseForbidden):
        services.rate_case_by_citizen(case=case, phone="13900000000", satisfaction=5)
    for level in (0, 6):
        with pytest.raises(CaseError, match="1～5"):
            services.rate_case_by_citizen(case=case, phone="13912345678", satisfaction=level)
    with pytest.raises(CaseError, match="500"):
        services.rate_case_by_citizen(
            case=case, phone="13912345678", satisfaction=5, comment="好" * 501
        )
    case.refresh_from_db()
    assert case.satisfaction is None
    assert not case.events.filter(action=Action.FOLLOW_UP).exists()
