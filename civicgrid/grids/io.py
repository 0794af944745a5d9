"""Grids in and out: GeoJSON and zipped Shapefiles to ``GridInput``, the tree to GeoJSON.

Reading never touches the database and never stops at a bad feature: each
feature becomes a ``GridInput`` (its geometry converted to storage lon/lat) or,
when it cannot, a ``Problem`` naming it, so that ``ReadResult.check`` can list
every problem of a file at once. Features are counted from 1, the way a person
counts them ("第 1 个要素" is the first).

The source coordinate system is, in this order: the one asked for (``--crs``),
the one the file declares (a GeoJSON ``crs`` member, a Shapefile's ``.prj``),
else WGS-84. The asked-for one wins because GCJ-02 and BD-09 data is routinely
labelled WGS-84 and no ``.prj`` can say GCJ-02; a disagreement is noted.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np
import shapefile
import shapely
import shapely.geometry
from django.db.models import F
from django.utils.translation import gettext as _
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from civicgrid.grids import crs
from civicgrid.grids.models import Grid, GridQuerySet, Kind
from civicgrid.grids.validation import GridInput, Problem, validate

#: Property names read when no other is given.
DEFAULT_CODE_FIELD = "code"
DEFAULT_NAME_FIELD = "name"
DEFAULT_PARENT_FIELD = "parent_code"
LEVEL_FIELD = "level"
KIND_FIELD = "kind"
HOUSEHOLDS_FIELD = "households"


class ImportFormatError(ValueError):
    """The file as a whole cannot be read: not GeoJSON, no ``.shp`` in the zip, …"""


@dataclass(frozen=True)
class ReadOptions:
    """How features map to grids; ``None`` means "from the feature's properties"."""

    #: Level of every feature; ``None`` reads the ``level`` property.
    level: int | None = None
    #: Parent code of every feature (fixed) …
    parent_code: str | None = None
    #: … or the property holding it (``parent_code`` when neither is given).
    parent_field: str | None = None
    code_field: str = DEFAULT_CODE_FIELD
    name_field: str = DEFAULT_NAME_FIELD
    #: Source coordinate system; ``None`` means the file's own, else WGS-84.
    crs: str | None = None
    #: Text encoding of a Shapefile's attributes; ``None``: its ``.cpg``, else UTF-8, else GBK.
    encoding: str | None = None


# -- coordinate systems ---------------------------------------------------------


@dataclass(frozen=True)
class SourceCRS:
    """The coordinate system features are read in."""

    #: For messages: ``wgs84``, ``gcj02``, ``EPSG:4544`` or a CRS name.
    label: str
    #: A name ``crs`` accepts; ``None`` when only ``wkt`` describes it.
    name: str | None = None
    wkt: str | None = None

    @property
    def is_storage(self) -> bool:
        return self.name is not None and crs.normalize(self.name) in crs.STORAGE_CRS

    def to_storage(self, geom: shapely.Geometry) -> shapely.Geometry:
        if self.name is not None:
            return crs.geometry_to_storage(geom, self.name)
        assert self.wkt is not None
        transformer = _wkt_transformer(self.wkt)

        def convert(coords: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geom, convert)


STORAGE_SOURCE = SourceCRS(label=crs.WGS84, name=crs.WGS84)


@lru_cache(maxsize=8)
def _wkt_transformer(wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(wkt), "EPSG:4490", always_xy=True)


def source_crs_from_pyproj(value: CRS) -> SourceCRS:
    """A pyproj CRS (e.g. from a ``.prj``) as a source: by EPSG code when it has one."""
    code = value.to_epsg()
    if code is not None:
        name = crs.normalize(f"EPSG:{code}")
        return SourceCRS(label=name, name=name)
    if value.is_geographic and any(
        value.equals(CRS.from_epsg(code), ignore_axis_order=True) for code in (4326, 4490)
    ):
        return STORAGE_SOURCE  # e.g. OGC:CRS84, WGS 84 with lon/lat axes
    return SourceCRS(label=value.name or "WKT", wkt=value.to_wkt())


def source_crs_from_name(text: str) -> SourceCRS:
    """``wgs84``/``cgcs2000``/``gcj02``/``bd09``, ``EPSG:n``, a URN or anything pyproj reads."""
    try:
        name = crs.normalize(text)
    except crs.CRSInputError:
        try:
            return source_crs_from_pyproj(CRS.from_user_input(text))
        except CRSError as exc:
            raise crs.CRSInputError(
                _("未知的坐标系：%(crs)s（可用 wgs84、cgcs2000、gcj02、bd09 或 EPSG:代码）")
                % {"crs": text}
            ) from exc
    return SourceCRS(label=name, name=name)


def _pick_source(options: ReadOptions, declared: SourceCRS | None, notes: list[str]) -> SourceCRS:
    if options.crs:
        asked = source_crs_from_name(options.crs)
        if declared is not None and declared.label != asked.label:
            notes.append(
                _("文件声明的坐标系为 %(file)s，按指定的 %(asked)s 读取")
                % {"file": declared.label, "asked": asked.label}
            )
        return asked
    return declared or STORAGE_SOURCE


# -- reading ---------------------------------------------------------------------


@dataclass
class ReadResult:
    """What a file holds: the grids it describes, and what is wrong with its features."""

    items: list[GridInput] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    source: SourceCRS = STORAGE_SOURCE
    #: Remarks that are not problems (an encoding guessed, a CRS overridden).
    notes: list[str] = field(default_factory=list)
    #: Number of features read.
    count: int = 0

    def check(self, *, replace_existing: bool = False) -> list[Problem]:
        """Every problem of the batch: reading problems and validation problems.

        A feature that could not be read is not also reported for what follows
        from that (e.g. a missing polygon after an unreadable one).
        """
        flagged = {p.index for p in self.problems}
        report = validate(self.items, replace_existing=replace_existing)
        found = self.problems + [p for p in report.problems if p.index not in flagged]
        return sorted(found, key=lambda p: -1 if p.index is None else p.index)


def _text(value: Any) -> str:
    """A property value as text: codes may come as numbers from a DBF."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip()


