"""Editing metrics (RECIPE §4 and the reference protocol; see docs/evaluation.md).

Teacher-forced metrics (the paper's protocol):

* reliability / generality: fraction of the new target's tokens whose argmax under teacher
  forcing equals the target token, on the edit question / its paraphrase;
* locality: fraction of the locality answer's tokens whose argmax is unchanged from the unedited
  model's (agreement with the unedited model, not with the dataset's answer).

Generation metrics (what a user sees), a second view:

* exact match: the greedy continuation, cut to the target's token count plus a few tokens,
  starts with the target (whitespace collapsed, case folded, ending at a word boundary);
* locality exact match: the greedy continuation is token for token the unedited model's.

And the log-likelihoods behind the general-ability check (perplexity, multiple choice).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import torch

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.generation import generate_rows
from langchain_recipe.injection import IGNORE_INDEX
from langchain_recipe.teacher_forcing import build_teacher_forced_batch, label_logits

__all__ = [
    "agreement",
    "exact_match",
    "greedy_continuations",
    "perplexity",
    "target_log_likelihoods",
    "teacher_forced_predictions",
    "token_accuracy",
]


@torch.no_grad()
def teacher_forced_predictions(
    base_model: HuggingFaceBaseModel,
    questions: Sequence[str],
    targets: Sequence[str],
    prompts: Sequence[torch.Tensor | None] | None = None,
    *,
    batch_size: int = 16,
    chat: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per row, the argmax token ids at the target positions and the target ids.

    Args:
        base_model: the frozen base LM.
        questions: questions (or sentence prefixes).
        targets: answers whose tokens are scored.
        prompts: per row a continuous prompt `(num_prompt_tokens, hidden_size)` or ``None``.
        batch_size: rows per forward pass.
        chat: wrap questions in the chat template.

    Returns:
        One ``(predicted_ids, label_ids)`` pair of 1-D tensors of equal length (the target's
        token count) per row.
    """
    results: list[tuple[torch.Tensor, torch.Tensor]] = []
    for logits, labels, rows, count in _labelled_batches(base_model, questions, targets, prompts, batch_size, chat):
        predicted = logits.argmax(-1)
        for row in range(count):
            selected = rows == row
            results.append((predicted[selected].cpu(), labels[selected].cpu()))
    return results


def _labelled_batches(
    base_model: HuggingFaceBaseModel,
    questions: Sequence[str],
    targets: Sequence[str],
    prompts: Sequence[torch.Tensor | None] | None,
    batch_size: int,
    chat: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]]:
    """Teacher-forced batches of ``batch_size`` rows: ``(logits, labels, rows, row_count)``.

    They hold the logits and label ids of every target position and the batch row each position
    belongs to.
    """
    for start in range(0, len(questions), batch_size):
        stop = start + batch_size
        batch = build_teacher_forced_batch(base_model.tokenizer, questions[start:stop], targets[start:stop], chat=chat)
        row_prompts = None if prompts is None else list(prompts[start:stop])
        logits, labels, rows = label_logits(base_model, batch, row_prompts)
        yield logits, labels, rows, batch.input_ids.shape[0]


