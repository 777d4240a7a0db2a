"""Background edits at scale, written through the knowledge store's own point builder (the benchmark's fast path).

Encoding 100k statements with the models would take hours on a CPU and measures nothing new, so
the suite stores *synthetic* edits: random knowledge representations with the norm of real ones,
random continuous prompts of the real shape, and a short statement payload. They skip the
encoders but not the store's schema: every point is built by
:class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore`'s write module (``build_point``: the key scaled
by ``1/sqrt(knowledge_dim)`` in the named vector ``key``, the continuous prompt as the float16
payload field ``prompt`` or as the multivector ``prompt``, whichever the store's
``prompt_storage`` is, the schema-2 payload ``edit_id`` / ``statement`` / ``metadata`` /
``tenant`` / ``source`` / ``author`` / timestamps, the point id ``edit_point_id(edit_id,
tenant)``) and written by its ``upsert_points`` (request-size batching), in the store's tenant. So a
synthetic point can never drift from what ``add_knowledge`` writes. Only the probed edits are
encoded for real.

Random keys point in random directions of the ``knowledge_dim``-dimensional space, so they are
nearly orthogonal to every query: they cost retrieval time like real keys but do not change which
edit a probe question retrieves. The suite checks that after every fill.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from langchain_recipe.knowledge_store import (
    DEFAULT_TENANT,
    KEY_VECTOR,
    MULTIVECTOR,
    PAYLOAD_FP16,
    PROMPT_FIELD,
    edit_point_id,
)
from langchain_recipe.knowledge_store._collection import register_tenant
from langchain_recipe.knowledge_store._write import build_point, upsert_points

if TYPE_CHECKING:
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

__all__ = ["EdgeCollection", "SyntheticEdits", "folder_bytes", "qdrant_edge_available"]

_CHUNK = 1000
SYNTHETIC_SOURCE = "benchmark"
"""Provenance ``source`` of every synthetic edit (so they can be listed or deleted by filter)."""


@dataclass
class SyntheticEdits:
    """Deterministic synthetic edits: edit ``i`` is the same wherever and whenever it is made.

    Attributes:
        knowledge_dim: size of a knowledge representation r_k.
        num_prompt_tokens: vectors per continuous prompt.
        lm_hidden_size: size of a prompt vector.
        key_norm: Euclidean norm of a knowledge representation r_k as the RecipeModel encodes
            it, *before* the store scales it by ``1/sqrt(knowledge_dim)`` (measure it on real
            edits).
        prompt_std: standard deviation of prompt entries (well inside the float16 range).
        seed: base random seed.
    """

    knowledge_dim: int
    num_prompt_tokens: int
    lm_hidden_size: int
    key_norm: float = 1.0
    prompt_std: float = 0.1
    seed: int = 0

    def chunk(
        self, start: int, count: int, tenant: str = DEFAULT_TENANT
    ) -> tuple[list[str], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Edits ``start .. start+count-1``: ``(edit_ids, keys, prompts, payloads)``.

        Args:
            start: index of the first edit.
            count: how many edits.
            tenant: the tenant written into each payload (the store's tenant when filling one).

        Returns:
            Edit ids; knowledge representations r_k, shape `(count, knowledge_dim)`, float32,
            unscaled (the store scales them); continuous prompts, shape
            `(count, num_prompt_tokens, lm_hidden_size)`, float32; payloads with the store's
            reserved fields (the prompt is added by the store's point builder).
        """
        rng = np.random.default_rng([self.seed, start, count])
        keys = rng.standard_normal((count, self.knowledge_dim), dtype=np.float32)
        keys *= self.key_norm / np.linalg.norm(keys, axis=1, keepdims=True)
        prompts = rng.standard_normal((count, self.num_prompt_tokens, self.lm_hidden_size), dtype=np.float32)
        prompts *= self.prompt_std
        now = datetime.now(timezone.utc).isoformat()
        ids = [f"synthetic-{start + i}" for i in range(count)]
        payloads = [
            {
                "edit_id": edit_id,
                "statement": f"Synthetic background statement number {start + i}.",
                "metadata": {},
                "tenant": tenant,
                "source": SYNTHETIC_SOURCE,
                "author": None,
                "created_at": now,
                "updated_at": now,
                "conflicts_with": [],
                "replaces": [],
            }
            for i, edit_id in enumerate(ids)
        ]
        return ids, keys, prompts, payloads

    def chunks(
        self, start: int, stop: int, tenant: str = DEFAULT_TENANT
    ) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, list[dict[str, Any]]]]:
        """:meth:`chunk` over ``start .. stop-1`` in pieces of 1000 (bounded memory)."""
        for first in range(start, stop, _CHUNK):
            yield self.chunk(first, min(_CHUNK, stop - first), tenant)

    def _check(self, store: RecipeKnowledgeStore) -> None:
        config = store.recipe_model.config
        shape = (config.knowledge_dim, config.num_prompt_tokens, config.lm_hidden_size)
        if shape != (self.knowledge_dim, self.num_prompt_tokens, self.lm_hidden_size):
            msg = (
                f"Synthetic edits of shape (knowledge_dim, num_prompt_tokens, lm_hidden_size) = "
                f"{(self.knowledge_dim, self.num_prompt_tokens, self.lm_hidden_size)} do not fit the store's "
                f"RecipeModel {shape}; build SyntheticEdits from store.recipe_model.config."
            )
            raise ValueError(msg)

    def fill_store(self, store: RecipeKnowledgeStore, start: int, stop: int) -> None:
        """Write edits ``start .. stop-1`` into ``store``'s collection, in its tenant.

        Exactly as ``add_knowledge`` writes points (the store's point builder and batched upsert),
        without encoding, conflict checks or sentinel work.

        Raises:
            ValueError: the edits' shapes do not match the store's RecipeModel.
            StoreError: a prompt value does not fit in float16 (payload storage).
        """
        self._check(store)
        register_tenant(store._shared, store.tenant)
        for points in self.points(store, start, stop):
            upsert_points(store._shared, points, store.max_request_bytes)

    def points(self, store: RecipeKnowledgeStore, start: int, stop: int) -> Iterator[list[Any]]:
        """Edits ``start .. stop-1`` as the store would write them, in pieces of 1000.

        Each is a qdrant-client ``PointStruct`` from the store's point builder, for writing to another engine.
        """
        self._check(store)
        for _, keys, prompts, payloads in self.chunks(start, stop, store.tenant):
            yield [
                build_point(
                    store._shared,
                    edit_point_id(payload["edit_id"], payload["tenant"]),
                    payload,
                    torch.from_numpy(keys[i]),
                    torch.from_numpy(prompts[i]),
                )
                for i, payload in enumerate(payloads)
            ]

    def fill_edge(self, collection: EdgeCollection, store: RecipeKnowledgeStore, start: int, stop: int) -> None:
        """Upsert edits ``start .. stop-1``, built by ``store``, into a qdrant-edge shard.

        Raises:
            ValueError: the shard's prompt storage differs from the store's.
        """
        if collection.prompt_storage != store.prompt_storage:
            msg = (
                f"The qdrant-edge shard keeps prompts as {collection.prompt_storage!r}, the store as "
                f"{store.prompt_storage!r}; make them equal."
            )
            raise ValueError(msg)
        for points in self.points(store, start, stop):
            collection.upsert(points)


