"""The English catalogue is complete, compiled, and keeps every placeholder.

Regenerate it with ``make messages`` after changing user-facing strings, fill in
the new ``msgstr`` entries, and compile again (the same target).
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "en" / "LC_MESSAGES"
PERCENT = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]")
BRACES = re.compile(r"\{\w*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgstr: str = ""
    flags: set[str] = field(default_factory=set)
    line: int = 0


def _entries(path: Path) -> list[Entry]:
    """The messages of a .po file (singular messages only; the catalogue has no plurals)."""
    entries: list[Entry] = []
    entry = Entry()
    target = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("msgid "):
            entry.line = number
            target = "msgid"
            entry.msgid = ast.literal_eval(line[len("msgid ") :])
        elif line.startswith("msgstr "):
            target = "msgstr"
            entry.msgstr = ast.literal_eval(line[len("msgstr ") :])
        elif line.startswith('"'):
            setattr(entry, target, getattr(entry, target) + ast.literal_eval(line))
        elif not line and entry.line:
            entries.append(entry)
            entry = Entry()
    if entry.line:
        entries.append(entry)
    return [e for e in entries if e.msgid]


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return _entries(CATALOGUE / "django.po")


def test_every_message_has_an_english_translation(entries: list[Entry]) -> None:
    assert len(entries) > 100
    missing = [f"line {e.line}: {e.msgid}" for e in entries if not e.msgstr.strip()]
    fuzzy = [f"line {e.line}: {e.msgid}" for e in entries if "fuzzy" in e.flags]
    assert missing == []
    assert fuzzy == []


def test_translations_keep_the_placeholders(entries: list[Entry]) -> None:
    wrong = [
        f"line {e.line}: {e.msgid}"
        for e in entries
        if sorted(PERCENT.findall(e.msgid)) != sorted(PERCENT.findall(e.msgstr))
        or sorted(BRACES.findall(e.msgid)) != sorted(BRACES.findall(e.msgstr))
    ]
    assert wrong == []


def test_the_compiled_catalogue_matches_the_source(entries: list[Entry]) -> None:
    with (CATALOGUE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [f"line {e.line}: {e.msgid}" for e in entries if compiled.gettext(e.msgid) != e.msgstr]
    assert stale == [], "run `make messages` (compilemessages) again"