def token_accuracy(predictions: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Per row, the fraction of target tokens predicted exactly (reliability, generality).

    Args:
        predictions: ``(predicted_ids, label_ids)`` pairs from :func:`teacher_forced_predictions`.

    Returns:
        One value in [0, 1] per row: e.g. 0.5 for a 2-token target with one argmax right.
    """
    return [float((pred == lab).float().mean()) for pred, lab in predictions]


def agreement(
    after: Sequence[tuple[torch.Tensor, torch.Tensor]], before: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> list[float]:
    """Per row, the fraction of answer tokens whose argmax is unchanged (locality).

    Args:
        after: predictions of the edited model.
        before: predictions of the unedited model on the same rows.

    Raises:
        ValueError: the lists or a row's token counts differ.
    """
    if len(after) != len(before):
        msg = f"Got {len(after)} edited rows but {len(before)} reference rows."
        raise ValueError(msg)
    scores = []
    for (a, _), (b, _) in zip(after, before, strict=True):
        if a.shape != b.shape:
            msg = f"A row has {a.numel()} edited and {b.numel()} reference answer tokens; score the same texts."
            raise ValueError(msg)
        scores.append(float((a == b).float().mean()))
    return scores


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_match(generated: str, target: str) -> bool:
    """Whether a greedy continuation states ``target`` first.

    Both texts have their whitespace collapsed and are case folded; the continuation must start
    with the target, followed by the end of the text or a non-alphanumeric character (so
    ``"Lisbon."`` matches ``"Lisbon"`` but ``"Lisbonne"`` does not).
    """
    text, answer = _normalise(generated), _normalise(target)
    if not answer or not text.startswith(answer):
        return False
    rest = text[len(answer) :]
    return not rest or not re.match(r"\w", rest[0])


@torch.no_grad()
def greedy_continuations(
    base_model: HuggingFaceBaseModel,
    questions: Sequence[str],
    targets: Sequence[str],
    prompts: Sequence[torch.Tensor | None] | None = None,
    *,
    extra_new_tokens: int = 3,
    batch_size: int = 16,
    chat: bool = False,
) -> list[list[int]]:
    """Greedy new token ids after each question, with each row's continuous prompt prefixed.

    The input is exactly the teacher-forced input up to the target (the same tokens that
    :func:`teacher_forced_predictions` scores the target after), so both views see the same
    context. Each row may generate the target's token count plus ``extra_new_tokens``; rows are
    left-padded and generated together by the chat model's decode path
    (:func:`~langchain_recipe.generation.generate_rows`, transformers' ``generate``), each ending
    at its first end-of-sequence token (:func:`~langchain_recipe.generation.end_token_ids`), then
    cut to its own budget.

    Args:
        base_model: the frozen base LM.
        questions: questions or sentence prefixes.
        targets: the expected answers (they set each row's token budget; never shown to the LM).
        prompts: per row a continuous prompt `(num_prompt_tokens, hidden_size)` or ``None``.
        extra_new_tokens: tokens allowed beyond the target's length.
        batch_size: rows per ``generate`` call.
        chat: wrap questions in the chat template.

    Returns:
        One list of new token ids per question.
    """
    results: list[list[int]] = []
    for start in range(0, len(questions), batch_size):
        stop = start + batch_size
        batch = build_teacher_forced_batch(base_model.tokenizer, questions[start:stop], targets[start:stop], chat=chat)
        rows, budgets = [], []
        for ids, mask, labels in zip(batch.input_ids, batch.attention_mask, batch.labels, strict=True):
            labelled = (labels != IGNORE_INDEX).nonzero().flatten()
            first = int(labelled[0])  # input position whose next token is the target's first
            rows.append(ids[: first + 1][mask[: first + 1].bool()])
            budgets.append(int(labelled.numel()) + extra_new_tokens)
        generated = generate_rows(
            base_model,
            rows,
            prompts=None if prompts is None else list(prompts[start:stop]),
            prompt_offsets=batch.prompt_offsets,
            max_new_tokens=max(budgets),
        )
        results.extend(row.tokens[:budget] for row, budget in zip(generated, budgets, strict=True))
    return results


@torch.no_grad()
def target_log_likelihoods(
    base_model: HuggingFaceBaseModel,
    questions: Sequence[str],
    targets: Sequence[str],
    prompts: Sequence[torch.Tensor | None] | None = None,
    *,
    batch_size: int = 16,
    chat: bool = False,
) -> list[tuple[float, int]]:
    """Per row, the total log-probability (natural log) of the target's tokens and their count.

    Args:
        base_model: the frozen base LM.
        questions: the context before each target.
        targets: the scored continuations.
        prompts: per row a continuous prompt `(num_prompt_tokens, hidden_size)` or ``None``.
        batch_size: rows per forward pass.
        chat: wrap questions in the chat template.

    Returns:
        ``(sum_log_prob, num_tokens)`` per row.
    """
    results: list[tuple[float, int]] = []
    for logits, labels, rows, count in _labelled_batches(base_model, questions, targets, prompts, batch_size, chat):
        token_log_probs = logits.log_softmax(-1).gather(-1, labels[:, None]).squeeze(-1).cpu()
        rows = rows.cpu()
        for row in range(count):
            selected = rows == row
            results.append((float(token_log_probs[selected].sum()), int(selected.sum())))
    return results


def perplexity(log_likelihoods: Sequence[tuple[float, int]]) -> float:
    """Token-level perplexity ``exp(-Σ log p / Σ tokens)`` over all rows (pooled, not averaged).

    Args:
        log_likelihoods: ``(sum_log_prob, num_tokens)`` pairs from :func:`target_log_likelihoods`.

    Raises:
        ValueError: no tokens.
    """
    tokens = sum(n for _, n in log_likelihoods)
    if tokens == 0:
        msg = "Perplexity needs at least one scored token."
        raise ValueError(msg)
    return math.exp(-sum(lp for lp, _ in log_likelihoods) / tokens)
