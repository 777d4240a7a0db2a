"""The `recipe demo` command end to end on a few edits (the full demo is `make demo`)."""

from __future__ import annotations

from typer.testing import CliRunner

from langchain_recipe.cli import app


def test_demo_runs_and_reuses_the_store(tmp_path):
    edits = tmp_path / "edits.jsonl"
    from langchain_recipe.datasets import DEMO_EDITS

    edits.write_text("".join(DEMO_EDITS.read_text().splitlines(keepends=True)[:4]))
    arguments = ["demo", "--store-path", str(tmp_path / "store"), "--edits-file", str(edits), "--show", "2", "--max-tokens", "4"]
    runner = CliRunner()
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "Applied 4 edits" in first.output
    for figure in ("reliability", "generality", "locality", "ms per edit", "Answer latency"):
        assert figure in first.output
    second = runner.invoke(app, arguments)
    assert second.exit_code == 0, second.output
    assert "already in the store: reusing them" in second.output
