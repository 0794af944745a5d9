"""Reading an export: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) or XLSX, row by row.

CSV files are streamed; the encoding is found first by decoding the whole file as
UTF-8 in chunks (nothing kept), falling back to GB18030, a superset of GBK and
GB2312, which is what 12345 platforms' Excel-made exports usually are. XLSX files
are read with openpyxl in read-only mode (the first sheet, or the mapping's).
Rows are numbered as a spreadsheet shows them (the header is row 1 by default),
and wholly empty rows are passed over.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from civicgrid.exchange.mapping import Mapping

CHUNK = 1 << 20


class ReadError(Exception):
    """A file that cannot be read at all."""


@dataclass
class Sheet:
    headers: list[str]
    #: (row number, cells), cells as strings or, from XLSX, dates and numbers.
    rows: Iterator[tuple[int, list[Any]]]
    encoding: str
    #: How many data rows there are at most (for the progress line), when known.
    total: int | None = None


def is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in {".xlsx", ".xlsm"}


def open_sheet(path: Path, mapping: Mapping) -> Sheet:
    if not path.exists():
        raise ReadError(_("找不到文件 %(p)s") % {"p": path})
    if is_xlsx(path):
        return _xlsx(path, mapping)
    if path.suffix.lower() not in {".csv", ".txt"}:
        raise ReadError(_("只能导入 .csv 或 .xlsx 文件：%(p)s") % {"p": path})
    return _csv(path, mapping)


def detect_encoding(path: Path) -> tuple[str, int]:
    """The file's encoding (utf-8-sig, utf-8 or gb18030) and its number of lines."""
    with path.open("rb") as handle:
        head = handle.read(3)
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        lines = 0
        utf8 = True
        while chunk := handle.read(CHUNK):
            lines += chunk.count(b"\n")
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
    if head == codecs.BOM_UTF8:
        return "utf-8-sig", lines
    return ("utf-8" if utf8 else "gb18030"), lines


def _csv(path: Path, mapping: Mapping) -> Sheet:
    encoding, lines = detect_encoding(path)
    if mapping.encoding != "auto":
        encoding = mapping.encoding
        if encoding == "utf-8" and path.read_bytes()[:3] == codecs.BOM_UTF8:
            encoding = "utf-8-sig"
    handle = path.open(encoding=encoding, newline="", errors="strict")
    reader = csv.reader(handle, delimiter=mapping.delimiter)
    number = 0
    headers: list[str] | None = None
    try:
        for cells in reader:
            number += 1
            if number == mapping.header_row:
                headers = [h.strip().lstrip("\ufeff") for h in cells]
                break
    except UnicodeDecodeError as exc:
        handle.close()
        raise ReadError(_("文件编码不是 %(e)s：%(x)s") % {"e": encoding, "x": exc}) from exc
    if headers is None:
        handle.close()
        raise ReadError(_("文件没有表头行（第 %(n)d 行）") % {"n": mapping.header_row})

    def rows() -> Iterator[tuple[int, list[Any]]]:
        row_number = number
        try:
            for cells in reader:
                row_number += 1
                if any(c.strip() for c in cells):
                    yield row_number, cells
        except UnicodeDecodeError as exc:
            raise ReadError(
                _("第 %(n)d 行附近的编码不是 %(e)s：%(x)s")
                % {"n": row_number + 1, "e": encoding, "x": exc}
            ) from exc
        finally:
            handle.close()

    return Sheet(headers, rows(), encoding, total=max(lines - number + 1, 0))


def _xlsx(path: Path, mapping: Mapping) -> Sheet:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ReadError(_("无法读取 XLSX 文件 %(p)s：%(e)s") % {"p": path, "e": exc}) from exc
    if mapping.sheet:
        if mapping.sheet not in book.sheetnames:
            book.close()
            raise ReadError(
                _("文件中没有工作表“%(s)s”（有：%(all)s）")
                % {"s": mapping.sheet, "all": "、".join(book.sheetnames)}
            )
        sheet = book[mapping.sheet]
    else:
        sheet = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    headers: list[str] | None = None
    number = 0
    for cells in values:
        number += 1
        if number == mapping.header_row:
            headers = ["" if c is None else str(c).strip() for c in cells]
            break
    if headers is None:
        book.close()
        raise ReadError(_("文件没有表头行（第 %(n)d 行）") % {"n": mapping.header_row})
    total = (sheet.max_row or 0) - number if sheet.max_row else None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        row_number = number
        try:
            for cells in values:
                row_number += 1
                out = [_cell(c) for c in cells]
                if any(c not in ("", None) for c in out):
                    yield row_number, out
        finally:
            book.close()

    return Sheet(headers, rows(), "xlsx", total=total)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time | int | float):
        return value
    return str(value)


__all__ = ["ReadError", "Sheet", "detect_encoding", "is_xlsx", "open_sheet"]
