"""Checking and cleaning the photos attached to cases.

A photo is accepted by its content, never by its name or declared type: Pillow
must identify it as JPEG, PNG or WebP, verify it and decode it whole. Oversize
files and images of absurd dimensions (decompression bombs) are refused with a
message fit for the user. Where the photo was taken (EXIF GPS, WGS-84 from
phones) and when (DateTimeOriginal) are read, the EXIF orientation is applied,
and the image is re-encoded from its pixels alone, so that the stored file
carries no EXIF, GPS, XMP, ICC profile or comment. A JPEG thumbnail is made.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.files import File
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from civicgrid.cases.errors import AttachmentError

logger = logging.getLogger(__name__)

#: Something a photo can arrive as: an uploaded (or any Django) file, or its bytes.
Upload = File | bytes

#: Formats Pillow may identify. Its JPEG opener also returns MPO: a JPEG with extra
#: pictures (depth maps, previews), as some phones write; only the first is kept.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
#: Pillow format read -> (format written, content type, file extension).
OUTPUT = {
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    "MPO": ("JPEG", "image/jpeg", "jpg"),
    "PNG": ("PNG", "image/png", "png"),
    "WEBP": ("WEBP", "image/webp", "webp"),
}
ENCODER_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 85},
    "PNG": {"compress_level": 6},
    "WEBP": {"quality": 85, "method": 4},
}
#: ISO-BMFF brands of HEIC/HEIF files (iPhone photos), which Pillow cannot read.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class ProcessedImage:
    """A photo checked, oriented and stripped of all metadata, with its thumbnail."""

    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes
    thumbnail_width: int
    thumbnail_height: int
    #: Where and when it was taken, from its EXIF data (WGS-84), if it said so.
    lon: float | None = None
    lat: float | None = None
    taken_at: datetime | None = None


def process_image(upload: Upload, *, filename: str) -> ProcessedImage:
    """Check one photo and return it cleaned, or raise ``AttachmentError``.

    ``filename`` only names the photo in messages; the content decides.
    """
    name = _display_name(filename)
    data = _read(upload, name)
    image, source_format = _decode(data, name)
    try:
        lon, lat, taken_at = _metadata(image, name)
        image = _normalise(image, source_format)
        output_format, content_type, extension = OUTPUT[source_format]
        content = _encode(image, output_format)
        thumb = _thumbnail(image)
        thumbnail = _encode(thumb, "JPEG")
    except Exception as exc:
        logger.info("photo %r could not be processed", name, exc_info=True)
        raise AttachmentError(
            _("照片“%(name)s”无法处理，请重新拍摄或上传") % {"name": name}
        ) from exc
    return ProcessedImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=image.width,
        height=image.height,
        thumbnail=thumbnail,
        thumbnail_width=thumb.width,
        thumbnail_height=thumb.height,
        lon=lon,
        lat=lat,
        taken_at=taken_at,
    )


def _display_name(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    if len(name) > 60:
        name = name[:57] + "..."
    return name or _("未命名文件")


def _read(upload: Upload, name: str) -> bytes:
    """The upload's bytes, refusing it as soon as it is known to be too big."""
    limit: int = settings.CIVICGRID_MAX_UPLOAD_BYTES

    def too_big(size: int) -> AttachmentError:
        return AttachmentError(
            _("文件“%(name)s”大小为 %(size)s，超过了 %(limit)s 的上限")
            % {"name": name, "size": filesizeformat(size), "limit": filesizeformat(limit)}
        )

    if isinstance(upload, bytes | bytearray | memoryview):
        data = bytes(upload)
    else:
        declared = upload.size
        if declared is not None and declared > limit:
            raise too_big(declared)
        buffer = bytearray()
        for chunk in upload.chunks():
            buffer += chunk
            if len(buffer) > limit:
                raise too_big(declared or len(buffer))
        data = bytes(buffer)
    if len(data) > limit:
        raise too_big(len(data))
    if not data:
        raise AttachmentError(_("文件“%(name)s”是空的") % {"name": name})
    return data


def _pixel_limit_error(name: str) -> AttachmentError:
    megapixels = settings.CIVICGRID_MAX_IMAGE_PIXELS / 10_000
    return AttachmentError(
        _("照片“%(name)s”的像素尺寸过大（上限 %(mp)s 万像素），请缩小后重新上传")
        % {"name": name, "mp": f"{megapixels:g}"}
    )


