"""docs/reliability.md names a test for every bad input, fault and security property: check that
each named test exists (and each named case of a parametrized test), and that the page's counts
are the tables' counts. Offline and fast: it reads source files, it imports nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"
# `tests/.../test_x.py::test_name` with an optional `[case]`, or a bare `[case]` of the last named test.
REFERENCE = re.compile(r"`(?:(tests/[\w/]+\.py)::(\w+))?(?:\[([^\]`\"']+)\])?`")


def _references(text: str) -> list[tuple[str, str, str | None]]:
    """(file, test, case) for every test reference; a bare `[case]` belongs to the test named
    before it on the same line."""
    found: list[tuple[str, str, str | None]] = []
    for line in text.splitlines():
        last: tuple[str, str] | None = None
        for match in REFERENCE.finditer(line):
            path, name, case = match.groups()
            if path:
                last = (path, name)
                found.append((path, name, case))
            elif case and last:
                found.append((*last, case))
    return found


def _bad_input_rows(text: str) -> list[str]:
    section = text.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]


def test_every_test_the_page_names_exists() -> None:
    references = _references(PAGE.read_text(encoding="utf-8"))
    assert len(references) > 60
    for path, name, case in references:
        source = (ROOT / path).read_text(encoding="utf-8")
        functions = {
            node.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        assert name in functions, f"{path} has no test {name} (named in docs/reliability.md)"
        if case is not None:
            assert f'"{case}"' in source, f"{path} has no case {case!r} for {name} (named in docs/reliability.md)"


def test_each_bad_input_row_names_a_test_and_the_count_is_right() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = _bad_input_rows(text)
    assert [int(row.split("|")[1]) for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert _references(row.split("|")[-2]), f"row without a test: {row[:80]}"
    assert f"| bad inputs tried (rows of the first table) | **{len(rows)}** | 0 |" in text
    cases = [reference for row in rows for reference in _references(row.split("|")[-2])]
    assert f"The {len(rows)} rows name **{len(cases)}** tests and cases of parametrized tests." in text
