"""Teacher-forced editing metrics (RECIPE §4; the reference protocol, see docs/evaluation.md).

* reliability / generality: fraction of the new target's tokens whose argmax under teacher
  forcing equals the target token, on the edit question / its paraphrase;
* locality: fraction of the locality answer's tokens whose argmax is unchanged from the unedited
  model's (agreement with the unedited model, not with the dataset's answer).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from langchain_recipe.base_models import BaseLanguageModel
from langchain_recipe.teacher_forcing import build_teacher_forced_batch, label_logits

__all__ = ["agreement", "teacher_forced_predictions", "token_accuracy"]


@torch.no_grad()
def teacher_forced_predictions(
    base_model: BaseLanguageModel,
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
        One ``(predicted_ids, label_ids)`` pair of 1-D tensors per row.
    """
    results: list[tuple[torch.Tensor, torch.Tensor]] = []
    for start in range(0, len(questions), batch_size):
        stop = start + batch_size
        batch = build_teacher_forced_batch(base_model.tokenizer, questions[start:stop], targets[start:stop], chat=chat)
        row_prompts = None if prompts is None else list(prompts[start:stop])
        logits, labels, rows = label_logits(base_model, batch, row_prompts)
        predicted = logits.argmax(-1)
        for row in range(batch.input_ids.shape[0]):
            selected = rows == row
            results.append((predicted[selected].cpu(), labels[selected].cpu()))
    return results


def token_accuracy(predictions: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Per row, the fraction of target tokens predicted exactly (reliability, generality)."""
    return [float((pred == lab).float().mean()) for pred, lab in predictions]


def agreement(
    after: Sequence[tuple[torch.Tensor, torch.Tensor]], before: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> list[float]:
    """Per row, the fraction of answer tokens whose argmax is unchanged (locality)."""
    return [float((a == b).float().mean()) for (a, _), (b, _) in zip(after, before)]
