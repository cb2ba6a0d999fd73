"""The manual's references to tests name tests that exist (the pages say which test checks each promise)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `tests/x/test_y.py::test_name[param]`, and `::test_other` continuing the last file named
_REFERENCE = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)")


def referenced_tests() -> list[tuple[str, str, str]]:
    """(page, test file, test function) for every test a Markdown page names."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in page.read_text(encoding="utf-8").splitlines():
            current = None
            for match in _REFERENCE.finditer(line):
                current = match[1] or current
                if current:
                    found.append((page.name, current, match[2]))
    return found


def test_every_test_the_manual_names_exists():
    missing = []
    for page, path, name in referenced_tests():
        source = ROOT / path
        if not source.is_file() or not re.search(rf"^\s*(async )?def {name}\(", source.read_text(), re.M):
            missing.append(f"{page}: {path}::{name}")
    assert referenced_tests() and missing == []