def _integer(value: Any) -> int | None:
    """An integer from a number or numeric text; ``None`` when absent; ValueError when not."""
    text = _text(value)
    if not text:
        return None
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


def _kind(value: Any) -> str | None:
    """A ``Kind`` value from its value or its Chinese label; ValueError when neither."""
    text = _text(value)
    if not text:
        return None
    if text in Kind.values:
        return text
    for kind in Kind:
        if text == str(kind.label):
            return kind.value
    raise ValueError(text)


def _feature(
    index: int,
    properties: Mapping[str, Any] | None,
    geometry: Any,
    source: SourceCRS,
    options: ReadOptions,
    result: ReadResult,
) -> None:
    """Turn one feature into a ``GridInput`` in ``result``, or problems, or both."""
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    problems: list[str] = []

    code = _text(props.get(options.code_field))
    if not code:
        problems.append(_("缺少编码（字段 %(field)s）") % {"field": options.code_field})
    name = _text(props.get(options.name_field))
    if not name:
        problems.append(_("缺少名称（字段 %(field)s）") % {"field": options.name_field})

    level = options.level
    if level is None:
        raw_level = props.get(LEVEL_FIELD)
        try:
            level = _integer(raw_level)
        except ValueError:
            problems.append(_("层级“%(value)s”不是整数") % {"value": _text(raw_level)})
        else:
            if level is None:
                problems.append(
                    _("缺少层级：用 --level 指定，或在字段 %(field)s 中给出")
                    % {"field": LEVEL_FIELD}
                )

    if options.parent_code is not None:
        parent_code: str | None = options.parent_code or None
    else:
        parent_code = _text(props.get(options.parent_field or DEFAULT_PARENT_FIELD)) or None

    kind: str | None = None
    try:
        kind = _kind(props.get(KIND_FIELD))
    except ValueError:
        problems.append(
            _("类型“%(value)s”无效：可为 %(allowed)s")
            % {
                "value": _text(props.get(KIND_FIELD)),
                "allowed": "、".join(f"{k.value}（{k.label}）" for k in Kind),
            }
        )

    households: int | None = None
    raw_households = _text(props.get(HOUSEHOLDS_FIELD))
    if raw_households:
        try:
            households = _integer(raw_households)
        except ValueError:
            households = None
        if households is None or households < 0:
            problems.append(_("户数“%(value)s”不是非负整数") % {"value": raw_households})
            households = None

    geom: shapely.Geometry | None = None
    if geometry is not None:
        try:
            geom = shapely.geometry.shape(geometry)
        except Exception as exc:  # any malformed geometry is the feature's problem
            problems.append(_("边界无法解析：%(reason)s") % {"reason": _exc_text(exc)})
        else:
            try:
                geom = source.to_storage(shapely.force_2d(geom))
            except Exception as exc:  # a conversion failure too
                problems.append(
                    _("边界无法从 %(crs)s 转换：%(reason)s")
                    % {"crs": source.label, "reason": _exc_text(exc)}
                )
                geom = None

    for message in problems:
        result.problems.append(Problem(index, code, message))
    if code:
        result.items.append(
            GridInput(
                code=code,
                name=name,
                level=level if level is not None else -1,
                geometry=geom,
                parent_code=parent_code,
                kind=kind,
                households=households,
                index=index,
            )
        )


