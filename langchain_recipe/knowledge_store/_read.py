"""Reading a tenant's edits: filters, lookups by id, listing, and the one search chain.

Search (RECIPE §3.3) runs as one chain for every caller (:meth:`RecipeKnowledgeStore.search_batch`,
the conflict check, benchmarks):

1. rank: the ``k`` points with the best ``s(q, k)`` for each query representation, from the
   float32 :class:`~._key_index.KeyIndex` where the store is the collection's sole writer and no
   user filter is given, otherwise from the engine (one batched query, stored keys included);
2. score: each hit's ``s(q, k)`` again, by :func:`~langchain_recipe.scoring.gate_scores` from
   its stored key, and the hits re-ordered by it; the ranking path's own score (float32 in
   torch, numpy, Rust or a server) is dropped, so scores and verdicts are one function of the
   stored float32 numbers, the same on every path (issue 15);
3. gate (``gated=True``): keep a hit only if :func:`~langchain_recipe.scoring.passes_gate`
   (``s(q, k) > s(q, Θ)``, strict: a tie applies no edit); the only place a read gates;
4. load: read the payloads (and stored vectors) of the hits the engine did not return with them;
5. keep the tenant's own points.

:func:`retrieved_edit` is the one conversion of a point into a :class:`RetrievedEdit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from langchain_recipe._validation import check_text, is_utf8
from langchain_recipe._warnings import warn_at_caller
from langchain_recipe.errors import InvalidInputError, QueryTruncatedWarning
from langchain_recipe.knowledge_store._collection import SCROLL_PAGE, StoreState
from langchain_recipe.knowledge_store._key_index import KeyIndex
from langchain_recipe.knowledge_store._schema import (
    DEFAULT_TENANT,
    KEY_VECTOR,
    MULTIVECTOR,
    PROMPT_FIELD,
    KnowledgeEdit,
    RetrievedEdit,
    check_filter_integers,
    check_provenance,
    decode_prompt_payload,
    edit_point_id,
    metadata_conditions,
)
from langchain_recipe.knowledge_store._sparse import PREFETCH, fuse_hits, sparse_candidates
from langchain_recipe.scoring import gate_scores, passes_gate
from langchain_recipe.scoring import sentinel_scores as scores_against_sentinel

__all__ = [
    "Hit",
    "SearchMethods",
    "retrieve_points",
    "retrieved_edit",
    "score_hits",
    "scroll_edits",
    "search_points",
    "tenant_filter",
    "tenants",
]


@dataclass
class Hit:
    """One search result: the point id, ``s(q, k)`` (dimensionless) and the point's record.

    The record (``payload``, ``vector``) is ``None`` until loaded; ``key`` is the stored key
    ``r_k / sqrt(d_r)``, shape `(knowledge_dim,)` float32, that :func:`score_hits` scores.
    """

    point_id: str
    score: float
    record: Any = None
    key: torch.Tensor | None = None


def tenant_filter(state: StoreState, tenant: str, metadata: Any = None, **provenance: str | None) -> Any:
    """A ``models.Filter`` for ``tenant``'s points; ``None`` when nothing needs filtering.

    It adds equality on metadata keys (a list value matches any of it) and provenance fields; a
    ``models.Filter`` given as ``metadata`` is combined as is. A dict's key is one metadata key,
    whatever characters it holds (``{"user.id": "u1"}`` matches ``metadata["user.id"]``, not
    ``metadata["user"]["id"]``: use a ``models.Filter`` on ``"metadata.user.id"`` for that).

    Raises:
        InvalidInputError: ``metadata`` is neither a dict nor a ``models.Filter``, holds a value
            that is not a string, int, bool or a list of them, an integer beyond 64 bits, or a
            key that Qdrant cannot name in a filter (one with a double quote or a backslash).
    """
    from qdrant_client import models

    must: list[Any] = []
    if not (state.sole_writer and state.local_tenants <= {tenant}):
        must.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)))
    for name, value in provenance.items():
        if value is not None:
            must.append(models.FieldCondition(key=name, match=models.MatchValue(value=check_provenance(name, value))))
    if isinstance(metadata, models.Filter):
        check_filter_integers(metadata)
        must.append(metadata)
    elif metadata is not None:
        must.extend(metadata_conditions(metadata))
    return models.Filter(must=must) if must else None


def _selectors(prompt_storage: str, *, with_prompt: bool, with_key: bool = False) -> tuple[Any, Any]:
    """``with_payload`` and ``with_vectors`` for reading points.

    Points are read with or without their continuous prompt (a payload field or a multivector) and stored key.
    """
    from qdrant_client import models

    multivector = prompt_storage == MULTIVECTOR
    payload: Any = True if with_prompt and not multivector else models.PayloadSelectorExclude(exclude=[PROMPT_FIELD])
    vectors: Any = [PROMPT_FIELD] if with_prompt and multivector else False
    if with_key:
        vectors = [*(vectors or []), KEY_VECTOR]
    return payload, vectors


def retrieve_points(state: StoreState, tenant: str, ids: Sequence[str], *, with_prompt: bool = False) -> list[Any]:
    """The records of ``tenant``'s edits with these ids, in the given order; unknown ids skipped."""
    if isinstance(ids, str):
        ids = [ids]
    ids = [i for i in ids if isinstance(i, str) and is_utf8(i)]  # no other id can be stored
    if not ids:
        return []
    payload, vectors = _selectors(state.prompt_storage, with_prompt=with_prompt, with_key=with_prompt)
    with state.reading():
        points = state.engine.retrieve(
            state.collection_name, [edit_point_id(i, tenant) for i in ids], with_payload=payload, with_vectors=vectors
        )
    order = {edit_id: n for n, edit_id in enumerate(ids)}
    mine = [p for p in points if p.payload.get("tenant") == tenant]
    return sorted(mine, key=lambda p: order.get(p.payload["edit_id"], len(order)))


