"""Hybrid retrieval: a lexical (BM25) sparse vector per edit, fused with the dense key (issue 15).

A store opened with ``retrieval="hybrid"`` gives every point a second, sparse, named vector
(:data:`SPARSE_VECTOR`): the statement's words (:func:`lexical_tokens`, the tokenisation of
``recipe bench-retrieval``), each a dimension (:func:`word_index`) holding its BM25-saturated
term frequency ``tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len))``. The collection declares it
with ``modifier=IDF`` (:func:`sparse_vectors_config`), so the engine multiplies each word by its
``idf = ln((N - n + 0.5) / (n + 0.5) + 1)`` over the collection's points at query time:
qdrant-client's embedded mode (memory and ``path=``), qdrant-edge-py and a server all do this
themselves, so nothing is computed in the store. A query's sparse vector holds 1 per distinct
word, so the engine's sparse score is BM25.

``avg_len`` is fixed when the collection is made (:data:`AVERAGE_LENGTH`, recorded in its
metadata): a stored value never changes when other edits are added, at the cost of a length
normalisation that does not follow the collection's mean (the benchmark uses the mean of the
store it measures).

Ranking (:func:`fuse_hits`): the query's dense top-``N`` and sparse top-``N`` (``N`` =
:data:`PREFETCH`, at least ``k``), each candidate's dense score by
:func:`~langchain_recipe.scoring.gate_scores` and its sparse score from the engine, fused as the
benchmark fuses, ``s_dense + w * s_sparse / max(s_sparse over the candidates)``; top-``k`` by
that. The knowledge sentinel gate then reads the **dense** score of each kept hit, as in dense
retrieval.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from langchain_recipe.errors import InvalidInputError
from langchain_recipe.nn.knowledge_encoder import format_retrieval_text

__all__ = [
    "AVERAGE_LENGTH",
    "DEFAULT_HYBRID_WEIGHT",
    "PREFETCH",
    "RETRIEVALS",
    "SPARSE_VECTOR",
    "check_retrieval",
    "fuse_hits",
    "lexical_tokens",
    "sparse_document",
    "sparse_query",
    "sparse_vectors_config",
    "word_index",
]

SPARSE_VECTOR = "lexical"
"""The name of the sparse vector of a hybrid collection."""
RETRIEVALS = ("dense", "hybrid")
DEFAULT_HYBRID_WEIGHT = 4.0
"""``w`` of ``dense + w * sparse/max``: chosen on ``val`` by ``recipe bench-retrieval`` for the shipped keys."""
PREFETCH = 64
"""Candidates per query from each of the dense and the sparse ranking (at least ``k``)."""
AVERAGE_LENGTH = 10.0
"""BM25's ``avg_len`` (words per statement) a new hybrid collection records."""
K1, B = 1.2, 0.75
_WORD = re.compile(r"\w+")


def check_retrieval(retrieval: Any, hybrid_weight: Any) -> None:
    """Check the store's ``retrieval`` and ``hybrid_weight`` arguments.

    Raises:
        InvalidInputError: ``retrieval`` is not ``None``, ``"dense"`` or ``"hybrid"``, or
            ``hybrid_weight`` is not a finite number ``>= 0``.
    """
    if retrieval is not None and retrieval not in RETRIEVALS:
        msg = f"retrieval must be one of {RETRIEVALS} (or None: the collection's own), got {retrieval!r}."
        raise InvalidInputError(msg)
    if isinstance(hybrid_weight, bool) or not isinstance(hybrid_weight, (int, float)) or not 0 <= hybrid_weight < 1e9:
        msg = f"hybrid_weight must be a number >= 0 (dense score units), got {hybrid_weight!r}."
        raise InvalidInputError(msg)


def lexical_tokens(text: str) -> list[str]:
    """Lower-cased words (runs of letters, digits, ``_``) of a text: the sparse vector's dimensions."""
    return _WORD.findall(format_retrieval_text(text).lower())


def word_index(word: str) -> int:
    """A word's sparse dimension: the first 4 bytes of its BLAKE2b hash, an int in ``[0, 2**32)``.

    No vocabulary is stored, so every engine and every process agree on it.
    """
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest(), "big")


def _counts(text: str) -> tuple[dict[int, int], int]:
    words = lexical_tokens(text)
    counts: dict[int, int] = {}
    for word in words:
        index = word_index(word)
        counts[index] = counts.get(index, 0) + 1
    return counts, len(words)


