"""The knowledge sentinel: a learned pseudo-statement whose similarity is the retrieval threshold.

RECIPE §3.3 (Chen et al., EMNLP 2024): a learned sequence Θ of pseudo-token embeddings is encoded
like a knowledge statement (shared encoder, pooling, knowledge head) into r_Θ. A query q accepts
its best edit k only if s(q, k) > s(q, Θ), with s the scaled dot product, so the threshold is
per query ("dynamic") and there is no fixed scalar threshold.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["GateDecision", "KnowledgeSentinel", "sentinel_gate"]


class GateDecision(NamedTuple):
    """The knowledge sentinel's verdict for a batch of queries (RECIPE §3.3)."""

    best_index: torch.Tensor
    """Index of each query's most similar knowledge key, shape `(num_queries,)` (long)."""
    best_score: torch.Tensor
    """s(q, k*) of that key, scaled dot product, shape `(num_queries,)`."""
    sentinel_score: torch.Tensor
    """s(q, Θ), the query's dynamic threshold, shape `(num_queries,)`."""
    accepted: torch.Tensor
    """``best_score > sentinel_score`` (strict), shape `(num_queries,)` (bool)."""


def sentinel_gate(query_keys: torch.Tensor, knowledge_keys: torch.Tensor, sentinel_key: torch.Tensor) -> GateDecision:
    """Retrieve each query's best edit and keep it only if it beats the knowledge sentinel.

    ``s(q, k) = r_q · r_k / sqrt(d_r)`` (RECIPE §3.3, Eq. for the retrieval score); a query keeps
    its best key ``k*`` iff ``s(q, k*) > s(q, Θ)``. Ties are rejected, so an edit is never applied
    on equal evidence.

    Args:
        query_keys: query representations r_q, shape `(num_queries, knowledge_dim)`.
        knowledge_keys: knowledge representations r_k, shape `(num_edits, knowledge_dim)`; may
            have zero rows (then nothing is accepted).
        sentinel_key: the sentinel's representation r_Θ, shape `(knowledge_dim,)`.

    Returns:
        A :class:`GateDecision`; with no edits, ``best_index`` is -1 and ``best_score`` is -inf.

    Raises:
        ValueError: if the three tensors do not share ``knowledge_dim``.
    """
    dim = query_keys.shape[-1]
    if knowledge_keys.shape[-1] != dim or sentinel_key.shape[-1] != dim:
        msg = (
            f"query_keys, knowledge_keys and sentinel_key must share knowledge_dim; got {dim}, "
            f"{knowledge_keys.shape[-1]} and {sentinel_key.shape[-1]}. Encode all three with the same RecipeModel."
        )
        raise ValueError(msg)
    scale = 1.0 / math.sqrt(dim)
    sentinel_score = (query_keys @ sentinel_key) * scale
    if knowledge_keys.shape[0] == 0:
        count = query_keys.shape[0]
        best_score = torch.full((count,), float("-inf"), dtype=query_keys.dtype, device=query_keys.device)
        best_index = torch.full((count,), -1, dtype=torch.long, device=query_keys.device)
    else:
        best_score, best_index = ((query_keys @ knowledge_keys.T) * scale).max(dim=-1)
    return GateDecision(best_index, best_score, sentinel_score, best_score > sentinel_score)


class KnowledgeSentinel(nn.Module):
    """Learned pseudo-token embeddings Θ, initialised Uniform(-0.05, 0.05) as in the paper.

    The paper feeds Θ straight into the encoder layers; here it enters as the encoder's
    ``inputs_embeds`` (so the encoder adds its position embeddings and normalisation), which
    works for any Hugging Face encoder.

    Output shape of :meth:`forward`: `(1, num_sentinel_tokens, encoder_hidden_size)`.
    """

    def __init__(self, num_sentinel_tokens: int, encoder_hidden_size: int) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(torch.empty(1, num_sentinel_tokens, encoder_hidden_size).uniform_(-0.05, 0.05))

    def forward(self) -> torch.Tensor:
        return self.embeddings