def scroll_edits(
    state: StoreState, tenant: str, *, filter: Any = None, limit: int | None = None, **provenance: Any
) -> list[KnowledgeEdit]:
    """``tenant``'s edits matching ``filter`` and provenance (see :func:`tenant_filter`), at most ``limit``."""
    records: list[KnowledgeEdit] = []
    offset = None
    payload, _ = _selectors(state.prompt_storage, with_prompt=False)
    with state.reading():  # the filter and every page under one hold (see StoreState.reading)
        query_filter = tenant_filter(state, tenant, filter, **provenance)
        while True:
            points, offset = state.engine.scroll(
                state.collection_name,
                scroll_filter=query_filter,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=payload,
            )
            records.extend(KnowledgeEdit.from_payload(p.payload) for p in points)
            if offset is None or (limit is not None and len(records) >= limit):
                return records[:limit] if limit is not None else records


def tenants(state: StoreState) -> list[str]:
    """Every tenant that holds at least one edit in the collection, sorted."""
    found: set[str] = set()
    offset = None
    while True:
        with state.reading():
            points, offset = state.engine.scroll(
                state.collection_name, limit=SCROLL_PAGE, offset=offset, with_payload=["tenant"]
            )
        found.update(p.payload.get("tenant", DEFAULT_TENANT) for p in points)
        if offset is None:
            return sorted(found)


