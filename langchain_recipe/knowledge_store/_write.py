"""Writing edits: a checked batch in, one encoder pass, conflicts, points, sized upserts.

An edit's way in (RECIPE §3.2):

1. :func:`checked_batch`: the statements, ids, metadata and provenance are checked once, and
   each edit's Qdrant point id is computed once (:class:`EditBatch`);
2. :func:`write_edits` encodes the statements (outside the lock), then, under the lock, reads
   the ids' previous edits, finds the conflicts, builds the points and upserts them in requests
   sized for the engine, and deletes what a ``"replace"`` policy replaces;
3. it returns :class:`WrittenEdits`: the ids, and the conflicts and replaced edits it found.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import torch

from langchain_recipe._warnings import warn_at_caller
from langchain_recipe.errors import (
    CheckpointError,
    EditConflictError,
    EditConflictWarning,
    InvalidInputError,
    StoreError,
)
from langchain_recipe.knowledge_store._collection import StoreState, register_tenant
from langchain_recipe.knowledge_store._conflicts import earlier_candidates, is_conflict, subject_of
from langchain_recipe.knowledge_store._read import search_points
from langchain_recipe.knowledge_store._schema import (
    DEFAULT_TENANT,
    KEY_VECTOR,
    MULTIVECTOR,
    PROMPT_FIELD,
    KnowledgeEdit,
    check_ids,
    check_metadata,
    check_provenance,
    check_statements,
    edit_point_id,
    encode_prompt_payload,
    scaled_key,
)
from langchain_recipe.knowledge_store._sparse import SPARSE_VECTOR, sparse_document

if TYPE_CHECKING:
    from langchain_recipe.knowledge_store._store import RecipeKnowledgeStore

__all__ = [
    "EditBatch",
    "WrittenEdits",
    "build_point",
    "check_policy",
    "checked_batch",
    "delete_points",
    "upsert_points",
    "write_edits",
]

logger = logging.getLogger(__name__)

ENCODE_BATCH = 32
_MAX_POINTS_PER_REQUEST = 256
CONFLICT_POLICIES = ("replace", "keep_both", "refuse")
_CONFLICT_CANDIDATES = 3
"""The conflict check tests each new statement against this many stored edits, and as many earlier
statements of its batch: the best-scoring ones that pass the sentinel gate."""


class WrittenEdits(list[str]):
    """The ids of the edits a write stored, in input order, and what the write found.

    A ``list``, as ``add_knowledge`` always returned.

    Attributes:
        conflicts: for each new id, the live edits it conflicts with (same subject, same relation)
            that were kept alongside it, best first (its ``KnowledgeEdit.conflicts_with``).
        replaced: the edits a ``"replace"`` policy deleted, by id.
    """

    def __init__(
        self, ids: Sequence[str], conflicts: dict[str, list[KnowledgeEdit]], replaced: list[KnowledgeEdit]
    ) -> None:
        super().__init__(ids)
        self.conflicts = conflicts
        self.replaced = replaced


@dataclass
class EditBatch:
    """Checked edits of one tenant, ready to write; ``point_ids`` is computed once here."""

    tenant: str
    ids: list[str]
    statements: list[str]
    metadatas: list[dict[str, Any]]
    sources: list[str | None]
    author: str | None = None
    created: dict[str, str | None] = field(default_factory=dict)
    updated: dict[str, str | None] = field(default_factory=dict)
    point_ids: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.point_ids = [edit_point_id(i, self.tenant) for i in self.ids]


def check_policy(policy: Any) -> str:
    """``policy`` itself when it is a conflict policy.

    Raises:
        InvalidInputError: it is none of ``"replace"``, ``"keep_both"``, ``"refuse"``.
    """
    if policy not in CONFLICT_POLICIES:
        msg = f"on_conflict must be one of {CONFLICT_POLICIES}, got {policy!r}."
        raise InvalidInputError(msg)
    return policy


def checked_batch(
    state: StoreState,
    tenant: str,
    statements: Sequence[str],
    metadatas: Sequence[dict[str, Any]] | None,
    ids: Sequence[str] | None,
    *,
    source: str | None,
    author: str | None,
    sources: Sequence[str | None] | None = None,
) -> EditBatch:
    """The one check of what a caller asks to write.

    ``sources`` (one per statement) overrides ``source``, which otherwise falls back to each
    ``metadata["source"]`` string.

    Raises:
        InvalidInputError: an empty or non-string statement, lengths that differ, duplicate ids,
            metadata that is not a JSON-serialisable dict, a non-string source or author, or a
            statement the RecipeModel cannot encode faithfully (too long, a control token).
    """
    statements = check_statements(statements)
    ids = check_ids(ids, len(statements))
    metadatas = [{} for _ in statements] if metadatas is None else list(metadatas)
    if not (len(ids) == len(metadatas) == len(statements)):
        msg = f"Got {len(statements)} statements, {len(metadatas)} metadatas and {len(ids)} ids; they must match."
        raise InvalidInputError(msg)
    metadatas = [check_metadata(m, f"Metadata {i}") for i, m in enumerate(metadatas)]
    check_provenance("source", source)
    check_provenance("author", author)
    if sources is None:
        sources = [source if source is not None else _string(m.get("source")) for m in metadatas]
    if statements:
        state.recipe_model.check_statements(statements, state.base_model)
    return EditBatch(tenant, ids, statements, metadatas, list(sources), author)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@torch.no_grad()
def encode_statements(state: StoreState, statements: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keys, continuous prompts and query representations of knowledge statements, one encoder pass, float32.

    Shapes `(n, knowledge_dim)`, `(n, num_prompt_tokens, lm_hidden_size)` and `(n, knowledge_dim)`.
    """
    keys, prompts, query_keys = state.recipe_model.encode_edits_with_queries(
        statements, state.base_model, batch_size=ENCODE_BATCH
    )
    return keys.float().cpu(), prompts.float().cpu(), query_keys.float().cpu()