def _exc_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _missing_fields_note(
    fields_present: set[str], options: ReadOptions, count: int, result: ReadResult
) -> None:
    """One file-level problem per asked-for property that no feature has, listing those it has."""
    if not count:
        return
    wanted = [options.code_field, options.name_field]
    if options.level is None:
        wanted.append(LEVEL_FIELD)
    if options.parent_field:
        wanted.append(options.parent_field)
    available = "、".join(sorted(fields_present)) or _("（无）")
    for name in wanted:
        if name not in fields_present:
            result.problems.append(
                Problem(
                    None,
                    "",
                    _("没有任何要素有字段 %(field)s；文件中的字段有：%(available)s")
                    % {"field": name, "available": available},
                )
            )


def read_geojson(data: bytes | str | Mapping[str, Any], options: ReadOptions) -> ReadResult:
    """A GeoJSON FeatureCollection (or a single Feature), with an optional ``crs`` member."""
    if isinstance(data, Mapping):
        doc: Any = data
    else:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ImportFormatError(_("不是有效的 GeoJSON：%(reason)s") % {"reason": exc}) from exc
    if not isinstance(doc, Mapping):
        raise ImportFormatError(_("不是有效的 GeoJSON：顶层须为对象"))
    if doc.get("type") == "Feature":
        features: Any = [doc]
    elif doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ImportFormatError(_("FeatureCollection 缺少 features 数组"))
    else:
        raise ImportFormatError(
            _("GeoJSON 顶层类型须为 FeatureCollection，实为 %(type)s") % {"type": doc.get("type")}
        )

    result = ReadResult()
    result.source = _pick_source(options, _declared_geojson_crs(doc.get("crs")), result.notes)
    fields_present: set[str] = set()
    for index, feature in enumerate(features, start=1):
        result.count += 1
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            result.problems.append(Problem(index, "", _("不是 GeoJSON 要素（Feature）")))
            continue
        props = feature.get("properties")
        if isinstance(props, Mapping):
            fields_present.update(props)
        _feature(index, props, feature.get("geometry"), result.source, options, result)
    _missing_fields_note(fields_present, options, result.count, result)
    return result