def _decode(data: bytes, name: str) -> tuple[Image.Image, str]:
    """Identify, verify and fully decode the image; return it and its format."""
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        raise AttachmentError(
            _(
                "照片“%(name)s”是 HEIC 格式，暂不支持。请改用 JPEG 格式上传"
                "（iPhone 可在“设置 > 相机 > 格式”中选择“兼容性最佳”）"
            )
            % {"name": name}
        )
    not_an_image = AttachmentError(
        _("文件“%(name)s”不是有效的 JPEG、PNG 或 WebP 图片") % {"name": name}
    )
    damaged = AttachmentError(_("照片“%(name)s”已损坏或不完整，请重新拍摄或上传") % {"name": name})
    try:
        # verify() checks the structure (PNG checksums) but leaves the image unusable.
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        source_format = image.format or ""
        if source_format not in OUTPUT:
            raise not_an_image
        width, height = image.size
        if width < 1 or height < 1:
            raise damaged
        if width * height > settings.CIVICGRID_MAX_IMAGE_PIXELS:
            raise _pixel_limit_error(name)
        max_side: int = settings.CIVICGRID_PHOTO_MAX_SIDE
        if source_format in ("JPEG", "MPO") and max(width, height) > max_side:
            # Let libjpeg decode at a reduced scale when the photo will be shrunk anyway.
            scale = max_side / max(width, height)
            image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
    except AttachmentError:
        raise
    except Image.DecompressionBombError as exc:
        raise _pixel_limit_error(name) from exc
    except UnidentifiedImageError as exc:
        raise not_an_image from exc
    except Exception as exc:
        # Truncated data, bad checksums, broken headers: whatever Pillow raises.
        logger.info("photo %r did not decode", name, exc_info=True)
        raise damaged from exc
    return image, source_format


def _metadata(image: Image.Image, name: str) -> tuple[float | None, float | None, datetime | None]:
    """Where and when the photo was taken, from its EXIF data; never fails."""
    try:
        exif = image.getexif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        details = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        logger.info("unreadable EXIF data in photo %r", name, exc_info=True)
        return None, None, None
    lon, lat = _gps_point(gps)
    return lon, lat, _taken_at(details)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ").upper() if value is not None else ""


def _degrees(
    value: object, ref: object, positive: str, negative: str, bound: float
) -> float | None:
    """Rational degrees, minutes, seconds and an N/S or E/W reference as a float."""
    parts: list[Any] = list(value) if isinstance(value, tuple | list) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    sign = _text(ref) or positive
    if sign not in (positive, negative) or degrees > bound:
        return None
    return round(-degrees if sign == negative else degrees, 7)


def _gps_point(gps: dict[int, Any]) -> tuple[float | None, float | None]:
    try:
        lat = _degrees(
            gps.get(ExifTags.GPS.GPSLatitude),
            gps.get(ExifTags.GPS.GPSLatitudeRef),
            "N",
            "S",
            90,
        )
        lon = _degrees(
            gps.get(ExifTags.GPS.GPSLongitude),
            gps.get(ExifTags.GPS.GPSLongitudeRef),
            "E",
            "W",
            180,
        )
    except Exception:
        logger.info("unreadable GPS data", exc_info=True)
        return None, None
    # Phones without a fix sometimes write 0/0; no case is in the Gulf of Guinea.
    if lon is None or lat is None or (lon == 0 and lat == 0):
        return None, None
    return lon, lat


def _taken_at(details: dict[int, Any]) -> datetime | None:
    """DateTimeOriginal, in its recorded UTC offset, else in the platform's time zone."""
    for tag, offset_tag in (
        (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
        (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    ):
        raw = details.get(tag)
        if raw is None:
            continue
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            naive = datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        found = OFFSET.match(_text(details.get(offset_tag)))
        if found:
            sign, hours, minutes = found.groups()
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            if delta <= timedelta(hours=14):
                zone = dt_timezone(-delta if sign == "-" else delta)
                return naive.replace(tzinfo=zone)
        return timezone.make_aware(naive, timezone.get_default_timezone())
    return None


def _normalise(image: Image.Image, source_format: str) -> Image.Image:
    """Upright, in sRGB, in a mode the output format takes, not too big, no metadata."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:
        logger.info("EXIF orientation not applied", exc_info=True)
    has_alpha = image.has_transparency_data
    if image.mode.startswith("I"):
        # 16-bit greyscale: scale down to 8 bits (a plain conversion would clip to white).
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        image = _to_srgb(image, icc, "RGBA" if image.mode == "RGBA" else "RGB")
    if source_format in ("JPEG", "MPO"):
        mode = "L" if image.mode == "L" else "RGB"
    elif has_alpha:
        mode = "RGBA"
    else:
        mode = "L" if image.mode == "L" and source_format == "PNG" else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    max_side: int = settings.CIVICGRID_PHOTO_MAX_SIDE
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    # Encoders take EXIF, ICC profiles, comments and transparency from here: none stays.
    image.info = {}
    return image


def _to_srgb(image: Image.Image, icc: bytes, mode: str) -> Image.Image:
    """Apply the embedded colour profile (e.g. an iPhone's Display P3), then drop it."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except Exception:
        logger.info("colour profile not applied", exc_info=True)
        return image
    return converted if converted is not None else image


def _thumbnail(image: Image.Image) -> Image.Image:
    size: int = settings.CIVICGRID_THUMBNAIL_SIZE
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if thumb.mode == "RGBA":
        background = Image.new("RGB", thumb.size, "white")
        background.paste(thumb, mask=thumb.getchannel("A"))
        thumb = background
    elif thumb.mode not in ("L", "RGB"):
        thumb = thumb.convert("RGB")
    thumb.info = {}
    return thumb


def _encode(image: Image.Image, output_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=output_format, **ENCODER_OPTIONS[output_format])
    return buffer.getvalue()