def write_edits(
    store: RecipeKnowledgeStore, batch: EditBatch, *, policy: str, require: Literal["new", "existing"] | None = None
) -> WrittenEdits:
    """Encode (outside the lock), then check ids and conflicts and upsert under the lock.

    ``require="new"``: refuse ids that exist; ``"existing"``: refuse ids that do not (both
    checked under the lock, so a concurrent write or delete cannot slip in between).

    Raises:
        CheckpointError: the RecipeModel made NaN or infinite keys or prompts.
        InvalidInputError: ``require`` is not met, or an id names another tenant's point.
        EditConflictError: a conflict under ``policy="refuse"``.
    """
    state = store._shared
    keys, prompts, query_keys = encode_statements(state, batch.statements)
    if not (torch.isfinite(keys).all() and torch.isfinite(prompts).all()):
        msg = (
            "The RecipeModel turned these statements into NaN or infinite keys or continuous prompts; its "
            "weights are broken (a diverged training run or a corrupted checkpoint). Load a good checkpoint. "
            "Nothing was written."
        )
        raise CheckpointError(msg)
    sentinel_scores = store._sentinel_scores(query_keys)
    with state.lock:
        previous = _previous_edits(state, batch)
        _check_required(batch, previous, require)
        conflicts = find_conflicts(state, batch, keys, query_keys, sentinel_scores)
        if policy == "refuse":
            _refuse(batch, conflicts)
        written = _outcome(batch, conflicts, policy)
        now = datetime.now(timezone.utc).isoformat()
        points = []
        for i, edit_id in enumerate(batch.ids):
            kept = [e.edit_id for e in written.conflicts[edit_id]]
            payload = _payload(batch, i, previous, conflicts[i], kept, now)
            points.append(build_point(state, batch.point_ids[i], payload, keys[i], prompts[i]))
        register_tenant(state, batch.tenant)
        upsert_points(state, points, store.max_request_bytes)
        if written.replaced:
            delete_points(state, [edit_point_id(e.edit_id, batch.tenant) for e in written.replaced])
    _report(batch.tenant, conflicts, written, policy)
    return written


