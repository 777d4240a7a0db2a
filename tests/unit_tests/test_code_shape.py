"""The shape the code keeps: short functions and a knowledge store split by concern.

A function may run past ``MAX_FUNCTION_LINES`` only where a ``# long:`` comment on the line above
its ``def`` (or decorators) says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "langchain_recipe"
MAX_FUNCTION_LINES = 60
MAX_STORE_FILE_LINES = 500


def _long_functions(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = node.end_lineno - node.lineno + 1
        excused = first >= 2 and lines[first - 2].strip().startswith("# long:")
        if length > MAX_FUNCTION_LINES and not excused:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_are_short_or_say_why(path: Path) -> None:
    assert _long_functions(path) == []


def test_knowledge_store_files_stay_small() -> None:
    sizes = {
        p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (PACKAGE / "knowledge_store").glob("*.py")
    }
    assert {name: size for name, size in sizes.items() if size > MAX_STORE_FILE_LINES} == {}