def qdrant_edge_available() -> bool:
    """Whether ``qdrant-edge-py`` (the embedded Rust engine, module ``qdrant_edge``) imports."""
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


class EdgeCollection:
    """A qdrant-edge shard with the knowledge store's schema, for side-by-side retrieval timing.

    The shard has the named vector ``key`` (dot product) and the continuous prompt as the float16
    payload field ``prompt`` (:data:`~langchain_recipe.knowledge_store.PAYLOAD_FP16`) or as the
    float32 multivector ``prompt`` with no HNSW graph
    (:data:`~langchain_recipe.knowledge_store.MULTIVECTOR`), as the store declares them.

    Points come from the store's own point builder (:meth:`SyntheticEdits.fill_edge`), so ids,
    vectors and payloads are the store's.

    Args:
        path: an empty folder (created).
        knowledge_dim: key size.
        lm_hidden_size: prompt vector size.
        prompt_storage: the store's ``prompt_storage`` (``"payload_fp16"`` or ``"multivector"``).

    Raises:
        ImportError: ``qdrant-edge-py`` is not installed.
        ValueError: unknown ``prompt_storage``.
    """

    def __init__(
        self, path: str | Path, knowledge_dim: int, lm_hidden_size: int, prompt_storage: str = PAYLOAD_FP16
    ) -> None:
        import qdrant_edge as edge

        if prompt_storage not in (PAYLOAD_FP16, MULTIVECTOR):
            msg = f"prompt_storage must be {PAYLOAD_FP16!r} or {MULTIVECTOR!r}, got {prompt_storage!r}."
            raise ValueError(msg)
        self._edge = edge
        self.path = Path(path)
        self.prompt_storage = prompt_storage
        vectors = {KEY_VECTOR: edge.EdgeVectorParams(size=knowledge_dim, distance=edge.Distance.Dot)}
        if prompt_storage == MULTIVECTOR:
            vectors[PROMPT_FIELD] = edge.EdgeVectorParams(
                size=lm_hidden_size,
                distance=edge.Distance.Dot,
                multivector_config=edge.MultiVectorConfig(comparator=edge.MultiVectorComparator.MaxSim),
                datatype=edge.VectorStorageDatatype.Float32,
                hnsw_config=edge.HnswIndexConfig(
                    m=0, ef_construct=100, full_scan_threshold=10
                ),  # stored, never searched
            )
        config = edge.EdgeConfig(
            vectors=vectors,
            # Used only once optimize() builds the index; until then segments are searched in full.
            hnsw_config=edge.HnswIndexConfig(m=16, ef_construct=64, full_scan_threshold=1000),
        )
        self.shard = edge.EdgeShard.create(str(self.path), config)

    def upsert(self, points: list[Any]) -> None:
        """Insert or replace points built by the store, unchanged.

        The points are qdrant-client ``PointStruct`` s: id, named vectors, payload.
        """
        edge = self._edge
        self.shard.update(
            edge.UpdateOperation.upsert_points([edge.Point(str(p.id), p.vector, p.payload) for p in points])
        )

    def search(self, query_key: list[float], score_threshold: float | None = None) -> list[Any]:
        """The best point for a query representation r_q, with payload and continuous prompt.

        r_q is unscaled, as the store sends it; the point is requested as
        ``RecipeKnowledgeStore.search_batch`` does (prompt in the payload, or the ``prompt``
        multivector).
        """
        edge = self._edge
        multivector = self.prompt_storage == MULTIVECTOR
        request = edge.QueryRequest(
            limit=1,
            query=edge.Query.Nearest(query_key, using=KEY_VECTOR),
            with_payload=True,
            with_vector=[PROMPT_FIELD] if multivector else False,
            score_threshold=score_threshold,
        )
        return self.shard.query(request)

    def build_index(self) -> float:
        """Build the HNSW index of the keys (``EdgeShard.optimize``); return the seconds taken."""
        import time

        start = time.perf_counter()
        self.shard.optimize()
        return time.perf_counter() - start

    def disk_bytes(self) -> int:
        """Bytes on disk after a flush."""
        self.shard.flush()
        return folder_bytes(self.path)

    def close(self, *, remove: bool = True) -> None:
        """Close the shard (and delete its folder)."""
        self.shard.close()
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)


def folder_bytes(path: str | Path) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(file.stat().st_size for file in Path(path).rglob("*") if file.is_file())
