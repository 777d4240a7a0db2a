"""Background edits at scale, written straight through the Qdrant client (the benchmark's fast path).

Encoding 100k statements with the models would take hours on a CPU and measures nothing new, so
the suite stores *synthetic* edits: random retrieval keys with the norm of real ones, random
continuous prompts of the real shape, and a short statement payload, in the same collection
schema as :class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore` (named dense vector
``key``, multivector ``prompt``, payload ``edit_id`` / ``statement`` / ``metadata`` /
timestamps). Only the probed edits are encoded for real.

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
from typing import Any

import numpy as np

from langchain_recipe.knowledge_store import KEY_VECTOR, PROMPT_VECTOR, edit_point_id

__all__ = ["EdgeCollection", "SyntheticEdits", "folder_bytes", "qdrant_edge_available"]

_CHUNK = 1000


@dataclass
class SyntheticEdits:
    """Deterministic synthetic edits: edit ``i`` is the same wherever and whenever it is made.

    Attributes:
        knowledge_dim: size of a stored key.
        num_prompt_tokens: vectors per continuous prompt.
        lm_hidden_size: size of a prompt vector.
        key_norm: Euclidean norm of a stored key (measure it on real edits).
        prompt_std: standard deviation of prompt entries.
        seed: base random seed.
    """

    knowledge_dim: int
    num_prompt_tokens: int
    lm_hidden_size: int
    key_norm: float = 1.0
    prompt_std: float = 0.1
    seed: int = 0

    def chunk(self, start: int, count: int) -> tuple[list[str], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Edits ``start .. start+count-1``: ``(edit_ids, keys, prompts, payloads)`` with keys of
        shape `(count, knowledge_dim)` and prompts `(count, num_prompt_tokens, lm_hidden_size)`,
        float32."""
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
                "metadata": {"source": "benchmark"},
                "created_at": now,
                "updated_at": now,
            }
            for i, edit_id in enumerate(ids)
        ]
        return ids, keys, prompts, payloads

    def chunks(self, start: int, stop: int) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, list[dict[str, Any]]]]:
        """:meth:`chunk` over ``start .. stop-1`` in pieces of 1000 (bounded memory)."""
        for first in range(start, stop, _CHUNK):
            yield self.chunk(first, min(_CHUNK, stop - first))

    def fill_qdrant(self, client: Any, collection_name: str, start: int, stop: int) -> None:
        """Upsert edits ``start .. stop-1`` into a qdrant-client collection of the store's schema."""
        from qdrant_client import models

        for ids, keys, prompts, payloads in self.chunks(start, stop):
            batch = models.Batch(
                ids=[edit_point_id(i) for i in ids],
                vectors={KEY_VECTOR: keys.tolist(), PROMPT_VECTOR: prompts.tolist()},
                payloads=payloads,
            )
            client.upsert(collection_name, batch, wait=True)

    def fill_edge(self, collection: EdgeCollection, start: int, stop: int) -> None:
        """Upsert edits ``start .. stop-1`` into a qdrant-edge shard of the store's schema."""
        for ids, keys, prompts, payloads in self.chunks(start, stop):
            collection.upsert(ids, keys, prompts, payloads)


def qdrant_edge_available() -> bool:
    """Whether ``qdrant-edge-py`` (the embedded Rust engine, module ``qdrant_edge``) imports."""
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


class EdgeCollection:
    """A qdrant-edge shard with the knowledge store's vectors (``key`` dot product, ``prompt``
    multivector with no HNSW graph), for side-by-side retrieval timing.

    Args:
        path: an empty folder (created).
        knowledge_dim: key size.
        lm_hidden_size: prompt vector size.
        prompt_datatype: ``"float32"`` (as the store keeps prompts) or ``"float16"``.

    Raises:
        ImportError: ``qdrant-edge-py`` is not installed.
    """

    def __init__(self, path: str | Path, knowledge_dim: int, lm_hidden_size: int, prompt_datatype: str = "float32") -> None:
        import qdrant_edge as edge

        self._edge = edge
        self.path = Path(path)
        datatype = edge.VectorStorageDatatype.Float16 if prompt_datatype == "float16" else edge.VectorStorageDatatype.Float32
        config = edge.EdgeConfig(
            vectors={
                KEY_VECTOR: edge.EdgeVectorParams(size=knowledge_dim, distance=edge.Distance.Dot),
                PROMPT_VECTOR: edge.EdgeVectorParams(
                    size=lm_hidden_size,
                    distance=edge.Distance.Dot,
                    multivector_config=edge.MultiVectorConfig(comparator=edge.MultiVectorComparator.MaxSim),
                    datatype=datatype,
                    hnsw_config=edge.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10),
                ),
            },
            # Used only once optimize() builds the index; until then segments are searched in full.
            hnsw_config=edge.HnswIndexConfig(m=16, ef_construct=64, full_scan_threshold=1000),
        )
        self.shard = edge.EdgeShard.create(str(self.path), config)

    def upsert(self, ids: list[str], keys: np.ndarray, prompts: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        """Insert or replace points (keys `(n, knowledge_dim)`, prompts `(n, tokens, hidden)`)."""
        edge = self._edge
        points = [
            edge.Point(edit_point_id(edit_id), {KEY_VECTOR: keys[i].tolist(), PROMPT_VECTOR: prompts[i].tolist()}, payloads[i])
            for i, edit_id in enumerate(ids)
        ]
        self.shard.update(edge.UpdateOperation.upsert_points(points))

    def search(self, query_key: list[float], score_threshold: float | None = None) -> list[Any]:
        """The best point for a stored-scale query key, with payload and prompt (as the store asks)."""
        edge = self._edge
        request = edge.QueryRequest(
            limit=1,
            query=edge.Query.Nearest(query_key, using=KEY_VECTOR),
            with_payload=True,
            with_vector=[PROMPT_VECTOR],
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
