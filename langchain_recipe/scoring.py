"""RECIPE's retrieval score and knowledge sentinel gate, in one place.

RECIPE §3.3 (Chen et al., EMNLP 2024) scores a query representation r_q against a knowledge
representation r_k with the scaled dot product

    s(q, k) = r_q · r_k / sqrt(d_r)

and applies the query's best edit k* only if it beats the knowledge sentinel Θ:
``s(q, k*) > s(q, Θ)``. Ties are rejected, so an edit is never applied on equal evidence.

The tie rule, and one verdict on every read path (issue 15): a knowledge store ranks with
different arithmetic (its float32 key index, qdrant-client's numpy, qdrant-edge's Rust, a
server), so the scores those return can differ in the last float32 bits. The store therefore
decides with :func:`gate_scores` only: ``r_q`` (float32) against the float32 vector the store
holds (:func:`stored_key`), every product exact in float64 and summed in one fixed order, and the
sentinel score the same way against ``stored_key(r_Θ)`` (:func:`sentinel_scores`). The verdict
is then a function of those float32 numbers alone, identical on every engine; a score equal to
the sentinel's (to the last float64 bit) is a tie and applies no edit.

Every caller (the knowledge store, the retriever, conflict detection, the agent tools, training
losses, evaluation and benchmarks) goes through these functions, so the rule is written once:

* :func:`retrieval_scores` / :func:`paired_retrieval_scores`: the scaled dot product;
* :func:`stored_key`: the vector the store keeps, ``r_k / sqrt(d_r)``, so that the engine's plain
  dot product with r_q *is* ``s(q, k)``;
* :func:`gate_scores` / :func:`sentinel_scores`: ``s(q, k)`` and ``s(q, Θ)`` as the store's gate
  reads them, the same numbers on every engine;
* :func:`passes_gate`: the strict comparison;
* :func:`sentinel_gate`: best key per query plus the gate, for in-memory key matrices.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "GateDecision",
    "gate_scores",
    "paired_retrieval_scores",
    "passes_gate",
    "retrieval_scores",
    "sentinel_gate",
    "sentinel_scores",
    "stored_key",
]


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


def gate_scores(query_keys: torch.Tensor, stored_keys: torch.Tensor) -> torch.Tensor:
    """``s(q, k) = r_q · stored_key(r_k)`` as the gate reads it: the same number on every engine.

    Both inputs are read as float32 (the values a store sends and holds); each product is exact
    in float64 and the products are summed pairwise in one fixed order, so the result depends
    only on the two float32 vectors: not on the batch, the engine or the BLAS (module docstring).
    Costs ``O(d_r)`` float64 operations per pair.

    Args:
        query_keys: query representations r_q, shape `(..., knowledge_dim)`.
        stored_keys: stored keys ``r_k / sqrt(d_r)`` (:func:`stored_key`), shape broadcastable
            with ``query_keys``.

    Returns:
        Scores (dimensionless), float64 on the CPU, shape the broadcast shape less the last dim.

    Raises:
        ValueError: if the two do not share ``knowledge_dim``.
    """
    _check_dims(query_keys, stored_keys)
    terms = _exact_float32(query_keys) * _exact_float32(stored_keys)
    width = 1 << (terms.shape[-1] - 1).bit_length()
    if width != terms.shape[-1]:
        terms = torch.nn.functional.pad(terms, (0, width - terms.shape[-1]))
    while terms.shape[-1] > 1:
        half = terms.shape[-1] // 2
        terms = terms[..., :half] + terms[..., half:]
    return terms[..., 0]


def sentinel_scores(query_keys: torch.Tensor, sentinel_key: torch.Tensor) -> torch.Tensor:
    """``s(q, Θ)`` by the arithmetic of :func:`gate_scores`, against ``stored_key(r_Θ)``.

    Args:
        query_keys: r_q, shape `(num_queries, knowledge_dim)`.
        sentinel_key: r_Θ, shape `(knowledge_dim,)`.

    Returns:
        Shape `(num_queries,)`, float64 on the CPU.

    Raises:
        ValueError: if the two do not share ``knowledge_dim``.
    """
    return gate_scores(query_keys, stored_key(sentinel_key.detach().reshape(-1)))


def _exact_float32(values: torch.Tensor) -> torch.Tensor:
    return values.detach().to("cpu", torch.float32).double()


def passes_gate(score: float | torch.Tensor, sentinel_score: float | torch.Tensor) -> bool | torch.Tensor:
    """The knowledge sentinel gate: ``s(q, k) > s(q, Θ)``, strict (RECIPE §3.3).

    A tie (equal scores) applies no edit. A knowledge store passes :func:`gate_scores` and
    :func:`sentinel_scores` here, so its verdict is the same on every engine.

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