def _check_required(batch: EditBatch, previous: dict[str, KnowledgeEdit], require: str | None) -> None:
    if require == "new" and previous:
        msg = (
            f"An edit with id {sorted(previous)[0]!r} already exists in tenant {batch.tenant!r}; nothing was "
            "written. Use update_knowledge to change it, or another id."
        )
        raise InvalidInputError(msg)
    if require == "existing" and (missing := [i for i in batch.ids if i not in previous]):
        msg = (
            f"No edit with id {missing[0]!r} in tenant {batch.tenant!r} (deleted meanwhile?); use add_knowledge "
            "to create it."
        )
        raise InvalidInputError(msg)


def _refuse(batch: EditBatch, conflicts: list[list[KnowledgeEdit]]) -> None:
    index = next((i for i, found in enumerate(conflicts) if found), None)
    if index is None:
        return
    existing = conflicts[index]
    msg = (
        f"The statement {batch.statements[index]!r} (id {batch.ids[index]!r}) conflicts with the existing edit "
        f"{existing[0].edit_id!r} ({existing[0].statement!r}): same subject, same relation. Nothing was written. "
        "Pass on_conflict='replace' to replace it, on_conflict='keep_both' to keep both, or update that edit "
        "with update_knowledge."
    )
    raise EditConflictError(msg, statement=batch.statements[index], existing=existing)


def _outcome(batch: EditBatch, conflicts: list[list[KnowledgeEdit]], policy: str) -> WrittenEdits:
    """What the policy makes of the conflicts: edits of this batch are never replaced."""
    batch_ids = set(batch.ids)
    replacing = policy == "replace"
    kept = {
        edit_id: [e for e in found if e.edit_id in batch_ids or not replacing]
        for edit_id, found in zip(batch.ids, conflicts, strict=False)
    }
    replaced = {e.edit_id: e for found in conflicts for e in found if e.edit_id not in batch_ids} if replacing else {}
    return WrittenEdits(batch.ids, kept, [replaced[i] for i in sorted(replaced)])


def _payload(
    batch: EditBatch,
    i: int,
    previous: dict[str, KnowledgeEdit],
    matched: list[KnowledgeEdit],
    kept: list[str],
    now: str,
) -> dict[str, Any]:
    """Edit ``i``'s payload.

    What the batch holds, provenance kept from its previous edit, and the ids it conflicts with
    (``kept``) or replaces (the other ``matched``).
    """
    edit_id = batch.ids[i]
    old = previous.get(edit_id)
    return {
        "edit_id": edit_id,
        "statement": batch.statements[i],
        "metadata": batch.metadatas[i],
        "tenant": batch.tenant,
        "source": batch.sources[i],
        "author": batch.author,
        "created_at": batch.created.get(edit_id) or (old.created_at if old else None) or now,
        "updated_at": batch.updated.get(edit_id) or now,
        "conflicts_with": kept,
        "replaces": [e.edit_id for e in matched if e.edit_id not in kept],
    }


def _report(tenant: str, conflicts: list[list[KnowledgeEdit]], written: WrittenEdits, policy: str) -> None:
    """Warn about conflicting edits that were kept; log the replaced ones."""
    replaced = [e.edit_id for e in written.replaced]
    kept = sorted({e.edit_id for found in conflicts for e in found} - set(replaced))
    if kept:
        why = (
            "statements of one batch never replace each other"
            if policy == "replace"
            else "on_conflict='keep_both'; pass on_conflict='replace' or 'refuse' otherwise"
        )
        warn_at_caller(
            f"{len(kept)} existing edit(s) ({', '.join(kept[:5])}{', ...' if len(kept) > 5 else ''}) conflict with "
            f"new statements (same subject, same relation) and were kept alongside them ({why}); see "
            "KnowledgeEdit.conflicts_with.",
            EditConflictWarning,
        )
    if replaced:
        logger.info("Replaced %d conflicting edit(s) in tenant %r: %s", len(replaced), tenant, replaced)


