"""The `recipe demo` command end to end on a few facts (the full demo is `make demo`)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from langchain_recipe.cli import app


def test_demo_prints_a_block_per_fact_ends_with_answer_accuracy_and_reuses_the_store(tmp_path):
    arguments = ["demo", "--store-path", str(tmp_path / "store"), "--facts", "4", "--show", "2", "--max-tokens", "8"]
    runner = CliRunner()
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "Added 4 facts one at a time" in first.output
    assert first.output.count("  Paraphrase: ") == 2
    assert "Answer accuracy" in first.output.split("Paraphrase")[-1]  # the headline comes last
    for line in ("RECIPE (continuous)", "statement as text", "bare LM"):
        assert line in first.output
    # Readable in 80 columns (progress bars redraw their line with carriage returns; colour codes take no column).
    plain = re.sub(r"\x1b\[[0-9;]*m", "", first.output).replace("\r", "\n")
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert "EditConflictWarning" not in first.output
    second = runner.invoke(app, arguments)
    assert second.exit_code == 0, second.output
    assert "already in the store: reusing them" in second.output
