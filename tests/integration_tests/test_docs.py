"""Run every ```python block of README.md and docs/*.md, in order, as users would.

Blocks of one file share a namespace and run in a fresh temporary directory (so ``./recipe_store``
and other files land there). Code that must not run (shell commands, output, pseudo-code) uses
another fence language: ```bash, ```text. Any new page under docs/ is picked up automatically.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown page, with the line number where each starts."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 2, match.group(1)) for match in BLOCK.finditer(text)]


def test_the_block_finder(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n```python\nx = 1\n```\n```bash\nmake demo\n```\n```python\ny = x + 1\n```\n")
    assert python_blocks(page) == [(3, "x = 1\n"), (9, "y = x + 1\n")]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    try:
        for line, source in python_blocks(page):
            code = compile(source, f"{page.relative_to(ROOT)}:{line}", "exec")
            exec(code, namespace)
    finally:
        from langchain_recipe import RecipeKnowledgeStore

        for value in namespace.values():  # release on-disk stores left open by the page
            if isinstance(value, RecipeKnowledgeStore):
                value.close()