def _declared_geojson_crs(member: Any) -> SourceCRS | None:
    """The old-style (2008) GeoJSON ``crs`` member: ``{"type": "name", "properties": {"name": …}}``."""
    if member is None:
        return None
    name: Any = None
    if isinstance(member, str):
        name = member
    elif isinstance(member, Mapping) and member.get("type") == "name":
        props = member.get("properties")
        name = props.get("name") if isinstance(props, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        raise ImportFormatError(
            _("不支持的 crs 声明：%(crs)s") % {"crs": json.dumps(member, ensure_ascii=False)}
        )
    try:
        return source_crs_from_name(name.strip())
    except crs.CRSInputError as exc:
        raise ImportFormatError(str(exc)) from exc


@dataclass
class ShapefileParts:
    """The files of one Shapefile, in memory."""

    shp: bytes
    dbf: bytes
    shx: bytes | None = None
    prj: str | None = None
    cpg: str | None = None
    name: str = ""


def shapefile_parts_from_zip(data: bytes) -> ShapefileParts:
    """The one Shapefile in a zip archive (in any folder of it)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ImportFormatError(_("不是有效的 zip 压缩包：%(reason)s") % {"reason": exc}) from exc
    with archive:
        names = [
            n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")
        ]
        shps = [n for n in names if n.lower().endswith(".shp")]
        if not shps:
            raise ImportFormatError(_("压缩包中没有 .shp 文件"))
        if len(shps) > 1:
            raise ImportFormatError(
                _("压缩包中有多个 .shp 文件（%(names)s），请每次导入一个")
                % {"names": "、".join(shps)}
            )
        stem = shps[0][: -len(".shp")].lower()
        by_ext = {
            PurePosixPath(n).suffix.lower(): n
            for n in names
            if n[: -len(PurePosixPath(n).suffix)].lower() == stem
        }

        def read(ext: str) -> bytes | None:
            member = by_ext.get(ext)
            return archive.read(member) if member else None

        dbf = read(".dbf")
        if dbf is None:
            raise ImportFormatError(_("压缩包中缺少 %(name)s 的属性文件 .dbf") % {"name": shps[0]})
        prj = read(".prj")
        cpg = read(".cpg")
        return ShapefileParts(
            shp=archive.read(shps[0]),
            dbf=dbf,
            shx=read(".shx"),
            prj=prj.decode("utf-8", errors="replace") if prj else None,
            cpg=cpg.decode("ascii", errors="replace") if cpg else None,
            name=shps[0],
        )


def shapefile_parts_from_path(path: Path) -> ShapefileParts:
    """A ``.shp`` on disk and the files beside it with the same name."""

    def sibling(ext: str) -> Path | None:
        for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
            if candidate.exists():
                return candidate
        return None

    dbf = sibling(".dbf")
    if dbf is None:
        raise ImportFormatError(_("找不到 %(name)s 的属性文件 .dbf") % {"name": path.name})
    shx, prj, cpg = sibling(".shx"), sibling(".prj"), sibling(".cpg")
    return ShapefileParts(
        shp=path.read_bytes(),
        dbf=dbf.read_bytes(),
        shx=shx.read_bytes() if shx else None,
        prj=prj.read_text(encoding="utf-8", errors="replace") if prj else None,
        cpg=cpg.read_text(encoding="ascii", errors="replace") if cpg else None,
        name=path.name,
    )


def _cpg_encoding(cpg: str | None) -> str | None:
    if not cpg or not cpg.strip():
        return None
    value = cpg.strip()
    # ESRI writes code pages as bare numbers: 936 is GBK, 65001 is UTF-8.
    if value.isdigit():
        value = "utf-8" if value == "65001" else f"cp{value}"
    try:
        "".encode(value)
    except LookupError:
        return None
    return value


def _shapefile_records(
    parts: ShapefileParts, encoding: str
) -> tuple[list[str], list[tuple[dict[str, Any] | None, Any]]]:
    reader = shapefile.Reader(
        shp=io.BytesIO(parts.shp),
        shx=io.BytesIO(parts.shx) if parts.shx is not None else None,
        dbf=io.BytesIO(parts.dbf),
        encoding=encoding,
    )
    with reader:
        field_names = [f[0] for f in reader.fields[1:]]
        records: list[tuple[dict[str, Any] | None, Any]] = []
        for shape_record in reader.iterShapeRecords():
            shape = shape_record.shape
            geometry = (
                None
                if shape is None or shape.shapeType == shapefile.NULL
                else shape.__geo_interface__
            )
            records.append((shape_record.record.as_dict(), geometry))
    return field_names, records


def read_shapefile(parts: ShapefileParts, options: ReadOptions) -> ReadResult:
    """A Shapefile's features; its ``.prj`` gives the source CRS unless one is asked for."""
    result = ReadResult()
    declared: SourceCRS | None = None
    if parts.prj and parts.prj.strip():
        try:
            declared = source_crs_from_pyproj(CRS.from_wkt(parts.prj))
        except CRSError as exc:
            if not options.crs:
                raise ImportFormatError(
                    _(".prj 中的坐标系无法识别（可用 --crs 指定）：%(reason)s") % {"reason": exc}
                ) from exc
    result.source = _pick_source(options, declared, result.notes)

    encoding = options.encoding or _cpg_encoding(parts.cpg)
    try:
        if encoding:
            field_names, records = _shapefile_records(parts, encoding)
        else:
            try:
                field_names, records = _shapefile_records(parts, "utf-8")
            except (UnicodeDecodeError, shapefile.ShapefileException) as not_utf8:
                # Shapefiles made on Chinese Windows are GBK without saying so.
                try:
                    field_names, records = _shapefile_records(parts, "gbk")
                except (UnicodeDecodeError, shapefile.ShapefileException):
                    raise not_utf8 from None
                result.notes.append(_("属性不是 UTF-8 编码，已按 GBK 读取（可用 --encoding 指定）"))
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            _("属性无法按 %(encoding)s 解码：%(reason)s") % {"encoding": encoding, "reason": exc}
        ) from exc
    except (shapefile.ShapefileException, struct.error, ValueError, EOFError) as exc:
        raise ImportFormatError(
            _("Shapefile %(name)s 无法读取：%(reason)s") % {"name": parts.name, "reason": exc}
        ) from exc

    for index, (props, geometry) in enumerate(records, start=1):
        result.count += 1
        _feature(index, props, geometry, result.source, options, result)
    _missing_fields_note(set(field_names), options, result.count, result)
    return result