def search_points(
    state: StoreState,
    tenant: str,
    query_keys: torch.Tensor,
    sentinel_scores: torch.Tensor,
    k: int,
    *,
    gated: bool,
    filter: Any = None,
    exclude: Sequence[str] = (),
    with_prompt: bool = True,
    with_key: bool = False,
    queries: Sequence[str] | None = None,
) -> list[list[Hit]]:
    """The read chain (see the module docstring): ``tenant``'s ``k`` best points per query, best first.

    Gated when ``gated``.

    Args:
        state: the store's shared state (engine, collection, key index, lock).
        tenant: the tenant whose points are searched.
        query_keys: query representations r_q, shape `(num_queries, knowledge_dim)`.
        sentinel_scores: ``s(q, Θ)``, shape `(num_queries,)`.
        k: points per query, before the gate.
        gated: keep only points that pass the knowledge sentinel gate.
        filter: a user filter (see :func:`tenant_filter`).
        exclude: point ids never returned.
        with_prompt: read the continuous prompt with each point.
        with_key: read the stored key (``record.vector[KEY_VECTOR]``) with each point.
        queries: the questions' texts; in a hybrid collection they rank with the sparse vector
            too (:mod:`._sparse`). ``None``: dense ranking alone.

    Returns:
        One list of :class:`Hit` (records loaded) per query.
    """
    payload, vectors = _selectors(state.prompt_storage, with_prompt=with_prompt, with_key=with_key)
    use_index = state.sole_writer and filter is None
    hybrid = state.hybrid and queries is not None
    limit = max(k, PREFETCH) if hybrid else k
    _, with_keys = _selectors(state.prompt_storage, with_prompt=with_prompt, with_key=True)
    with state.lock if use_index else state.reading():
        if use_index:
            ranked = _rank_with_key_index(state, tenant, query_keys, limit, exclude)
        else:
            ranked = _rank_with_engine(state, tenant, query_keys, limit, filter, exclude, payload, with_keys)
        if hybrid:
            query_filter = _query_filter(state, tenant, filter, exclude)
            ranked = _fused(state, list(queries or ()), ranked, query_keys, k, query_filter, (payload, with_keys))
        ranked = score_hits(ranked, query_keys, sentinel_scores if gated else None, keep_order=hybrid)
        _load_records(state, ranked, payload, vectors)
    return [[h for h in row if h.record is not None and h.record.payload.get("tenant") == tenant] for row in ranked]


def _rank_with_key_index(
    state: StoreState, tenant: str, query_keys: torch.Tensor, k: int, exclude: Sequence[str]
) -> list[list[Hit]]:
    """Step 1 from the float32 key index (call under the lock); filled from the collection on first use."""
    if state.key_index is None:
        index = KeyIndex(state.recipe_model.config.knowledge_dim)
        offset = None
        while True:
            points, offset = state.engine.scroll(
                state.collection_name,
                limit=SCROLL_PAGE * 4,
                offset=offset,
                with_payload=["tenant"],
                with_vectors=[KEY_VECTOR],
            )
            if points:
                index.upsert(
                    [str(p.id) for p in points],
                    [p.vector[KEY_VECTOR] for p in points],
                    [(p.payload or {}).get("tenant", DEFAULT_TENANT) for p in points],
                )
            if offset is None:
                break
        state.key_index = index
    found = state.key_index.search(query_keys, k, tenant=tenant, exclude=exclude)
    keys = state.key_index.stored_keys([point_id for row in found for point_id, _ in row]).unbind()
    flat = iter(keys)
    return [[Hit(point_id, score, key=next(flat)) for point_id, score in row] for row in found]


def _rank_with_engine(
    state: StoreState,
    tenant: str,
    query_keys: torch.Tensor,
    k: int,
    filter: Any,
    exclude: Sequence[str],
    payload: Any,
    vectors: Any,
) -> list[list[Hit]]:
    """Step 1 (and 3) from the engine: one batched query, records included."""
    from qdrant_client import models

    query_filter = _query_filter(state, tenant, filter, exclude)
    requests = [
        models.QueryRequest(
            query=query_keys[i].tolist(),
            using=KEY_VECTOR,
            limit=k,
            filter=query_filter,
            with_payload=payload,
            with_vector=vectors,
        )
        for i in range(query_keys.shape[0])
    ]
    responses = state.engine.query_batch_points(state.collection_name, requests) if requests else []
    return [
        [
            Hit(str(p.id), float(p.score), p, torch.tensor(p.vector[KEY_VECTOR], dtype=torch.float32))
            for p in found.points
        ]
        for found in responses
    ]


def _query_filter(state: StoreState, tenant: str, filter: Any, exclude: Sequence[str]) -> Any:
    """:func:`tenant_filter` with the ``exclude`` ids left out (``None``: nothing to filter)."""
    from qdrant_client import models

    query_filter = tenant_filter(state, tenant, filter)
    if exclude:
        query_filter = query_filter or models.Filter()
        query_filter.must_not = [models.HasIdCondition(has_id=list(exclude))]
    return query_filter