def sparse_document(statement: str, average_length: float = AVERAGE_LENGTH) -> Any:
    """A statement's stored sparse vector: each word's BM25-saturated term frequency.

    Args:
        statement: the knowledge statement.
        average_length: BM25's ``avg_len`` (the collection's recorded value).

    Returns:
        A ``models.SparseVector`` (indices sorted; empty for a statement without words).
    """
    from qdrant_client import models

    counts, length = _counts(statement)
    norm = K1 * (1 - B + B * max(length, 1) / average_length)
    indices = sorted(counts)
    return models.SparseVector(indices=indices, values=[counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices])


def sparse_query(question: str) -> Any:
    """A question's sparse vector: 1 per distinct word (``models.SparseVector``, indices sorted)."""
    from qdrant_client import models

    indices = sorted(_counts(question)[0])
    return models.SparseVector(indices=indices, values=[1.0] * len(indices))


def sparse_vectors_config() -> dict[str, Any]:
    """The ``sparse_vectors_config`` of a hybrid collection: :data:`SPARSE_VECTOR` with Qdrant's IDF modifier."""
    from qdrant_client import models

    return {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}


def fuse_hits(dense: list[Any], sparse: dict[str, float], weight: float, k: int) -> list[Any]:
    """One query's candidates, best ``k`` by ``s_dense + weight * s_sparse / max(s_sparse)``.

    Args:
        dense: the candidates (``Hit`` s with their dense ``score`` from
            :func:`~langchain_recipe.scoring.gate_scores`), best dense first.
        sparse: the engine's sparse (BM25) score of each candidate that shares a word with the
            query, by point id; a missing id scores 0.
        weight: ``w`` (dense score units).
        k: how many to keep.

    Returns:
        The ``k`` best candidates by the fused score (equal fused scores keep the dense order),
        each with ``score`` still its dense score, for the gate.
    """
    top = max(sparse.values(), default=0.0)
    scale = weight / top if top > 0 else 0.0
    fused = [(hit.score + scale * sparse.get(hit.point_id, 0.0), -n, hit) for n, hit in enumerate(dense)]
    fused.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [hit for _, _, hit in fused[:k]]


def sparse_requests(queries: Sequence[str], limit: int, query_filter: Any, payload: Any, vectors: Any) -> list[Any]:
    """One sparse ``models.QueryRequest`` per query (its top-``limit`` by the engine's BM25)."""
    from qdrant_client import models

    return [
        models.QueryRequest(
            query=sparse_query(query),
            using=SPARSE_VECTOR,
            limit=limit,
            filter=query_filter,
            with_payload=payload,
            with_vector=vectors,
        )
        for query in queries
    ]


def sparse_candidates(
    state: Any,
    queries: Sequence[str],
    known: Sequence[set[str]],
    limit: int,
    query_filter: Any,
    selectors: tuple[Any, Any],
) -> tuple[list[dict[str, float]], list[list[Any]]]:
    """The engine's sparse (BM25) side of hybrid ranking, two batched requests.

    Args:
        state: the store's shared state (engine, collection).
        queries: the questions, one per dense candidate list.
        known: per query, the point ids the dense ranking already found.
        limit: the sparse top-``limit`` per query.
        query_filter: the tenant, user and exclusion filter of the dense ranking (or ``None``).
        selectors: ``(with_payload, with_vector)`` for the points the dense ranking did not find
            (the stored key included, for the gate).

    Returns:
        Per query, the sparse score of every candidate that shares a word with it (the sparse
        top-``limit`` and the dense candidates), by point id; and the records of the sparse
        top-``limit`` that are not in ``known``.
    """
    from qdrant_client import models

    asked = [i for i, query in enumerate(queries) if sparse_query(query).indices]
    top = sparse_requests([queries[i] for i in asked], limit, query_filter, *selectors)
    found = state.engine.query_batch_points(state.collection_name, top) if top else []
    scores: list[dict[str, float]] = [{} for _ in queries]
    new: list[list[Any]] = [[] for _ in queries]
    for i, response in zip(asked, found, strict=True):
        scores[i] = {str(p.id): float(p.score) for p in response.points}
        new[i] = [p for p in response.points if str(p.id) not in known[i]]
    missing = {i: sorted(known[i] - scores[i].keys()) for i in asked}
    rest = [i for i in asked if missing[i]]
    requests = [
        models.QueryRequest(
            query=sparse_query(queries[i]),
            using=SPARSE_VECTOR,
            limit=len(missing[i]),
            filter=models.Filter(must=[c for c in (query_filter, models.HasIdCondition(has_id=missing[i])) if c]),
            with_payload=False,
            with_vector=False,
        )
        for i in rest
    ]
    answers = state.engine.query_batch_points(state.collection_name, requests) if rest else []
    for i, response in zip(rest, answers, strict=True):
        scores[i].update({str(p.id): float(p.score) for p in response.points})
    return scores, new