def read_shapefile_zip(data: bytes, options: ReadOptions) -> ReadResult:
    return read_shapefile(shapefile_parts_from_zip(data), options)


def read_path(path: str | Path, options: ReadOptions) -> ReadResult:
    """Read a file by what it is: a zip (Shapefile), a ``.shp``, else GeoJSON; ``-`` is stdin."""
    if str(path) == "-":
        return read_geojson(sys.stdin.buffer.read(), options)
    path = Path(path)
    if path.suffix.lower() == ".shp":
        return read_shapefile(shapefile_parts_from_path(path), options)
    data = path.read_bytes()
    if data[:4] == b"PK\x03\x04" or path.suffix.lower() == ".zip":
        return read_shapefile_zip(data, options)
    return read_geojson(data, options)


# -- writing ----------------------------------------------------------------------


def grids_for_export(
    *, root: Grid | None = None, level: int | None = None, active_only: bool = False
) -> GridQuerySet:
    """The grids of ``root``'s subtree (all, without one), by level and then code."""
    qs = Grid.objects.all() if root is None else Grid.objects.in_subtree(root)
    if level is not None:
        qs = qs.at_level(level)
    if active_only:
        qs = qs.active()
    return qs.annotate(parent_code=F("parent__code")).order_by("level", "code")


def feature_of(grid: Grid) -> dict[str, Any]:
    """A grid as a GeoJSON Feature (RFC 7946: lon/lat, exterior rings counter-clockwise).

    The properties are the ones ``read_geojson`` reads back without options.
    """
    geometry = shapely.orient_polygons(grid.geometry, exterior_cw=False)
    parent_code = getattr(grid, "parent_code", None)
    if parent_code is None and grid.parent_id is not None:
        parent_code = grid.parent.code if grid.parent else None
    return {
        "type": "Feature",
        "id": grid.code,
        "geometry": shapely.geometry.mapping(geometry),
        "properties": {
            DEFAULT_CODE_FIELD: grid.code,
            DEFAULT_NAME_FIELD: grid.name,
            LEVEL_FIELD: grid.level,
            KIND_FIELD: grid.kind,
            DEFAULT_PARENT_FIELD: parent_code,
            HOUSEHOLDS_FIELD: grid.households,
            "area_m2": grid.area_m2,
            "centroid": [grid.centroid_lon, grid.centroid_lat],
            "is_active": grid.is_active,
        },
    }


class TextSink(Protocol):
    def write(self, text: str, /) -> Any: ...


def write_geojson(grids: Iterable[Grid], stream: TextSink) -> int:
    """Write ``grids`` as a FeatureCollection, one feature a line; returns how many."""
    count = 0
    stream.write('{"type": "FeatureCollection", "features": [')
    for grid in grids:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps(feature_of(grid), ensure_ascii=False))
        count += 1
    stream.write("\n]}\n")
    return count


def iter_export(qs: GridQuerySet) -> Iterator[Grid]:
    """``qs`` a chunk at a time, so a city's tree is not all in memory at once."""
    yield from qs.iterator(chunk_size=500)


def to_geojson(grids: Iterable[Grid]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [feature_of(g) for g in grids]}
