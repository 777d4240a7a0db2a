"""Tests of the chat-answer evaluation (what users see) on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.evaluation.chat_answers import (
    CHAT_METHODS,
    evaluate_chat_answers,
    render_chat_markdown,
    states_fact,
)
from langchain_recipe.nn import RecipeModel


@pytest.mark.parametrize(
    ("answer", "target", "expected"),
    [
        ("The CEO of Acme is Ada Lovelace.", "Ada Lovelace", True),
        ("the ceo is ADA LOVELACE", " Ada Lovelace ", True),
        ("The CEO of Acme is Ada.", "Ada Lovelace", False),
        ("Maria K. Maria K.", "Kowalczyk", False),
    ],
)
def test_states_fact_is_a_case_insensitive_containment(answer: str, target: str, expected: bool) -> None:
    assert states_fact(answer, target) is expected


def test_states_fact_refuses_an_empty_target() -> None:
    with pytest.raises(InvalidInputError, match="target is empty"):
        states_fact("anything", "  ")


def test_scores_are_recomputed_from_the_recorded_answers(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    report = evaluate_chat_answers(recipe_model, base_model, edit_records, dataset="tiny", max_tokens=4, batch_size=3)
    size = len(edit_records)
    assert [s.method for s in report.scores] == list(CHAT_METHODS)
    assert report.score("bare").unrelated_unchanged == 1.0
    for scores in report.scores:
        said = [row[scores.method] for row in report.answers]
        assert (
            scores.answer_accuracy
            == sum(states_fact(a[0], r.target) for a, r in zip(said, edit_records, strict=True)) / size
        )
        assert (
            scores.paraphrase_accuracy
            == sum(states_fact(a[1], r.target) for a, r in zip(said, edit_records, strict=True)) / size
        )
        bare = [row["bare"] for row in report.answers]
        assert scores.unrelated_unchanged == sum(a[2] == b[2] for a, b in zip(said, bare, strict=True)) / size
    markdown = render_chat_markdown(report, command="recipe eval --chat")
    assert "| continuous_prompt |" in markdown
    assert "recipe eval --chat" in markdown


def test_a_question_no_edit_passes_is_answered_by_the_bare_lm(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    monkeypatch.setattr(RecipeKnowledgeStore, "retrieve_prompts", lambda self, queries: [None] * len(queries))
    report = evaluate_chat_answers(recipe_model, base_model, edit_records, max_tokens=3)
    for row in report.answers:
        assert row["continuous_prompt"] == row["text"] == row["bare"]
    assert report.score("text").unrelated_injected == 0.0
    assert report.score("continuous_prompt").own_edit_injected == 0.0
    assert report.score("continuous_prompt").answer_accuracy_own_edit is None


def test_bad_arguments_are_refused(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord]
) -> None:
    with pytest.raises(InvalidInputError, match="unknown methods"):
        evaluate_chat_answers(recipe_model, base_model, edit_records, methods=["bare", "memit"])
    with pytest.raises(InvalidInputError, match="needs records"):
        evaluate_chat_answers(recipe_model, base_model, [])


def test_cli_eval_chat_writes_the_three_generation_metrics(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    edit_records: list[EditRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from langchain_recipe import base_models, cli
    from langchain_recipe.nn import RecipeModel as RecipeModelClass

    edits = tmp_path / "edits.jsonl"
    edits.write_text(
        "".join(
            json.dumps(
                {
                    "statement": f"{r.subject} fact: {r.target}.",
                    "prompt": r.prompt,
                    "target": r.target,
                    "rephrase": r.rephrase,
                    "locality_prompt": r.locality_prompt,
                    "locality_answer": r.locality_answer,
                }
            )
            + "\n"
            for r in edit_records
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(base_models, "load_base_model", lambda *args, **kwargs: base_model)
    monkeypatch.setattr(RecipeModelClass, "from_pretrained", classmethod(lambda cls, *args, **kwargs: recipe_model))
    output = tmp_path / "out"
    result = CliRunner().invoke(
        cli.app,
        [
            "eval",
            "--dataset",
            str(edits),
            "--chat",
            "--no-teacher-forced",
            "--max-tokens",
            "3",
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((output / "chat_answers.json").read_text(encoding="utf-8"))
    assert data["num_edits"] == len(edit_records)
    assert data["answers"][0]["statement"].endswith(".")  # the record's own declarative statement was stored
    for scores in data["scores"]:
        for metric in ("answer_accuracy", "paraphrase_accuracy", "unrelated_unchanged"):
            assert 0.0 <= scores[metric] <= 1.0
    assert (output / "chat_answers.md").read_text(encoding="utf-8").count("| bare |") == 1
