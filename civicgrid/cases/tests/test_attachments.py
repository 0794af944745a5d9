"""Photos attached to cases: checked by content, size-limited, located, stripped, stored."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import InMemoryStorage, default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from PIL import ExifTags, Image, ImageCms
from PIL.TiffImagePlugin import IFDRational
from pytest_django.fixtures import Settings

from civicgrid.accounts.models import User
from civicgrid.cases import services
from civicgrid.cases.attachments import process_image
from civicgrid.cases.errors import AttachmentError, CaseError, CaseForbidden
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
from civicgrid.cases.tests.fixtures import EAST_POINT

Drive = Callable[[str], Case]

# --- Photos made in memory ----------------------------------------------------


def gps_exif(
    *,
    lat: tuple[Any, ...] = (35.0, 58.0, 30.0),
    lat_ref: str = "N",
    lon: tuple[Any, ...] = (103.0, 49.0, 30.0),
    lon_ref: str = "E",
    taken: str | None = "2024:05:01 10:30:00",
    offset: str | None = "+08:00",
    orientation: int | None = None,
) -> Image.Exif:
    """EXIF as a phone writes it: GPS in degrees, minutes, seconds (EAST_POINT by default)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Civicgrid Phone"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: lat_ref,
        ExifTags.GPS.GPSLatitude: lat,
        ExifTags.GPS.GPSLongitudeRef: lon_ref,
        ExifTags.GPS.GPSLongitude: lon,
    }
    details: dict[int, str] = {}
    if taken is not None:
        details[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    if details:
        exif[ExifTags.IFD.Exif] = details
    return exif


def photo(
    size: tuple[int, int] = (64, 48),
    *,
    fmt: str = "JPEG",
    mode: str = "RGB",
    color: Any = (200, 120, 40),
    **save: Any,
) -> bytes:
    image = Image.new(mode, size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noisy_jpeg(size: tuple[int, int] = (200, 200)) -> bytes:
    image = Image.effect_noise(size, 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def upload(data: bytes, name: str = "现场.jpg", content_type: str = "image/jpeg") -> Any:
    return SimpleUploadedFile(name, data, content_type=content_type)


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims other dimensions (with a valid checksum)."""
    assert data[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[33:]


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def assert_no_metadata(data: bytes) -> None:
    image = reopened(data)
    assert not image.getexif()
    assert ExifTags.IFD.GPSInfo not in image.getexif()
    for key in ("exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"):
        assert key not in image.info
    for marker in (b"Exif", b"xmpmeta", b"Civicgrid Phone", b"secret", b"ICC_PROFILE"):
        assert marker not in data


# --- Checking and cleaning one photo -------------------------------------------


def test_it_reads_where_and_when_a_photo_was_taken_and_strips_it_from_the_file() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photo(
        exif=gps_exif(),
        xmp=b"<x:xmpmeta>secret location</x:xmpmeta>",
        comment=b"secret comment",
        icc_profile=srgb,
    )
    assert b"Exif" in data
    assert b"xmpmeta" in data

    result = process_image(upload(data), filename="现场.jpg")

    assert result.lon == pytest.approx(EAST_POINT[0])
    assert result.lat == pytest.approx(EAST_POINT[1])
    assert result.taken_at == datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
    assert result.content_type == "image/jpeg"
    assert result.extension == "jpg"
    assert (result.width, result.height) == (64, 48)
    assert reopened(result.content).format == "JPEG"
    assert_no_metadata(result.content)
    assert_no_metadata(result.thumbnail)


def test_it_reads_southern_and_western_coordinates() -> None:
    exif = gps_exif(lat_ref="S", lon_ref="W", taken=None, offset=None)

    result = process_image(photo(exif=exif), filename="a.jpg")

    assert (result.lon, result.lat) == (pytest.approx(-103.825), pytest.approx(-35.975))
    assert result.taken_at is None


def test_it_takes_the_platform_time_zone_when_the_photo_records_no_offset() -> None:
    result = process_image(photo(exif=gps_exif(offset=None)), filename="a.jpg")

    assert result.taken_at == datetime(2024, 5, 1, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai


@pytest.mark.parametrize(
    "exif",
    [
        pytest.param(gps_exif(lat=(0.0, 0.0, 0.0), lon=(0.0, 0.0, 0.0)), id="no fix (0, 0)"),
        pytest.param(
            gps_exif(lat=(IFDRational(35, 0), IFDRational(1, 0), IFDRational(0, 0))),
            id="zero denominators",
        ),
        pytest.param(gps_exif(lat=(95.0, 0.0, 0.0)), id="latitude out of range"),
        pytest.param(gps_exif(lat_ref="X"), id="unknown reference"),
    ],
)
def test_it_ignores_gps_data_that_makes_no_sense(exif: Image.Exif) -> None:
    result = process_image(photo(exif=exif), filename="a.jpg")

    assert (result.lon, result.lat) == (None, None)
    assert result.taken_at == datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
    assert_no_metadata(result.content)


@pytest.mark.parametrize("taken", ["0000:00:00 00:00:00", "    :  :     :  :  ", "yesterday"])
def test_it_ignores_a_date_that_makes_no_sense(taken: str) -> None:
    result = process_image(photo(exif=gps_exif(taken=taken)), filename="a.jpg")

    assert result.taken_at is None
    assert result.lat == pytest.approx(EAST_POINT[1])


def test_a_photo_without_exif_has_no_location() -> None:
    result = process_image(photo(), filename="a.jpg")

    assert (result.lon, result.lat, result.taken_at) == (None, None, None)


def test_it_applies_the_exif_orientation() -> None:
    # Stored sideways, left half red and right half blue; orientation 6 says
    # "turn 90° clockwise to view", which brings the red half to the top.
    image = Image.new("RGB", (80, 40), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=gps_exif(orientation=6), quality=95)

    result = process_image(buffer.getvalue(), filename="sideways.jpg")

    assert (result.width, result.height) == (40, 80)
    upright = reopened(result.content).convert("RGB")
    assert upright.size == (40, 80)
    top, bottom = upright.getpixel((20, 10)), upright.getpixel((20, 70))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60
    assert not reopened(result.content).getexif()
    assert reopened(result.thumbnail).size == (40, 80)  # upright, and never enlarged


def test_it_takes_a_png_and_keeps_its_transparency() -> None:
    data = photo((30, 20), fmt="PNG", mode="RGBA", color=(0, 128, 0, 100))

    result = process_image(upload(data, "截图.png", "image/png"), filename="截图.png")

    assert (result.content_type, result.extension) == ("image/png", "png")
    stored = reopened(result.content)
    assert stored.format == "PNG"
    assert stored.mode == "RGBA"
    assert stored.getpixel((0, 0)) == (0, 128, 0, 100)
    thumbnail = reopened(result.thumbnail)
    assert thumbnail.format == "JPEG"
    assert thumbnail.mode == "RGB"


def test_it_scales_a_16_bit_greyscale_png_to_8_bits() -> None:
    result = process_image(photo((20, 10), fmt="PNG", mode="I;16", color=40_000), filename="a.png")

    stored = reopened(result.content)
    assert stored.mode == "L"
    assert stored.getpixel((0, 0)) == 156


def test_it_strips_text_and_exif_chunks_from_a_png() -> None:
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "secret")
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>secret</x:xmpmeta>")
    data = photo((30, 20), fmt="PNG", pnginfo=text, exif=gps_exif())

    result = process_image(data, filename="a.png")

    assert result.lat == pytest.approx(EAST_POINT[1])
    assert_no_metadata(result.content)
    assert "Comment" not in reopened(result.content).info


def test_it_turns_a_cmyk_jpeg_into_rgb() -> None:
    result = process_image(photo(mode="CMYK", color=(0, 255, 255, 0)), filename="print.jpg")

    stored = reopened(result.content)
    assert stored.mode == "RGB"
    red = stored.getpixel((5, 5))
    assert isinstance(red, tuple)
    assert red[0] > 200
    assert red[1] < 60


def test_it_keeps_the_first_picture_of_a_multi_picture_jpeg() -> None:
    first = Image.new("RGB", (60, 40), (255, 0, 0))
    buffer = io.BytesIO()
    first.save(
        buffer,
        format="MPO",
        save_all=True,
        append_images=[Image.new("RGB", (60, 40), (0, 0, 255))],
        exif=gps_exif(),
    )
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"

    result = process_image(buffer.getvalue(), filename="portrait.jpg")

    stored = reopened(result.content)
    assert (stored.format, result.content_type) == ("JPEG", "image/jpeg")
    assert getattr(stored, "n_frames", 1) == 1
    pixel = stored.getpixel((30, 20))
    assert isinstance(pixel, tuple)
    assert pixel[0] > 200
    assert result.lon == pytest.approx(EAST_POINT[0])
    assert_no_metadata(result.content)


def test_it_takes_a_webp() -> None:
    data = photo((50, 40), fmt="WEBP", exif=gps_exif())

    result = process_image(data, filename="a.webp")

    assert (result.content_type, result.extension) == ("image/webp", "webp")
    assert result.lon == pytest.approx(EAST_POINT[0])
    assert reopened(result.content).format == "WEBP"
    assert_no_metadata(result.content)


def test_it_refuses_a_text_file_named_like_a_photo() -> None:
    fake = upload(b"this is not a photo at all", "photo.jpg", "image/jpeg")

    with pytest.raises(AttachmentError, match="不是有效的 JPEG、PNG 或 WebP 图片"):
        process_image(fake, filename="photo.jpg")


def test_it_refuses_an_image_of_another_format_whatever_it_is_called() -> None:
    gif = photo((10, 10), fmt="GIF", mode="P", color=1)

    with pytest.raises(AttachmentError, match="不是有效的"):
        process_image(upload(gif, "photo.jpg"), filename="photo.jpg")


def test_it_refuses_a_heic_photo_and_asks_for_a_jpeg() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)

    with pytest.raises(AttachmentError, match="HEIC") as refused:
        process_image(upload(heic, "IMG_0001.HEIC"), filename="IMG_0001.HEIC")
    assert "JPEG" in refused.value.message


def test_it_refuses_a_truncated_jpeg() -> None:
    data = noisy_jpeg()

    with pytest.raises(AttachmentError, match="已损坏或不完整"):
        process_image(data[: len(data) // 2], filename="half.jpg")


def test_it_refuses_a_png_with_a_broken_checksum() -> None:
    data = bytearray(photo((40, 40), fmt="PNG"))
    data[-20] ^= 0xFF  # inside the image data: its CRC no longer matches

    with pytest.raises(AttachmentError, match="已损坏或不完整"):
        process_image(bytes(data), filename="broken.png")


def test_it_refuses_an_empty_file() -> None:
    with pytest.raises(AttachmentError, match="是空的"):
        process_image(upload(b"", "empty.jpg"), filename="empty.jpg")


@pytest.mark.parametrize("as_upload", [True, False], ids=["uploaded file", "bytes"])
def test_it_refuses_a_file_over_the_size_limit(settings: Settings, as_upload: bool) -> None:
    settings.CIVICGRID_MAX_UPLOAD_BYTES = 2_000
    data = noisy_jpeg((100, 100))
    assert len(data) > 2_000

    with pytest.raises(AttachmentError, match=r"超过了 2\.0\sKB 的上限"):
        process_image(upload(data) if as_upload else data, filename="big.jpg")


def test_it_refuses_a_decompression_bomb_below_pillows_own_limit() -> None:
    # 8000 × 7000 = 56 megapixels of nothing: a few kilobytes on the wire.
    bomb = photo((8000, 7000), fmt="PNG", mode="1", color=0)
    assert len(bomb) < 100_000

    with pytest.raises(AttachmentError, match="像素尺寸过大（上限 5000 万像素）"):
        process_image(bomb, filename="bomb.png")


def test_it_turns_pillows_decompression_bomb_error_into_a_message() -> None:
    # 20000 × 20000 = 400 megapixels: Pillow itself refuses to open it.
    bomb = with_png_size(photo((1, 1), fmt="PNG"), 20_000, 20_000)

    with pytest.raises(AttachmentError, match="像素尺寸过大"):
        process_image(bomb, filename="bomb.png")


def test_it_makes_a_thumbnail_of_the_long_side() -> None:
    result = process_image(photo((1200, 800)), filename="a.jpg")

    thumbnail = reopened(result.thumbnail)
    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (320, 213)
    assert (result.thumbnail_width, result.thumbnail_height) == (320, 213)
    assert (result.width, result.height) == (1200, 800)


def test_it_scales_down_photos_beyond_the_longest_side_kept(settings: Settings) -> None:
    settings.CIVICGRID_PHOTO_MAX_SIDE = 500

    result = process_image(photo((1000, 600)), filename="a.jpg")

    assert (result.width, result.height) == (500, 300)
    assert reopened(result.content).size == (500, 300)


# --- Attaching photos to a case ------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings: Settings, tmp_path: Path) -> Path:
    """Stored files go to a directory of the test's own."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_unit_reports_back_with_after_photos(
    drive: Drive, unit_handler: User, media_root: Path
) -> None:
    case = services.handle_case(
        case=drive(Status.IN_PROGRESS), actor=unit_handler, result="已清理，恢复通行"
    )
    event = CaseEvent.objects.get(case=case, action=Action.HANDLE)
    photos = [
        upload(photo(exif=gps_exif()), "处置后1.jpg"),
        upload(photo((30, 20), fmt="PNG"), "处置后2.png", "image/png"),
    ]

    attached = services.attach_photos(
        case=case, actor=unit_handler, uploads=photos, kind=AttachmentKind.AFTER, event=event
    )

    assert [a.pk is not None for a in attached] == [True, True]
    rows = list(Attachment.objects.filter(case=case))
    assert rows == attached
    assert {a.event_id for a in rows} == {event.pk}
    assert {a.kind for a in rows} == {AttachmentKind.AFTER}
    assert {a.uploaded_by_id for a in rows} == {unit_handler.pk}
    first, second = rows
    assert (first.content_type, second.content_type) == ("image/jpeg", "image/png")
    assert first.lon == pytest.approx(EAST_POINT[0])
    assert first.lat == pytest.approx(EAST_POINT[1])
    assert first.taken_at == datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
    assert second.lon is None
    # Random names under the case's folder, nothing taken from the uploaded name.
    name = re.compile(rf"^cases/\d{{4}}/\d{{2}}/{case.pk}/[\w-]{{24}}(_thumb)?\.(jpg|png)$")
    for row in rows:
        assert name.match(str(row.file.name)), row.file.name
        assert name.match(str(row.thumbnail.name)), row.thumbnail.name
        assert "处置" not in str(row.file.name)
    assert len(stored_files(media_root)) == 4
    with first.file.open("rb") as handle:
        content = handle.read()
    assert first.size == len(content)
    assert_no_metadata(content)
    # The photos belong to the report: no extra event.
    assert not CaseEvent.objects.filter(case=case, action=Action.NOTE).exists()


def test_a_photo_without_an_event_is_recorded_in_the_timeline(
    new_case: Callable[..., Case], east_worker: User
) -> None:
    case = new_case()

    attachment = services.add_attachment(
        case=case, actor=east_worker, upload=upload(photo()), kind=AttachmentKind.BEFORE
    )

    note = CaseEvent.objects.get(case=case, action=Action.NOTE)
    assert attachment.event == note
    assert note.actor == east_worker
    assert note.actor_role == "grid_worker"
    assert "1 张照片" in note.reason


def test_an_outsider_may_not_attach_photos(
    new_case: Callable[..., Case], outsider: User, media_root: Path
) -> None:
    case = new_case()

    with pytest.raises(CaseForbidden):
        services.add_attachment(
            case=case, actor=outsider, upload=upload(photo()), kind=AttachmentKind.OTHER
        )

    assert not Attachment.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.usefixtures("tree")
def test_whoever_reported_a_case_may_attach_photos_to_it(
    category: Category, outsider: User
) -> None:
    case, _created = services.create_case(
        data=services.Intake(
            channel=Channel.WEB,
            category=category,
            description="路灯不亮",
            lon=EAST_POINT[0],
            lat=EAST_POINT[1],
        ),
        actor=outsider,
    )

    attachment = services.add_attachment(
        case=case, actor=outsider, upload=upload(photo()), kind=AttachmentKind.BEFORE
    )

    assert attachment.case == case
    assert attachment.event is not None
    assert attachment.event.actor_role == ""


def test_it_refuses_photos_beyond_the_limit_per_case(
    settings: Settings, new_case: Callable[..., Case], call_taker: User
) -> None:
    settings.CIVICGRID_MAX_ATTACHMENTS_PER_CASE = 2
    case = new_case()
    services.attach_photos(
        case=case,
        actor=call_taker,
        uploads=[photo(), photo()],
        kind=AttachmentKind.OTHER,
    )

    with pytest.raises(AttachmentError, match="最多可有 2 个附件"):
        services.add_attachment(
            case=case, actor=call_taker, upload=photo(), kind=AttachmentKind.OTHER
        )

    assert Attachment.objects.filter(case=case).count() == 2


def test_several_photos_are_all_or_nothing(
    new_case: Callable[..., Case], call_taker: User, media_root: Path
) -> None:
    case = new_case()
    events_before = CaseEvent.objects.filter(case=case).count()
    uploads = [upload(photo(), "好.jpg"), upload(b"not an image", "坏.jpg")]

    with pytest.raises(AttachmentError, match=r"坏\.jpg"):
        services.attach_photos(
            case=case, actor=call_taker, uploads=uploads, kind=AttachmentKind.BEFORE
        )

    assert not Attachment.objects.exists()
    assert stored_files(media_root) == []
    assert CaseEvent.objects.filter(case=case).count() == events_before


def test_stored_files_are_deleted_when_the_rows_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch,
    new_case: Callable[..., Case],
    call_taker: User,
    media_root: Path,
) -> None:
    case = new_case()

    def fail(*args: object, **kwargs: object) -> None:
        assert len(stored_files(media_root)) == 4  # both photos were stored first
        raise DatabaseError("disk full")

    monkeypatch.setattr(Attachment.objects, "bulk_create", fail)

    with pytest.raises(DatabaseError):
        services.attach_photos(
            case=case, actor=call_taker, uploads=[photo(), photo()], kind=AttachmentKind.OTHER
        )

    assert stored_files(media_root) == []
    assert not Attachment.objects.exists()
    assert not CaseEvent.objects.filter(case=case, action=Action.NOTE).exists()


def test_photos_go_through_the_configured_storage_backend(
    settings: Settings, new_case: Callable[..., Case], call_taker: User, media_root: Path
) -> None:
    # What works with InMemoryStorage works with any Storage, e.g. S3-compatible ones.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    case = new_case()

    attachment = services.add_attachment(
        case=case, actor=call_taker, upload=photo(exif=gps_exif()), kind=AttachmentKind.BEFORE
    )

    assert isinstance(storages["default"], InMemoryStorage)
    file_name, thumbnail_name = str(attachment.file.name), str(attachment.thumbnail.name)
    assert default_storage.exists(file_name)
    assert default_storage.exists(thumbnail_name)
    assert stored_files(media_root) == []
    with default_storage.open(file_name, "rb") as handle:
        assert_no_metadata(handle.read())
    assert reopened(attachment.thumbnail.read()).format == "JPEG"


def test_it_refuses_an_unknown_kind_and_an_event_of_another_case(
    new_case: Callable[..., Case], call_taker: User
) -> None:
    case, other = new_case(), new_case(description="另一处占道经营")
    foreign = CaseEvent.objects.filter(case=other).first()

    with pytest.raises(CaseError, match="未知的附件类型"):
        services.add_attachment(case=case, actor=call_taker, upload=photo(), kind="selfie")
    with pytest.raises(CaseError, match="不属于案件"):
        services.add_attachment(
            case=case, actor=call_taker, upload=photo(), kind=AttachmentKind.OTHER, event=foreign
        )
    assert not Attachment.objects.exists()
