"""Training the continuous prompt for the answer users see: distillation from the statement as text.

The paper's losses (RECIPE §3.4) score the target right after a raw question. In chat, the LM
first restates the question and must produce the fact further on, often a name of several
tokens. Here the teacher is the same frozen LM with the knowledge statement as text before the
question in the user's turn (the chat model's ``injection="text"``); the student is the LM with
the edit's continuous prompt right before the question
(:func:`~langchain_recipe.injection.chat_prompt_offset`). The teacher's greedy answers are
generated once (:func:`teacher_answers`) and kept only where they state the new target, so the
student learns the answers in which the fact shows. The loss (:func:`answer_distillation_loss`)
is the teacher-forced cross-entropy of the teacher's answer tokens under the student, with the
tokens that spell the target weighted ``target_weight`` times more (the restated question is
easy to copy; the few tokens that carry the fact are what matters).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.generation import pad_id
from langchain_recipe.injection import IGNORE_INDEX, chat_prompt_offset, pad_rows, prepend_statement_text
from langchain_recipe.teacher_forcing import TeacherForcedBatch, label_logits

__all__ = ["TeacherAnswer", "answer_distillation_loss", "build_answer_batch", "load_teacher_answers", "teacher_answers"]


@dataclass(frozen=True)
class TeacherAnswer:
    """One teacher answer that states the new fact.

    Attributes:
        statement: the knowledge statement the teacher read.
        question: the question asked (an edit question or its paraphrase).
        answer: the teacher's greedy chat answer (it contains ``target``).
        target: the new fact's answer.
    """

    statement: str
    question: str
    answer: str
    target: str


def teacher_answers(
    base_model: HuggingFaceBaseModel,
    records: Sequence[EditRecord],
    *,
    max_tokens: int = 32,
    batch_size: int = 16,
    cache: str | Path | None = None,
    progress: bool = False,
) -> list[TeacherAnswer]:
    """Greedy chat answers of the LM with each statement as text, kept where they contain the target.

    Each record is asked twice, its question and its paraphrase, with the statement before it.

    Args:
        base_model: the frozen base LM (teacher and student share it).
        records: training edits (their ``statement``, ``prompt``, ``rephrase``, ``target``).
        max_tokens: new tokens per answer.
        batch_size: answers generated together.
        cache: a JSON Lines file; read if it exists (generation is skipped), written otherwise.
        progress: show a progress bar.

    Returns:
        The kept :class:`TeacherAnswer` objects, in record order.
    """
    if cache is not None and Path(cache).is_file():
        return load_teacher_answers(cache)
    from langchain_core.messages import HumanMessage
    from tqdm.auto import tqdm

    from langchain_recipe.chat_models import RecipeChatModel

    chat = RecipeChatModel.from_base_model(base_model, max_tokens=max_tokens)
    asked = [(r, q) for r in records for q in (r.prompt, r.rephrase)]
    kept: list[TeacherAnswer] = []
    for start in tqdm(
        range(0, len(asked), batch_size), desc="teacher answers", unit="batch", disable=None if progress else True
    ):
        chunk = asked[start : start + batch_size]
        messages = [[HumanMessage(prepend_statement_text(r.statement, q))] for r, q in chunk]
        for (record, question), reply in zip(chunk, chat.generate_batch(messages), strict=True):
            if record.target.strip().lower() in reply.content.lower():
                kept.append(TeacherAnswer(record.statement, question, reply.content, record.target.strip()))
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        with Path(cache).open("w", encoding="utf-8") as handle:
            for item in kept:
                handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    return kept


def load_teacher_answers(path: str | Path) -> list[TeacherAnswer]:
    """Read the teacher answers that :func:`teacher_answers` cached."""
    with Path(path).open(encoding="utf-8") as handle:
        return [TeacherAnswer(**json.loads(line)) for line in handle if line.strip()]


@dataclass
class AnswerBatch:
    """Chat-templated questions followed by the teacher's answers, left-padded.

    Attributes:
        input_ids: shape `(batch_size, seq_len)`.
        attention_mask: shape `(batch_size, seq_len)`.
        labels: shape `(batch_size, seq_len)`: the next answer token, else -100.
        weights: shape `(batch_size, seq_len)`: ``target_weight`` where the label spells the
            target, 1 on the other answer tokens, 0 elsewhere.
        prompt_offsets: template tokens before the question in each row, shape `(batch_size,)`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor
    prompt_offsets: torch.Tensor


def build_answer_batch(tokenizer, items: Sequence[TeacherAnswer], *, target_weight: float = 10.0) -> AnswerBatch:  # noqa: ANN001
    """Tokenise ``chat_template(question) + answer + end of turn`` for teacher forcing.

    Args:
        tokenizer: the base LM's fast tokenizer (with a chat template and character offsets).
        items: teacher answers.
        target_weight: weight of the answer tokens that overlap the target's characters.
    """
    rows: list[tuple[list[int], list[int], list[float], int]] = []
    end = tokenizer.eos_token or ""
    for item in items:
        conversation = [{"role": "user", "content": item.question}]
        header = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        text = header + item.answer + end
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = list(encoded["input_ids"])
        lower = text.lower()
        start = lower.find(item.target.lower(), len(header))
        stop = start + len(item.target) if start >= 0 else -1
        labels, weights = [], []
        for (begin, finish), token in zip(encoded["offset_mapping"][1:], ids[1:], strict=True):
            if finish <= len(header):
                labels.append(IGNORE_INDEX)
                weights.append(0.0)
            else:
                labels.append(token)
                weights.append(target_weight if start >= 0 and begin < stop and finish > start else 1.0)
        offset = chat_prompt_offset(tokenizer, conversation, ids)
        rows.append((ids[:-1], labels, weights, offset))
    input_ids, mask = pad_rows([r[0] for r in rows], pad_id(tokenizer))
    labels_t, _ = pad_rows([r[1] for r in rows], IGNORE_INDEX)
    weights_t, _ = pad_rows([r[2] for r in rows], 0.0, dtype=torch.float32)
    return AnswerBatch(input_ids, mask, labels_t, weights_t, torch.tensor([r[3] for r in rows]))


def answer_distillation_loss(
    base_model: HuggingFaceBaseModel, batch: AnswerBatch, prompts: torch.Tensor
) -> torch.Tensor:
    """Weighted teacher-forced cross-entropy of the teacher's answers under the student.

    The student is the LM with each row's continuous prompt right before its question.

    ``L = Σ_t w_t · CE(student(t), teacher_token_t) / Σ_t w_t`` over answer tokens; ``w_t`` is the
    batch's ``weights``.

    Args:
        base_model: the frozen base LM.
        batch: from :func:`build_answer_batch`.
        prompts: the rows' continuous prompts, shape `(batch_size, num_prompt_tokens, hidden_size)`.

    Returns:
        A scalar tensor (gradients reach ``prompts`` only).
    """
    teacher_forced = TeacherForcedBatch(batch.input_ids, batch.attention_mask, batch.labels, batch.prompt_offsets)
    logits, labels, _ = label_logits(base_model, teacher_forced, prompts)
    token_loss = F.cross_entropy(logits, labels, reduction="none")
    # Inserting the prompt keeps each row's token order, so the labelled positions come in the same
    # (row-major) order before and after it.
    w = batch.weights[batch.labels != IGNORE_INDEX].to(device=token_loss.device, dtype=token_loss.dtype)
    return (w * token_loss).sum() / w.sum().clamp_min(1e-8)
