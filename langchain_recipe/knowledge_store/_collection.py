"""A store's collection: the state its tenant views share, the collection's schema and its checks.

The collection records the schema version, the RecipeModel and base-LM fingerprints and
dimensions; :func:`check_collection` compares them with the store's models when it is opened.
The point layout itself is in :mod:`._schema`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

import torch

from langchain_recipe.base_models import HuggingFaceBaseModel, fingerprints_match
from langchain_recipe.errors import FingerprintMismatchError, StoreError
from langchain_recipe.knowledge_store._schema import (
    KEY_VECTOR,
    MULTIVECTOR,
    PAYLOAD_FP16,
    PROMPT_FIELD,
    SCHEMA_VERSION,
    model_fingerprint,
)
from langchain_recipe.knowledge_store._sparse import (
    AVERAGE_LENGTH,
    DEFAULT_HYBRID_WEIGHT,
    sparse_vectors_config,
)

if TYPE_CHECKING:
    from langchain_recipe.knowledge_store._engine import EngineCapabilities, OpenedEngine, StoreEngine
    from langchain_recipe.knowledge_store._key_index import KeyIndex
    from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = [
    "StoreState",
    "adopt_retrieval",
    "check_collection",
    "collection_metadata",
    "create_collection",
    "create_payload_indexes",
    "differing_settings",
    "register_tenant",
]

logger = logging.getLogger(__name__)

INDEXES = "payload_indexes"
"""Collection metadata key: ``"pending"`` until the payload indexes exist, then ``"complete"``."""
SCROLL_PAGE = 256


class StoreState:
    """What a store and its tenant views share: engine, lock, models, collection.

    Embedded Qdrant is plain Python objects and a SQLite file, so every call to it is serialised
    (:meth:`reading`); a server and the edge engine (Rust shards that read safely while one
    thread writes) handle concurrency themselves, so only the store's read-check-write sequences
    hold the lock.
    """

    def __init__(self, opened: OpenedEngine, *, collection_name: str, prompt_storage: str) -> None:
        self.engine: StoreEngine = opened.engine
        self.capabilities: EngineCapabilities = opened.capabilities
        self.where = opened.where
        self.collection_name = collection_name
        self.prompt_storage = prompt_storage
        self.lock = threading.RLock()
        self.recipe_model: RecipeModel
        self.base_model: HuggingFaceBaseModel
        self.sentinel_key: torch.Tensor
        self.fingerprints: dict[str, str] = {}
        # Embedded mode only: the tenants that ever wrote to the collection (kept in its metadata),
        # so that a store whose tenant is the only one can leave the tenant filter out.
        self.local_tenants: set[str] = set()
        # Sole writers only: the float32 mirror of the keys, filled at the first search.
        self.key_index: KeyIndex | None = None
        # Hybrid retrieval (._sparse): what the caller asked for (None: the collection's own),
        # what the collection does, its BM25 avg_len, and the fusion weight.
        self.requested_retrieval: str | None = None
        self.retrieval = "dense"
        self.average_length = AVERAGE_LENGTH
        self.hybrid_weight = DEFAULT_HYBRID_WEIGHT

    def set_retrieval(self, retrieval: str | None, hybrid_weight: float) -> None:
        """Ask for a retrieval mode (``None``: the collection's own) and set the hybrid fusion weight."""
        self.requested_retrieval = retrieval
        self.retrieval = retrieval or "dense"
        self.hybrid_weight = float(hybrid_weight)

    @property
    def hybrid(self) -> bool:
        """Whether the collection holds a sparse vector per edit and searches fuse it (``retrieval="hybrid"``)."""
        return self.retrieval == "hybrid"

    @property
    def sole_writer(self) -> bool:
        """Whether no other client writes to the collection (see :class:`EngineCapabilities`)."""
        return self.capabilities.sole_writer

    def reading(self) -> Any:
        """The store lock for the embedded engine (every call serialised), else a no-op context.

        An embedded store leaves the tenant filter out while its tenant is the only one that
        wrote; a read that builds such a filter must hold this until it has read, or another
        tenant's first write in between would show up in this tenant's results.
        """
        return self.lock if self.capabilities.embedded else contextlib.nullcontext()

    def set_models(self, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
        """Use these models (and their knowledge sentinel) for every view.

        Raises:
            InvalidInputError: the RecipeModel was made for another hidden size than the base LM's.
        """
        recipe_model.check_base_model(base_model)
        self.recipe_model = recipe_model.eval()
        self.base_model = base_model
        self.fingerprints = {"recipe_model": model_fingerprint(recipe_model), "base_model": base_model.fingerprint}
        with torch.no_grad():
            self.sentinel_key = recipe_model.sentinel_key().float().cpu()

    def describe(self) -> dict[str, Any]:
        """The model settings a collection records: fingerprints, base LM name and dimensions."""
        config = self.recipe_model.config
        return {
            "recipe_model_fingerprint": self.fingerprints["recipe_model"],
            "base_model_fingerprint": self.fingerprints["base_model"],
            "base_model_name": self.base_model.name,
            "knowledge_dim": config.knowledge_dim,
            "lm_hidden_size": config.lm_hidden_size,
            "num_prompt_tokens": config.num_prompt_tokens,
        }

    def metadata(self, name: str | None = None) -> dict[str, Any]:
        """The collection's (or collection ``name``'s) recorded metadata."""
        return self.engine.get_collection(name or self.collection_name).config.metadata or {}


def differing_settings(stored: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The model settings (:meth:`StoreState.describe`) a collection recorded otherwise than ``ours``.

    Base-LM fingerprints match up to a few bits (the same weights in another dtype), the rest
    exactly; the base LM's name is informational.
    """

    def same(name: str) -> bool:
        if name == "base_model_fingerprint":
            return fingerprints_match(stored.get(name), ours[name])
        return stored.get(name) == ours[name]

    return [name for name in ours if name != "base_model_name" and not same(name)]


def collection_exists(state: StoreState) -> bool:
    """Whether the collection exists.

    Raises:
        StoreError: a server cannot be reached (wrong URL, server down, bad API key).
    """
    try:
        return state.engine.collection_exists(state.collection_name)
    except Exception as error:  # an unreachable server: httpx / qdrant-client transport errors
        if state.capabilities.in_process:
            raise
        msg = (
            f"Cannot reach Qdrant at {state.where}: {type(error).__name__}: {error}. Check the URL, "
            "that the server runs, and the API key."
        )
        raise StoreError(msg) from None


def check_collection(state: StoreState, on_mismatch: str) -> bool:
    """Check an existing collection against this library and the store's models.

    Finish a creation that a crash cut short. Returns whether the collection must be re-encoded first.

    Raises:
        StoreError: the collection was not made by langchain-recipe, or by another schema version.
        FingerprintMismatchError: it was made with other models (or left half re-encoded) and
            ``on_mismatch`` is ``"raise"``.
    """
    stored = state.metadata()
    _check_schema_version(state.collection_name, stored.get("recipe_schema_version"))
    if stored.get(INDEXES) == "pending":  # a crash cut the collection's creation short
        create_payload_indexes(state)
    state.prompt_storage = stored.get("prompt_storage", PAYLOAD_FP16)
    adopt_retrieval(state, stored)
    state.local_tenants = set(stored.get("tenants") or [])
    if stored.get("reencode_in_progress"):
        if on_mismatch == "reencode":
            return True
        msg = (
            f"Collection {state.collection_name!r} was left half re-encoded by an interrupted reencode(); "
            "open it with on_mismatch='reencode' (and the models you want) to finish."
        )
        raise FingerprintMismatchError(msg)
    differing = differing_settings(stored, state.describe())
    if differing and on_mismatch == "reencode":
        logger.warning("Re-encoding collection %r for the given models (%s differ).", state.collection_name, differing)
        return True
    if differing:
        raise _mismatch(state, stored)
    return False


def adopt_retrieval(state: StoreState, stored: dict[str, Any]) -> None:
    """Take the retrieval mode (and BM25 ``avg_len``) a collection recorded; dense when it recorded none.

    Raises:
        StoreError: the store was opened with a ``retrieval`` other than the collection's. Nothing
            is changed then; the message says how to migrate the edits.
    """
    recorded = stored.get("retrieval", "dense")
    if state.requested_retrieval not in (None, recorded):
        msg = (
            f"Collection {state.collection_name!r} at {state.where} was made with retrieval={recorded!r}, but this "
            f"store was opened with retrieval={state.requested_retrieval!r}; its edits are unchanged. Open it with "
            f"retrieval=None (or {recorded!r}). To move its edits to retrieval={state.requested_retrieval!r}: open it "
            "as it is, export_jsonl(file), then import_jsonl(file) into a new collection_name (or path) opened "
            f"with retrieval={state.requested_retrieval!r}; every edit is encoded again there, its sparse vector "
            "included."
        )
        raise StoreError(msg)
    state.retrieval = recorded
    state.average_length = float(stored.get("lexical_average_length", AVERAGE_LENGTH))


def _check_schema_version(name: str, version: int | None) -> None:
    if version is None:
        msg = f"Collection {name!r} was not made by langchain-recipe; use another collection_name."
        raise StoreError(msg)
    if version > SCHEMA_VERSION:
        msg = (
            f"Collection {name!r} has schema version {version}; this langchain-recipe reads up to "
            f"{SCHEMA_VERSION}. Upgrade langchain-recipe."
        )
        raise StoreError(msg)
    if version < SCHEMA_VERSION:
        msg = (
            f"Collection {name!r} has schema version {version}, from an earlier langchain-recipe; this one "
            f"reads version {SCHEMA_VERSION}. Delete the collection (or the store folder) and add the "
            "statements again, or use a new collection_name."
        )
        raise StoreError(msg)


def _mismatch(state: StoreState, stored: dict[str, Any]) -> FingerprintMismatchError:
    def side(info: dict[str, Any]) -> str:
        return (
            f"RecipeModel {info.get('recipe_model_fingerprint')}, base LM {info.get('base_model_name')!r} "
            f"(fingerprint {info.get('base_model_fingerprint')}, hidden size {info.get('lm_hidden_size')}), "
            f"knowledge_dim {info.get('knowledge_dim')}, {info.get('num_prompt_tokens')} prompt tokens"
        )

    msg = (
        f"Collection {state.collection_name!r} at {state.where} holds edits made with {side(stored)}, but "
        f"this store was opened with {side(state.describe())}. Fix: open it with the models it was made with; or "
        "pass on_mismatch='reencode' to rebuild every edit's key and continuous prompt from its stored statement "
        "with the new models (or call store.reencode(new_model) on a store opened with the old ones); or use "
        "a new collection_name."
    )
    return FingerprintMismatchError(msg)


def collection_metadata(state: StoreState) -> dict[str, Any]:
    """The metadata a collection made for the store's models records."""
    metadata = {"recipe_schema_version": SCHEMA_VERSION, "prompt_storage": state.prompt_storage, **state.describe()}
    metadata["retrieval"] = state.retrieval
    if state.hybrid:
        metadata["lexical_average_length"] = state.average_length
    if state.capabilities.embedded:
        metadata["tenants"] = sorted(state.local_tenants)
    return metadata


def register_tenant(state: StoreState, tenant: str) -> None:
    """Embedded mode: record that ``tenant`` writes to the collection (call before it does)."""
    if state.capabilities.embedded and tenant not in state.local_tenants:
        state.local_tenants.add(tenant)
        state.engine.update_collection(state.collection_name, metadata={"tenants": sorted(state.local_tenants)})


def create_collection(state: StoreState, name: str | None = None, metadata: dict[str, Any] | None = None) -> None:
    """Create the collection (or ``name``) for the store's models.

    It gets ``metadata`` (default: :func:`collection_metadata`).
    """
    from qdrant_client import models

    config = state.recipe_model.config
    vectors = {KEY_VECTOR: models.VectorParams(size=config.knowledge_dim, distance=models.Distance.DOT)}
    if state.prompt_storage == MULTIVECTOR:
        vectors[PROMPT_FIELD] = models.VectorParams(
            size=config.lm_hidden_size,
            distance=models.Distance.DOT,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=models.HnswConfigDiff(m=0),  # stored, never searched
        )
    metadata = metadata if metadata is not None else collection_metadata(state)
    with state.lock:
        # qdrant-client's embedded mode ignores payload indexes (and warns); servers and the
        # edge engine use them. "pending" until all three exist: a crash in between is mended
        # at the next open (check_collection).
        indexed = not state.capabilities.embedded
        state.engine.create_collection(
            name or state.collection_name,
            vectors_config=vectors,
            sparse_vectors_config=sparse_vectors_config() if state.hybrid else None,
            # The prompt payload is read only for the top hits: keep payloads on disk.
            on_disk_payload=True,
            metadata={**metadata, INDEXES: "pending"} if indexed else metadata,
        )
        if indexed:
            create_payload_indexes(state, name)


def create_payload_indexes(state: StoreState, name: str | None = None) -> None:
    """Create the payload indexes on tenant (Qdrant's multitenancy layout), source and edit id.

    Then set the collection's mark that they exist.
    """
    from qdrant_client import models

    name = name or state.collection_name
    tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    state.engine.create_payload_index(name, "tenant", tenant, wait=True)
    state.engine.create_payload_index(name, "source", models.PayloadSchemaType.KEYWORD, wait=True)
    state.engine.create_payload_index(name, "edit_id", models.PayloadSchemaType.KEYWORD, wait=True)
    state.engine.update_collection(name, metadata={INDEXES: "complete"})