def _fused(
    state: StoreState,
    queries: list[str],
    ranked: list[list[Hit]],
    query_keys: torch.Tensor,
    k: int,
    query_filter: Any,
    selectors: tuple[Any, Any],
) -> list[list[Hit]]:
    """Hybrid ranking: the dense candidates and the sparse top-N, each scored by ``gate_scores``, top-``k`` fused."""
    known = [{hit.point_id for hit in row} for row in ranked]
    limit = max(k, PREFETCH)
    sparse, new = sparse_candidates(state, queries, known, limit, query_filter, selectors)
    for row, records in zip(ranked, new, strict=True):
        row.extend(Hit(str(p.id), 0.0, p, torch.tensor(p.vector[KEY_VECTOR], dtype=torch.float32)) for p in records)
    ranked = score_hits(ranked, query_keys)
    return [fuse_hits(row, sparse[i], state.hybrid_weight, k) for i, row in enumerate(ranked)]


def score_hits(
    ranked: list[list[Hit]], query_keys: torch.Tensor, sentinel_scores: Any = None, *, keep_order: bool = False
) -> list[list[Hit]]:
    """Steps 2 and 3: every hit's ``s(q, k)`` by :func:`~langchain_recipe.scoring.gate_scores`, best first, gated.

    One call for all hits, whatever path ranked them, so that a query's scores and verdict do
    not depend on the engine; hits with equal scores keep the ranking path's order.

    Args:
        ranked: per query, the hits of the ranking path, each with its stored ``key``.
        query_keys: r_q, shape `(num_queries, knowledge_dim)`.
        sentinel_scores: ``s(q, Θ)``, shape `(num_queries,)`
            (:func:`~langchain_recipe.scoring.sentinel_scores`); ``None``: not gated.

        keep_order: keep the given order (a hybrid ranking's fused order) instead of sorting by score.

    Returns:
        Per query, the hits (``score`` replaced) in descending score (or their order), only
        those that pass the gate when ``sentinel_scores`` is given.
    """
    rows = [i for i, row in enumerate(ranked) for _ in row]
    if rows:
        keys = torch.stack([hit.key for row in ranked for hit in row])  # type: ignore[misc]
        scores = iter(gate_scores(query_keys[rows], keys).tolist())
        for row in ranked:
            for hit in row:
                hit.score = next(scores)
    out = []
    for i, row in enumerate(ranked):
        row = list(row) if keep_order else sorted(row, key=lambda hit: -hit.score)
        if sentinel_scores is not None:
            row = [hit for hit in row if passes_gate(hit.score, float(sentinel_scores[i]))]
        out.append(row)
    return out


def _load_records(state: StoreState, ranked: list[list[Hit]], payload: Any, vectors: Any) -> None:
    """Step 3: read the records of hits that have none, by id, in one request."""
    wanted = sorted({h.point_id for row in ranked for h in row if h.record is None})
    if not wanted:
        return
    records = {
        str(r.id): r
        for r in state.engine.retrieve(state.collection_name, wanted, with_payload=payload, with_vectors=vectors)
    }
    for row in ranked:
        for hit in row:
            if hit.record is None:
                hit.record = records.get(hit.point_id)


def prompt_of(prompt_storage: str, record: Any) -> torch.Tensor:
    """A record's continuous prompt, shape `(num_prompt_tokens, lm_hidden_size)`, float32."""
    if prompt_storage == MULTIVECTOR:
        return torch.tensor(record.vector[PROMPT_FIELD])
    return decode_prompt_payload(record.payload[PROMPT_FIELD])


def retrieved_edit(hit: Hit, sentinel_score: float, prompt_storage: str, *, with_prompt: bool) -> RetrievedEdit:
    """The :class:`RetrievedEdit` of a search hit (``prompt`` empty without ``with_prompt``)."""
    payload = hit.record.payload
    return RetrievedEdit(
        edit_id=payload["edit_id"],
        statement=payload["statement"],
        metadata=dict(payload.get("metadata") or {}),
        score=hit.score,
        sentinel_score=sentinel_score,
        prompt=prompt_of(prompt_storage, hit.record) if with_prompt else torch.empty(0),
        tenant=payload.get("tenant", DEFAULT_TENANT),
    )


