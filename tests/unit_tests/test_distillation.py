"""Tests of the chat-answer distillation term (langchain_recipe.training.distillation) on tiny models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.config import TrainingConfig
from langchain_recipe.datasets import EditRecord
from langchain_recipe.injection import IGNORE_INDEX
from langchain_recipe.nn import RecipeModel
from langchain_recipe.training import RecipeTrainer
from langchain_recipe.training.distillation import (
    TeacherAnswer,
    answer_distillation_loss,
    build_answer_batch,
    load_teacher_answers,
    teacher_answers,
)

ANSWERS = [
    TeacherAnswer(
        "The CEO of Acme is Ada Lovelace.",
        "Who is the CEO of Acme?",
        "The CEO of Acme is Ada Lovelace.",
        "Ada Lovelace",
    ),
    TeacherAnswer("The Zephyr Tower is in Lisbon.", "Where is the Zephyr Tower?", "It is in Lisbon.", "Lisbon"),
    TeacherAnswer(
        "Oskar Brandt speaks Portuguese.", "What language does Oskar Brandt speak?", "Portuguese, mostly.", "Portuguese"
    ),
]


def test_answer_batch_labels_only_the_answer_and_weights_the_target(tokenizer: Any) -> None:
    batch = build_answer_batch(tokenizer, ANSWERS, target_weight=10.0)

    def plain(text: str) -> str:  # the tiny WordPiece tokenizer lower-cases and spaces punctuation
        return text.lower().replace(" ", "")

    for row, item in enumerate(ANSWERS):
        labelled = batch.labels[row] != IGNORE_INDEX
        text = tokenizer.decode(batch.labels[row][labelled])
        assert plain(text).startswith(plain(item.answer))  # the answer (and the end of turn), never the question
        heavy = batch.weights[row] == 10.0
        assert plain(tokenizer.decode(batch.labels[row][heavy])) == plain(item.target)
        assert bool((batch.weights[row][~labelled] == 0).all())
        header = tokenizer.apply_chat_template(
            [{"role": "user", "content": item.question}], add_generation_prompt=True, tokenize=False
        )
        assert 0 < int(batch.prompt_offsets[row]) < len(tokenizer(header, add_special_tokens=False)["input_ids"])


def test_one_step_of_the_distillation_loss_lowers_it_on_a_fixed_batch(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    batch = build_answer_batch(base_model.tokenizer, ANSWERS)
    statements = [item.statement for item in ANSWERS]
    optimizer = torch.optim.Adam(recipe_model.prompt_encoder.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        _, prompts = recipe_model.encode_edits(statements, base_model)
        return answer_distillation_loss(base_model, batch, prompts)

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after < before


def test_the_trainer_step_with_distillation_lowers_the_shipped_objective(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    config = TrainingConfig(
        batch_size=4,
        warmup_steps=0,
        learning_rate=1e-3,
        chat_format_probability=0.0,
        answer_distillation_weight=1.0,
        answer_batch_size=3,
        train_retrieval=False,
        seed=0,
    )
    trainer = RecipeTrainer(recipe_model, base_model, config, {"zsre": edit_records}, tmp_path, teacher_answers=ANSWERS)
    assert {g["name"] for g in trainer.optimizer.param_groups} == {"prompt_encoder"}  # retrieval stays as it was

    def objective() -> float:
        trainer.rng = random.Random(0)
        with torch.no_grad():
            return float(trainer.weighted_total(trainer.compute_losses(edit_records)))

    before = objective()
    trainer.rng = random.Random(0)
    result = trainer.train_step(edit_records)
    assert "answer" in result.terms
    assert objective() < before


def test_distillation_needs_teacher_answers(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path
) -> None:
    config = TrainingConfig(answer_distillation_weight=1.0)
    with pytest.raises(ValueError, match="needs teacher answers"):
        RecipeTrainer(recipe_model, base_model, config, {"zsre": edit_records}, tmp_path)


def test_teacher_answers_keep_those_that_state_the_target_and_are_cached(
    base_model: HuggingFaceBaseModel, edit_records: list[EditRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.messages import AIMessage

    from langchain_recipe.chat_models import RecipeChatModel

    def fake(self: Any, conversations: list, **kwargs: Any) -> list[AIMessage]:
        # The teacher reads the statement before the question; answer with the target half the time.
        return [
            AIMessage(m[0].content.split("\n")[0] if i % 2 == 0 else "I do not know.")
            for i, m in enumerate(conversations)
        ]

    monkeypatch.setattr(RecipeChatModel, "generate_batch", fake)
    cache = tmp_path / "answers.jsonl"
    kept = teacher_answers(base_model, edit_records, batch_size=2, cache=cache)
    assert kept and all(item.target.lower() in item.answer.lower() for item in kept)
    assert {item.question for item in kept} <= {r.prompt for r in edit_records} | {r.rephrase for r in edit_records}
    assert load_teacher_answers(cache) == kept
    monkeypatch.setattr(RecipeChatModel, "generate_batch", lambda *a, **k: pytest.fail("the cache was not used"))
    assert teacher_answers(base_model, edit_records, cache=cache) == kept
