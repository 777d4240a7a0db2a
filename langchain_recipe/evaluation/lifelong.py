"""Sequential (lifelong) evaluation: apply all N edits, then test all N (RECIPE §4).

Retrieval sees only the question (never the target), and the locality reference comes from the
unedited LM. This in-memory version scores the same keys, prompts and sentinel gate that
:class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore` stores in Qdrant; it is what the
trainer's periodic evaluation uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from langchain_recipe.base_models import BaseLanguageModel
from langchain_recipe.datasets import EditRecord
from langchain_recipe.evaluation.metrics import agreement, teacher_forced_predictions, token_accuracy
from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = ["EvaluationResult", "RetrievalDiagnostics", "evaluate_edits"]


@dataclass
class RetrievalDiagnostics:
    """How retrieval and the knowledge sentinel gate behaved (fractions in [0, 1]).

    Attributes:
        top1_accuracy: edit questions whose best key is their own edit.
        gate_recall: edit questions (reliability and generality) that pass the gate.
        locality_rejection: unrelated questions that the gate rejects.
    """

    top1_accuracy: float
    gate_recall: float
    locality_rejection: float


@dataclass
class EvaluationResult:
    """Mean reliability, generality and locality over the edits, plus retrieval diagnostics."""

    reliability: float
    generality: float
    locality: float
    retrieval: RetrievalDiagnostics | None = None
    per_edit: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, float]:
        """Flat dict of the metrics (rounded to 4 digits)."""
        out = {"reliability": self.reliability, "generality": self.generality, "locality": self.locality}
        if self.retrieval is not None:
            out |= vars(self.retrieval)
        return {k: round(v, 4) for k, v in out.items()}


@torch.no_grad()
def _encode_queries(model: RecipeModel, queries: Sequence[str], batch_size: int = 64) -> torch.Tensor:
    return torch.cat([model.encode_queries(queries[s : s + batch_size]) for s in range(0, len(queries), batch_size)])


@torch.no_grad()
def evaluate_edits(
    model: RecipeModel,
    base_model: BaseLanguageModel,
    records: Sequence[EditRecord],
    *,
    method: str = "recipe",
    batch_size: int = 16,
) -> EvaluationResult:
    """Edit all ``records`` at once, then score every edit's questions.

    Args:
        model: the trained RecipeModel.
        base_model: the frozen base LM.
        records: the edits (N of them).
        method: ``"recipe"`` (gated retrieval), ``"recipe_no_sentinel"`` (top-1 always
            injected), ``"oracle"`` (each edit question gets its own prompt, each locality
            question an unrelated edit's prompt: the harm of a wrong retrieval) or ``"unedited"``.
        batch_size: rows per LM forward pass.

    Returns:
        An :class:`EvaluationResult` (retrieval diagnostics for the retrieval methods).
    """
    methods = {"recipe", "recipe_no_sentinel", "oracle", "unedited"}
    if method not in methods:
        msg = f"Unknown method {method!r}; use one of {sorted(methods)}."
        raise ValueError(msg)
    size = len(records)
    keys, prompts = model.encode_edits([r.statement for r in records], base_model, batch_size=32)
    questions = [r.prompt for r in records] + [r.rephrase for r in records] + [r.locality_prompt for r in records]
    diagnostics = None
    if method == "unedited":
        chosen: list[torch.Tensor | None] = [None] * (3 * size)
    elif method == "oracle":
        chosen = [prompts[i % size] for i in range(2 * size)] + [prompts[(i + 1) % size] for i in range(size)]
    else:
        query_keys = _encode_queries(model, questions)
        scores = model.similarity(query_keys, keys)  # (3N, N)
        best_score, best = scores.max(-1)
        sentinel_score = model.similarity(query_keys, model.sentinel_key().unsqueeze(0)).squeeze(-1)
        accepted = best_score > sentinel_score if method == "recipe" else torch.ones_like(best_score, dtype=torch.bool)
        chosen = [prompts[int(j)] if ok else None for j, ok in zip(best, accepted)]
        own = torch.arange(2 * size) % size
        diagnostics = RetrievalDiagnostics(
            top1_accuracy=float((best[: 2 * size] == own).float().mean()),
            gate_recall=float((best_score[: 2 * size] > sentinel_score[: 2 * size]).float().mean()),
            locality_rejection=float((best_score[2 * size :] <= sentinel_score[2 * size :]).float().mean()),
        )
    targets = [r.target for r in records] * 2 + [r.locality_answer for r in records]
    after = teacher_forced_predictions(base_model, questions, targets, chosen, batch_size=batch_size)
    before = teacher_forced_predictions(
        base_model, questions[2 * size :], targets[2 * size :], None, batch_size=batch_size
    )
    rel, gen = token_accuracy(after[:size]), token_accuracy(after[size : 2 * size])
    loc = agreement(after[2 * size :], before)
    return EvaluationResult(
        reliability=sum(rel) / size,
        generality=sum(gen) / size,
        locality=sum(loc) / size,
        retrieval=diagnostics,
        per_edit={"reliability": rel, "generality": gen, "locality": loc},
    )
