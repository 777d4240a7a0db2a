"""A float32 copy of every retrieval key, for qdrant-client's embedded (local) mode.

qdrant-client's local mode searches in Python: for each query it converts the query to float64,
multiplies the whole key matrix in float64 (copying it) and sorts every score, one query at a
time. ``benchmarks/query_dtype.py`` measured 27.6 ms per query at 10k keys against 3.5-4.4 ms for
a float32 scan of the same keys. The store therefore keeps its keys as one float32 torch matrix
while it owns a local-mode client: a batch of questions is scored with one matrix product and
``topk``, and only the winners' payloads (statement, metadata, continuous prompt) are read from
Qdrant by id. Server clients (``url=``) keep Qdrant's own search (HNSW, in Rust).

The index mirrors the collection exactly because an embedded collection has one writer: the
store that opened it (qdrant-client locks an on-disk folder; ``:memory:`` lives in the process).
Every write path of the store updates it under the store's lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

__all__ = ["KeyIndex"]

_MIN_CAPACITY = 1024


class KeyIndex:
    """Scaled retrieval keys ``r_k / sqrt(d_r)`` of one collection, as rows of a float32 matrix.

    Scores are Qdrant's dot product against the stored (scaled) key, i.e. RECIPE's scaled dot
    product ``s(q, k) = r_q · r_k / sqrt(d_r)`` (§3.3), so they equal the scores Qdrant returns up
    to float32 rounding.

    Args:
        knowledge_dim: size of a key, ``d_r``.
    """

    def __init__(self, knowledge_dim: int) -> None:
        self.knowledge_dim = knowledge_dim
        self._keys = torch.empty(0, knowledge_dim)
        self._tenant_codes = torch.empty(0, dtype=torch.int32)
        self._point_ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._point_ids)

    def _code(self, tenant: str) -> int:
        return self._codes.setdefault(tenant, len(self._codes))

    def _reserve(self, rows: int) -> None:
        if rows <= self._keys.shape[0]:
            return
        capacity = max(_MIN_CAPACITY, self._keys.shape[0] * 2, rows)
        keys = torch.empty(capacity, self.knowledge_dim)
        codes = torch.empty(capacity, dtype=torch.int32)
        size = len(self)
        keys[:size] = self._keys[:size]
        codes[:size] = self._tenant_codes[:size]
        self._keys, self._tenant_codes = keys, codes

    def upsert(
        self, point_ids: Sequence[str], scaled_keys: torch.Tensor | Sequence[Sequence[float]], tenants: Sequence[str]
    ) -> None:
        """Add or replace rows.

        Args:
            point_ids: Qdrant point ids (strings).
            scaled_keys: the vectors stored in Qdrant, shape `(num_points, knowledge_dim)`.
            tenants: each point's tenant.
        """
        keys = torch.as_tensor(scaled_keys, dtype=torch.float32)
        if keys.shape != (len(point_ids), self.knowledge_dim):
            msg = f"Expected keys of shape ({len(point_ids)}, {self.knowledge_dim}), got {tuple(keys.shape)}."
            raise ValueError(msg)
        self._reserve(len(self) + len(point_ids))
        for point_id, key, tenant in zip(point_ids, keys, tenants, strict=False):
            row = self._rows.get(point_id)
            if row is None:
                row = len(self._point_ids)
                self._rows[point_id] = row
                self._point_ids.append(point_id)
            self._keys[row] = key
            self._tenant_codes[row] = self._code(tenant)

    def remove(self, point_ids: Iterable[str]) -> None:
        """Drop rows (unknown ids are ignored); the last row moves into each freed slot."""
        for point_id in point_ids:
            row = self._rows.pop(point_id, None)
            if row is None:
                continue
            last = len(self._point_ids) - 1
            moved = self._point_ids.pop()
            if row != last:
                self._point_ids[row] = moved
                self._rows[moved] = row
                self._keys[row] = self._keys[last]
                self._tenant_codes[row] = self._tenant_codes[last]

    def stored_keys(self, point_ids: Sequence[str]) -> torch.Tensor:
        """The rows of these points, exactly the vectors Qdrant holds: shape `(len(point_ids), knowledge_dim)`.

        Raises:
            KeyError: a point id the index does not hold.
        """
        return self._keys[[self._rows[point_id] for point_id in point_ids]]

    def search(
        self,
        query_keys: torch.Tensor,
        k: int,
        *,
        tenant: str | None = None,
        score_thresholds: torch.Tensor | None = None,
        exclude: Iterable[str] = (),
    ) -> list[list[tuple[str, float]]]:
        """The best ``k`` rows for each query, best first, as ``(point_id, score)``.

        Args:
            query_keys: query representations ``r_q``, shape `(num_queries, knowledge_dim)`.
            k: rows per query.
            tenant: keep only this tenant's rows (``None``: every row).
            score_thresholds: shape `(num_queries,)`: keep only scores ``>=`` the query's
                threshold (inclusive, like Qdrant's ``score_threshold``; the store then applies
                the strict sentinel test).
            exclude: point ids never returned.

        Returns:
            One list per query of at most ``k`` ``(point_id, score)`` pairs.
        """
        size = len(self)
        if size == 0 or query_keys.shape[0] == 0:
            return [[] for _ in range(query_keys.shape[0])]
        scores = query_keys.to(torch.float32) @ self._keys[:size].T  # (num_queries, size)
        invalid = torch.zeros(size, dtype=torch.bool)
        if tenant is not None:
            code = self._codes.get(tenant)
            if code is None:  # a tenant that never wrote here owns no row
                return [[] for _ in range(query_keys.shape[0])]
            if len(self._codes) > 1:  # one tenant ever: every row is its own, no mask needed
                invalid |= self._tenant_codes[:size] != code
        for point_id in exclude:
            row = self._rows.get(point_id)
            if row is not None:
                invalid[row] = True
        if invalid.any():
            scores = scores.masked_fill(invalid, -math.inf)
        top_scores, top_rows = scores.topk(min(k, size), dim=-1)
        results = []
        for i in range(query_keys.shape[0]):
            row_results = []
            for score, row in zip(top_scores[i].tolist(), top_rows[i].tolist(), strict=False):
                if score == -math.inf or (score_thresholds is not None and score < float(score_thresholds[i])):
                    continue
                row_results.append((self._point_ids[row], score))
            results.append(row_results)
        return results