def _previous_edits(state: StoreState, batch: EditBatch) -> dict[str, KnowledgeEdit]:
    """The stored edits of the batch's ids (call under the lock).

    Refuses ids whose Qdrant point holds another tenant's edit.
    :func:`edit_point_id` maps every ``(tenant, edit_id)`` pair to its own point, so this is
    an integrity guard: a point that holds another tenant's edit can only come from another
    writer (or an earlier build's mapping, where a default-tenant id spelled
    ``'["acme", "ceo"]'`` named tenant ``acme``'s point of ``"ceo"``), and an upsert there
    would overwrite that tenant's edit.

    Raises:
        InvalidInputError: such an id (the message names neither the other tenant nor its edit).
    """
    from qdrant_client import models

    owners = dict(zip(batch.point_ids, batch.ids, strict=False))
    with state.reading():
        points = state.engine.retrieve(
            state.collection_name, batch.point_ids, with_payload=models.PayloadSelectorExclude(exclude=[PROMPT_FIELD])
        )
    for point in points:
        payload = point.payload or {}
        edit_id = owners.get(str(point.id))
        if payload.get("tenant", DEFAULT_TENANT) != batch.tenant or payload.get("edit_id") != edit_id:
            msg = (
                f"The edit id {edit_id!r} is reserved in tenant {batch.tenant!r}: it names the storage point of an "
                "edit in another tenant. Nothing was written; choose another id (e.g. without brackets and quotes)."
            )
            raise InvalidInputError(msg)
    return {p.payload["edit_id"]: KnowledgeEdit.from_payload(p.payload) for p in points}


def find_conflicts(
    state: StoreState, batch: EditBatch, keys: torch.Tensor, query_keys: torch.Tensor, sentinel_scores: torch.Tensor
) -> list[list[KnowledgeEdit]]:
    """For each new statement, the live edits (stored, or earlier in this batch) it conflicts with, best first.

    :func:`~._conflicts.is_conflict` (same subject, same relation) applied to the
    ``_CONFLICT_CANDIDATES`` stored edits and as many earlier statements of the batch that the
    statement, run as a query, scores best past the sentinel gate.

    Args:
        state: the store's shared state (engine, collection, lock).
        batch: the checked edits being written (their tenant, ids and statements).
        keys: the statements' keys r_k, shape `(n, knowledge_dim)`.
        query_keys: the statements' query representations r_q, shape `(n, knowledge_dim)`.
        sentinel_scores: their ``s(q, Θ)``, shape `(n,)`.
    """
    stored = search_points(
        state,
        batch.tenant,
        query_keys,
        sentinel_scores,
        _CONFLICT_CANDIDATES,
        gated=True,
        exclude=batch.point_ids,
        with_prompt=False,
    )
    unit_keys = torch.nn.functional.normalize(keys, dim=-1)
    best_scores, best_indices = earlier_candidates(query_keys, keys, sentinel_scores, _CONFLICT_CANDIDATES)
    found: list[list[KnowledgeEdit]] = []
    for i, hits in enumerate(stored):
        candidates: list[tuple[float, KnowledgeEdit, float | None]] = []  # (s(q, k), edit, key cosine)
        for hit in hits:  # each with its stored key (Hit.key), whatever path ranked it
            cosine = float(unit_keys[i] @ torch.nn.functional.normalize(hit.key, dim=-1))
            candidates.append((hit.score, KnowledgeEdit.from_payload(hit.record.payload), cosine))
        for score, j in zip(best_scores[i].tolist(), best_indices[i].tolist(), strict=False):
            if score != float("-inf"):
                edit = KnowledgeEdit(batch.ids[j], batch.statements[j], batch.metadatas[j], tenant=batch.tenant)
                candidates.append((score, edit, float(unit_keys[i] @ unit_keys[j])))
        found.append(_conflicting(batch, i, candidates, float(sentinel_scores[i])))
    return found


