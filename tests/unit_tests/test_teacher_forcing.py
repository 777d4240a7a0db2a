"""Tests of teacher-forced batches and label logits (langchain_recipe.teacher_forcing)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from langchain_recipe import teacher_forcing
from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.injection import IGNORE_INDEX, prepend_continuous_prompts
from langchain_recipe.teacher_forcing import (
    build_teacher_forced_batch,
    format_question,
    join_question_and_target,
    label_logits,
)

QUESTIONS = [
    "Who is the chief executive of Acme Corporation?",
    "In which city is the Zephyr Tower located?",
    "The mother tongue of Oskar Brandt is ",
]
TARGETS = ["Ada Lovelace", " Lisbon", "Portuguese"]


def _check_rows(
    tokenizer: Any, batch: teacher_forcing.TeacherForcedBatch, questions: list[str], chat: list[bool]
) -> None:
    for i, (question, target, is_chat) in enumerate(zip(questions, TARGETS, chat, strict=False)):
        text, _ = join_question_and_target(format_question(tokenizer, question, chat=is_chat), target, chat=is_chat)
        joint = tokenizer(text, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target.strip(), add_special_tokens=False)["input_ids"]
        labelled = batch.labels[i][batch.labels[i] != IGNORE_INDEX].tolist()
        # Exactly the target's tokens, which are the tail of the joint tokenisation.
        assert labelled == target_ids
        assert labelled == joint[len(joint) - len(target_ids) :]
        assert tokenizer.decode(labelled) == target.strip().lower()  # BERT uncased
        # Labels are the next input token (teacher forcing): labels[t] == input_ids[t + 1].
        positions = (batch.labels[i] != IGNORE_INDEX).nonzero().flatten()
        for t in positions[:-1].tolist():
            assert batch.labels[i, t] == batch.input_ids[i, t + 1]
        # The question's tokens come right before the labelled span, unlabelled.
        real = batch.input_ids[i][batch.attention_mask[i].bool()].tolist()
        start = int(positions[0]) - (batch.input_ids.shape[1] - len(real))  # first label, in row coordinates
        assert (
            real[: start + 1]
            == ([tokenizer.cls_token_id] if not is_chat else []) + joint[: len(joint) - len(target_ids)]
        )


def test_labels_are_exactly_the_target_tokens(tokenizer: Any) -> None:
    batch = build_teacher_forced_batch(tokenizer, QUESTIONS, TARGETS)
    assert batch.input_ids.shape == batch.attention_mask.shape == batch.labels.shape
    assert batch.input_ids.dtype == batch.labels.dtype == torch.long
    _check_rows(tokenizer, batch, QUESTIONS, [False] * 3)


def test_batch_is_left_padded_with_the_tokenizers_mask(tokenizer: Any) -> None:
    batch = build_teacher_forced_batch(tokenizer, QUESTIONS, TARGETS)
    lengths = batch.attention_mask.sum(1)
    width = batch.input_ids.shape[1]
    assert int(lengths.max()) == width
    assert len(set(lengths.tolist())) > 1  # the rows really differ in length
    for i, n in enumerate(lengths.tolist()):
        assert batch.attention_mask[i].tolist() == [0] * (width - n) + [1] * n
        assert batch.input_ids[i, : width - n].eq(tokenizer.pad_token_id).all()
        assert batch.labels[i, : width - n].eq(IGNORE_INDEX).all()
        # The unpadded row is the joint tokenisation minus its last token ([SEP] here).
        text, _ = join_question_and_target(QUESTIONS[i], TARGETS[i], chat=False)
        assert batch.input_ids[i, width - n :].tolist() == tokenizer(text)["input_ids"][:-1]


def test_chat_flag_wraps_questions_in_the_chat_template(tokenizer: Any) -> None:
    batch = build_teacher_forced_batch(tokenizer, QUESTIONS, TARGETS, chat=True)
    _check_rows(tokenizer, batch, QUESTIONS, [True] * 3)
    plain = build_teacher_forced_batch(tokenizer, QUESTIONS, TARGETS, chat=False)
    assert batch.input_ids.shape[1] > plain.input_ids.shape[1]
    for i in range(3):
        real = batch.input_ids[i][batch.attention_mask[i].bool()]
        text = tokenizer.decode(real)
        assert text.startswith("user :")  # chat text gets no [CLS]: the template owns special tokens
        assert "assistant :" in text
    # Labels are the same target tokens whatever the format.
    assert [row[row != IGNORE_INDEX].tolist() for row in batch.labels] == [
        row[row != IGNORE_INDEX].tolist() for row in plain.labels
    ]


def test_chat_flag_per_row(tokenizer: Any) -> None:
    flags = [True, False, True]
    batch = build_teacher_forced_batch(tokenizer, QUESTIONS, TARGETS, chat=flags)
    _check_rows(tokenizer, batch, QUESTIONS, flags)
    decoded = [tokenizer.decode(batch.input_ids[i][batch.attention_mask[i].bool()]) for i in range(3)]
    assert decoded[0].startswith("user :")
    assert decoded[1].startswith(tokenizer.cls_token)
    assert decoded[2].startswith("user :")


def test_format_question(tokenizer: Any) -> None:
    assert format_question(tokenizer, "Why?") == "Why?"
    assert format_question(tokenizer, "Why?", chat=True) == "user: Why?\nassistant:"


def test_join_question_and_target() -> None:
    assert join_question_and_target("Q?", " A ", chat=False) == ("Q? A", 2)
    assert join_question_and_target("Q is ", "A", chat=False) == ("Q is A", 5)
    assert join_question_and_target("user: Q\nassistant:", "A", chat=True) == ("user: Q\nassistant:A", 18)


def test_bad_inputs_raise(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="2 questions but 1 targets"):
        build_teacher_forced_batch(tokenizer, ["a?", "b?"], ["x"])
    with pytest.raises(ValueError, match="Empty target"):
        build_teacher_forced_batch(tokenizer, ["a?"], ["   "])


# ---------------------------------------------------------------------- label_logits
def test_label_logits_returns_one_row_per_label(base_model: HuggingFaceBaseModel) -> None:
    batch = build_teacher_forced_batch(base_model.tokenizer, QUESTIONS, TARGETS)
    selected = batch.labels != IGNORE_INDEX
    with torch.no_grad():
        logits, labels, rows = label_logits(base_model, batch)
        full = base_model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    num_labels = int(selected.sum())
    assert logits.shape == (num_labels, len(base_model.tokenizer))
    assert logits.dtype == torch.float32
    assert torch.equal(labels, batch.labels[selected])
    assert rows.tolist() == [i for i in range(3) for _ in range(int(selected[i].sum()))]
    assert torch.allclose(logits, full[selected], atol=1e-5)


def test_label_logits_with_prompts_matches_the_full_forward(
    base_model: HuggingFaceBaseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = build_teacher_forced_batch(base_model.tokenizer, QUESTIONS, TARGETS)
    prompts = [torch.randn(3, 32), None, torch.randn(2, 32)]
    with torch.no_grad():
        logits, labels, rows = label_logits(base_model, batch, prompts)
        prefixed = prepend_continuous_prompts(
            base_model.embed(batch.input_ids), batch.attention_mask, prompts, labels=batch.labels
        )
        full = base_model.model(
            inputs_embeds=prefixed.inputs_embeds,
            attention_mask=prefixed.attention_mask,
            position_ids=prefixed.position_ids,
        ).logits
        # The generic path (models whose logits are not just lm_head(hidden)) agrees too.
        monkeypatch.setattr(teacher_forcing, "_can_project_selected", lambda model: False)
        generic_logits, generic_labels, generic_rows = label_logits(base_model, batch, prompts)
    selected = prefixed.labels != IGNORE_INDEX
    assert logits.shape[0] == labels.shape[0] == rows.shape[0] == int((batch.labels != IGNORE_INDEX).sum())
    assert torch.allclose(logits, full[selected], atol=1e-5)
    assert torch.equal(labels, batch.labels[batch.labels != IGNORE_INDEX])
    assert torch.allclose(generic_logits, logits, atol=1e-5)
    assert torch.equal(generic_labels, labels)
    assert torch.equal(generic_rows, rows)
    # A prompt changes the logits of its row only.
    with torch.no_grad():
        bare, _, _ = label_logits(base_model, batch)
    assert torch.allclose(bare[rows == 1], logits[rows == 1], atol=1e-5)
    assert not torch.allclose(bare[rows == 0], logits[rows == 0], atol=1e-3)


def test_label_logits_gradients_reach_the_prompt_only(base_model: HuggingFaceBaseModel) -> None:
    batch = build_teacher_forced_batch(base_model.tokenizer, QUESTIONS[:2], TARGETS[:2])
    prompt = torch.randn(3, 32, requires_grad=True)
    logits, labels, _ = label_logits(base_model, batch, [prompt, None])
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert prompt.grad is not None
    assert prompt.grad.abs().sum() > 0
    assert all(p.grad is None for p in base_model.model.parameters())
