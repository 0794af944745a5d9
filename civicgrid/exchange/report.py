"""The error report of an import: every refused row, beside the input file.

``工单.csv`` gets ``工单.errors.csv`` (UTF-8 with a byte-order mark, so that Excel
shows the Chinese right), ``工单.xlsx`` gets ``工单.errors.xlsx`` (bold frozen header).
Each refused row is one line: its row number in the input, the column(s) at fault,
the reason(s), then the row's own cells under the input's headers, so the report can
be corrected and imported again with the same mapping. A run that refuses nothing
removes a report left by an earlier run.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from civicgrid.exchange.reader import is_xlsx
from civicgrid.exchange.rows import text

if TYPE_CHECKING:
    from civicgrid.exchange.importer import Refused


def report_path(source: Path) -> Path:
    suffix = ".xlsx" if is_xlsx(source) else ".csv"
    return source.with_name(f"{source.stem}.errors{suffix}")


def report_headers() -> list[str]:
    return [_("行号"), _("出错列"), _("原因")]


def report_lines(headers: Sequence[str], refused: Sequence[Refused]) -> list[list[Any]]:
    lines = []
    for row in refused:
        columns = list(dict.fromkeys(p.column for p in row.problems if p.column))
        reasons = [f"{p.column}：{p.reason}" if p.column else p.reason for p in row.problems]
        cells = list(row.cells) + [""] * (len(headers) - len(row.cells))
        lines.append([row.number, "；".join(columns), "；".join(reasons), *cells[: len(headers)]])
    return lines


def write_report(path: Path, headers: Sequence[str], refused: Sequence[Refused]) -> Path | None:
    """Write the report (``None`` and no file when nothing was refused)."""
    if not refused:
        path.unlink(missing_ok=True)
        return None
    lines = report_lines(headers, refused)
    if path.suffix.lower() == ".xlsx":
        _xlsx(path, [*report_headers(), *headers], lines)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*report_headers(), *headers])
            for line in lines:
                writer.writerow([text(v) for v in line])
    return path


def _xlsx(path: Path, headers: list[str], lines: list[list[Any]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _("被拒绝的行")
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="FCE4D6")
    for line in lines:
        sheet.append([v if isinstance(v, int | float | datetime | date) else text(v) for v in line])
    sheet.freeze_panes = "A2"
    sheet.column_dimensions["B"].width = 16
    sheet.column_dimensions["C"].width = 48
    book.save(path)


__all__ = ["report_headers", "report_lines", "report_path", "write_report"]
