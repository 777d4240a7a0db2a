"""RecipeKnowledgeStore: RECIPE edits (retrieval key + continuous prompt + statement) in Qdrant.

``from langchain_recipe.knowledge_store import RecipeKnowledgeStore`` (or from
``langchain_recipe``). The point layout is described in :mod:`._schema`, the store's
modules in :mod:`._store`; docs/qdrant.md covers deployment, tenants, backups and measurements.
"""

from __future__ import annotations

from langchain_recipe.knowledge_store._engine import StoreEngine
from langchain_recipe.knowledge_store._handle import StorePickleError
from langchain_recipe.knowledge_store._schema import (
    DEFAULT_TENANT,
    KEY_VECTOR,
    MULTIVECTOR,
    PAYLOAD_FP16,
    PROMPT_FIELD,
    SCHEMA_VERSION,
    KnowledgeEdit,
    RetrievedEdit,
    decode_prompt_payload,
    edit_point_id,
    encode_prompt_payload,
    model_fingerprint,
)
from langchain_recipe.knowledge_store._store import ConflictPolicy, Engine, RecipeKnowledgeStore
from langchain_recipe.knowledge_store._write import WrittenEdits

__all__ = [
    "DEFAULT_TENANT",
    "KEY_VECTOR",
    "MULTIVECTOR",
    "PAYLOAD_FP16",
    "PROMPT_FIELD",
    "SCHEMA_VERSION",
    "ConflictPolicy",
    "Engine",
    "KnowledgeEdit",
    "RecipeKnowledgeStore",
    "RetrievedEdit",
    "StoreEngine",
    "StorePickleError",
    "WrittenEdits",
    "decode_prompt_payload",
    "edit_point_id",
    "encode_prompt_payload",
    "model_fingerprint",
]
