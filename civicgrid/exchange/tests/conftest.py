"""Exports of a 12345 platform as the tests make them: XLSX by openpyxl, CSV in GB18030."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from civicgrid.exchange.mapping import DEFAULT_MAPPING

HEADERS = [
    "工单编号",
    "受理时间",
    "诉求类型",
    "诉求内容",
    "问题分类",
    "事发地址",
    "经度",
    "纬度",
    "来电人",
    "联系电话",
    "承办单位",
    "派单时间",
    "办结时间",
    "工单状态",
    "答复内容",
    "满意度",
]

Rows = Sequence[dict[str, Any]]


def cells(row: dict[str, Any], headers: Sequence[str] = HEADERS) -> list[Any]:
    return [row.get(h, "") for h in headers]


def write_xlsx(path: Path, rows: Rows, headers: Sequence[str] = HEADERS) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "工单明细"
    sheet.append(list(headers))
    for row in rows:
        sheet.append(cells(row, headers))
    book.save(path)
    return path


def write_csv(
    path: Path, rows: Rows, *, encoding: str = "gb18030", headers: Sequence[str] = HEADERS
) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow(
                [
                    v.strftime("%Y/%m/%d %H:%M") if isinstance(v, datetime) else v
                    for v in cells(row, headers)
                ]
            )
    return path


@pytest.fixture
def wgs84_mapping(tmp_path: Path) -> Path:
    """The shipped mapping, its coordinates in WGS-84 (the test tree's system)."""
    text = DEFAULT_MAPPING.read_text(encoding="utf-8").replace('crs = "gcj02"', 'crs = "wgs84"')
    assert 'crs = "wgs84"' in text
    path = tmp_path / "wgs84.toml"
    path.write_text(text, encoding="utf-8")
    return path


Run = Callable[..., str]


@pytest.fixture
def run() -> Run:
    def call(*args: str) -> str:
        out = StringIO()
        call_command("import-cases", *args, "--no-progress", stdout=out, stderr=StringIO())
        return out.getvalue()

    return call