class SearchMethods:
    """The knowledge store's query-side methods: encoding questions and searching (RECIPE §3.3)."""

    @property
    def retrieval(self) -> str:
        """``"dense"`` or ``"hybrid"``: how the collection ranks edits (recorded in it, see :mod:`._sparse`)."""
        return self._shared.retrieval

    @torch.no_grad()
    def encode_queries(self, queries: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Query representations and their sentinel scores ``s(q, Θ)`` (RECIPE §3.3).

        Shapes `(num_queries, knowledge_dim)` and `(num_queries,)`.

        Raises:
            InvalidInputError: a query is empty, not a string or not valid Unicode.
        """
        queries = [check_text(query, f"Query {index}") for index, query in enumerate(queries)]
        truncated = self.recipe_model.truncated_queries(queries)
        if truncated:
            warn_at_caller(
                f"{len(truncated)} quer{'y is' if len(truncated) == 1 else 'ies are'} longer than the "
                f"{self.recipe_model.config.encoder_max_length} encoder tokens the query encoder reads (query "
                f"{truncated[0]}: {queries[truncated[0]][:60]!r}...); retrieval sees only the beginning. Ask "
                "shorter questions, or put the question first.",
                QueryTruncatedWarning,
            )
        query_keys = self.recipe_model.encode_queries(queries).float().cpu()
        return query_keys, self._sentinel_scores(query_keys)

    def _sentinel_scores(self, query_keys: torch.Tensor) -> torch.Tensor:
        """``s(q, Θ)`` of query representations `(num_queries, knowledge_dim)`: shape `(num_queries,)`.

        By :func:`~langchain_recipe.scoring.sentinel_scores` (float64), the arithmetic the read
        chain scores hits with, so a tie is a tie on every engine.
        """
        return scores_against_sentinel(query_keys, self._sentinel_key)

    def search(self, query: str, k: int = 1, *, gated: bool = False, filter: Any = None) -> list[RetrievedEdit]:
        """The ``k`` edits of this tenant most similar to ``query``, best first.

        The edits come with their gate verdicts and continuous prompts.

        Args:
            query: the user's question (only the question: never a candidate answer).
            k: how many edits.
            gated: keep only edits that pass the sentinel gate (``s > s_Θ``).
            filter: see :meth:`list_edits`.
        """
        return self.search_batch([check_text(query, "The query")], k=k, gated=gated, filter=filter)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 1,
        *,
        gated: bool = False,
        filter: Any = None,
        with_prompt: bool = True,
    ) -> list[list[RetrievedEdit]]:
        """:meth:`search` for many queries with one encoder pass and one batched Qdrant request.

        ``with_prompt=False`` skips reading continuous prompts (``prompt`` is then an empty
        tensor), for callers that need only statements and scores.

        Raises:
            InvalidInputError: a single string instead of a list, or ``k`` not a positive int.
        """
        if isinstance(queries, (str, bytes)):
            msg = "Pass a list of queries, not a single string (e.g. search_batch([query]))."
            raise InvalidInputError(msg)
        if not queries:
            return []
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be a positive int, got {k!r}."
            raise InvalidInputError(msg)
        query_keys, sentinel_scores = self.encode_queries(queries)
        hits = search_points(
            self._shared,
            self.tenant,
            query_keys,
            sentinel_scores,
            k,
            gated=gated,
            filter=filter,
            with_prompt=with_prompt,
            queries=queries,
        )
        return [
            [retrieved_edit(h, float(sentinel_scores[i]), self.prompt_storage, with_prompt=with_prompt) for h in row]
            for i, row in enumerate(hits)
        ]

    def retrieve_prompts(self, queries: Sequence[str]) -> list[RetrievedEdit | None]:
        """For each query, the best edit if it passes the sentinel gate, else ``None``."""
        return [found[0] if found else None for found in self.search_batch(queries, k=1, gated=True)]
