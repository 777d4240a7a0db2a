"""RECIPE's retrieval score and knowledge sentinel gate, in one place.

RECIPE §3.3 (Chen et al., EMNLP 2024) scores a query representation r_q against a knowledge
representation r_k with the scaled dot product

    s(q, k) = r_q · r_k / sqrt(d_r)

and applies the query's best edit k* only if it beats the knowledge sentinel Θ:
``s(q, k*) > s(q, Θ)``. Ties are rejected, so an edit is never applied on equal evidence.

Every caller (the knowledge store, the retriever, conflict detection, the agent tools, training
losses, evaluation and benchmarks) goes through these functions, so the rule is written once:

* :func:`retrieval_scores` / :func:`paired_retrieval_scores`: the scaled dot product;
* :func:`stored_key`: the vector the store keeps, ``r_k / sqrt(d_r)``, so that the engine's plain
  dot product with r_q *is* ``s(q, k)``;
* :func:`passes_gate`: the strict comparison;
* :func:`sentinel_gate`: best key per query plus the gate, for in-memory key matrices.
"""

from __future__ import annotations

import math
from typing import NamedTuple, TypeVar

import torch

__all__ = [
    "GateDecision",
    "paired_retrieval_scores",
    "passes_gate",
    "retrieval_scores",
    "sentinel_gate",
    "stored_key",
]

_Score = TypeVar("_Score", float, torch.Tensor)


def retrieval_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """All pairs' scaled dot product ``s(q, k) = r_q · r_k / sqrt(d_r)`` (RECIPE §3.3).

    Args:
        queries: query representations r_q, shape `(num_queries, knowledge_dim)`.
        keys: knowledge (or sentinel) representations r_k, shape `(num_keys, knowledge_dim)`.

    Returns:
        Scores, shape `(num_queries, num_keys)` (dimensionless).

    Raises:
        ValueError: if the two do not share ``knowledge_dim``.
    """
    _check_dims(queries, keys)
    return queries @ keys.T / math.sqrt(queries.shape[-1])


def paired_retrieval_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Row-wise ``s(q_i, k_i)``: each query against its own key (RECIPE §3.3).

    Args:
        queries: shape `(num_rows, knowledge_dim)`.
        keys: shape `(num_rows, knowledge_dim)`.

    Returns:
        Scores, shape `(num_rows,)`.

    Raises:
        ValueError: if the two do not share ``knowledge_dim``.
    """
    _check_dims(queries, keys)
    return (queries * keys).sum(-1) / math.sqrt(queries.shape[-1])


def stored_key(key: torch.Tensor) -> torch.Tensor:
    """The vector a store keeps for a knowledge key: ``r_k / sqrt(d_r)``, as float32.

    An engine's plain dot product between r_q and this vector is then exactly
    :func:`retrieval_scores` (up to float rounding), so Qdrant's scores are RECIPE's.

    Args:
        key: r_k, shape `(..., knowledge_dim)`.

    Returns:
        Shape `(..., knowledge_dim)`, float32.
    """
    return key.float() / math.sqrt(key.shape[-1])


def passes_gate(score: _Score, sentinel_score: _Score) -> _Score:
    """The knowledge sentinel gate: ``s(q, k) > s(q, Θ)``, strict (RECIPE §3.3).

    Args:
        score: ``s(q, k)``: a float, or a tensor of any shape.
        sentinel_score: ``s(q, Θ)``: a float, or a tensor broadcastable with ``score``.

    Returns:
        A bool, or a bool tensor of the broadcast shape.
    """
    return score > sentinel_score


class GateDecision(NamedTuple):
    """The knowledge sentinel's verdict for a batch of queries (RECIPE §3.3)."""

    best_index: torch.Tensor
    """Index of each query's most similar knowledge key, shape `(num_queries,)` (long)."""
    best_score: torch.Tensor
    """s(q, k*) of that key, scaled dot product, shape `(num_queries,)`."""
    sentinel_score: torch.Tensor
    """s(q, Θ), the query's dynamic threshold, shape `(num_queries,)`."""
    accepted: torch.Tensor
    """:func:`passes_gate` of the two, shape `(num_queries,)` (bool)."""


def sentinel_gate(query_keys: torch.Tensor, knowledge_keys: torch.Tensor, sentinel_key: torch.Tensor) -> GateDecision:
    """Retrieve each query's best edit and keep it only if it beats the knowledge sentinel.

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
    _check_dims(query_keys, knowledge_keys)
    _check_dims(query_keys, sentinel_key.reshape(1, -1))
    sentinel_score = retrieval_scores(query_keys, sentinel_key.reshape(1, -1)).squeeze(-1)
    if knowledge_keys.shape[0] == 0:
        count = query_keys.shape[0]
        best_score = torch.full((count,), float("-inf"), dtype=query_keys.dtype, device=query_keys.device)
        best_index = torch.full((count,), -1, dtype=torch.long, device=query_keys.device)
    else:
        best_score, best_index = retrieval_scores(query_keys, knowledge_keys).max(dim=-1)
    return GateDecision(best_index, best_score, sentinel_score, passes_gate(best_score, sentinel_score))


def _check_dims(queries: torch.Tensor, keys: torch.Tensor) -> None:
    if queries.shape[-1] != keys.shape[-1]:
        msg = (
            f"Query and knowledge representations must share knowledge_dim; got {queries.shape[-1]} and "
            f"{keys.shape[-1]}. Encode both with the same RecipeModel."
        )
        raise ValueError(msg)