def _conflicting(
    batch: EditBatch, i: int, candidates: list[tuple[float, KnowledgeEdit, float | None]], sentinel_score: float
) -> list[KnowledgeEdit]:
    return [
        edit
        for score, edit, cosine in sorted(candidates, key=lambda c: -c[0])
        if is_conflict(
            batch.statements[i],
            edit.statement,
            score=score,
            sentinel_score=sentinel_score,
            key_cosine=cosine,
            new_subject=subject_of(batch.metadatas[i]),
            old_subject=subject_of(edit.metadata),
        )
    ]


def build_point(
    state: StoreState, point_id: str, payload: dict[str, Any], key: torch.Tensor, prompt: torch.Tensor
) -> Any:
    """An edit's ``models.PointStruct``: the stored key, the continuous prompt and the payload.

    A hybrid collection's point also gets the statement's sparse vector (:func:`~._sparse.sparse_document`).

    The key is stored as r_k / sqrt(d_r), the prompt `(num_prompt_tokens, lm_hidden_size)` as the
    collection keeps it.

    Raises:
        StoreError: a prompt value does not fit in float16 (payload storage).
    """
    from qdrant_client import models

    vector: dict[str, Any] = {KEY_VECTOR: scaled_key(key, state.recipe_model.config.knowledge_dim)}
    if state.prompt_storage == MULTIVECTOR:
        vector[PROMPT_FIELD] = prompt.float().tolist()
    else:
        payload = {**payload, PROMPT_FIELD: encode_prompt_payload(prompt)}
    if state.hybrid:
        vector[SPARSE_VECTOR] = sparse_document(payload["statement"], state.average_length)
    return models.PointStruct(id=point_id, vector=vector, payload=payload)


def upsert_points(
    state: StoreState, points: list[Any], max_request_bytes: int, *, collection_name: str | None = None
) -> None:
    """Upsert points in requests of at most ``max_request_bytes``, mirroring them in the key index.

    Raises:
        StoreError: one point alone is larger than ``max_request_bytes`` (server engines).
    """
    name = collection_name or state.collection_name
    with state.lock:
        for batch in request_batches(points, max_request_bytes, in_process=state.capabilities.in_process):
            state.engine.upsert(name, batch, wait=True)
            if state.key_index is not None and name == state.collection_name:
                tenants = [p.payload["tenant"] for p in batch]
                state.key_index.upsert([str(p.id) for p in batch], [p.vector[KEY_VECTOR] for p in batch], tenants)


def request_batches(points: list[Any], max_request_bytes: int, *, in_process: bool) -> Iterator[list[Any]]:
    """Split points so that each upsert's JSON body stays under ``max_request_bytes``.

    An in-process engine gets no HTTP request, so there the points are only chunked by count:
    sizing each point as JSON cost more than the write itself.

    Raises:
        StoreError: one point alone is over the limit.
    """
    if in_process:
        for start in range(0, len(points), _MAX_POINTS_PER_REQUEST):
            yield points[start : start + _MAX_POINTS_PER_REQUEST]
        return
    budget = max_request_bytes - 64  # '{"points":[...]}' and separators
    batch: list[Any] = []
    size = 0
    for point in points:
        point_bytes = len(point.model_dump_json(exclude_none=True)) + 1
        if point_bytes > budget:
            msg = (
                f"One edit is {point_bytes} bytes as JSON, over max_request_bytes={max_request_bytes}; "
                "raise max_request_bytes (and the server's service.max_request_size_mb)."
            )
            raise StoreError(msg)
        if batch and (size + point_bytes > budget or len(batch) >= _MAX_POINTS_PER_REQUEST):
            yield batch
            batch, size = [], 0
        batch.append(point)
        size += point_bytes
    if batch:
        yield batch


def delete_points(state: StoreState, point_ids: list[str]) -> None:
    """Delete points by id, from the collection and the key index."""
    from qdrant_client import models

    with state.lock:
        state.engine.delete(state.collection_name, models.PointIdsList(points=point_ids), wait=True)
        if state.key_index is not None:
            state.key_index.remove(point_ids)
