"""The layout of an edit as a Qdrant point, and the records the store hands back.

One point per edit (RECIPE §3.2, "knowledge repository"):

* named dense vector ``key`` (dot product): the knowledge representation r_k divided by
  ``sqrt(d_r)``, so Qdrant's dot product with a query representation r_q is the paper's scaled
  dot product ``s(q, k) = r_q · r_k / sqrt(d_r)`` (§3.3);
* the continuous prompt, `(num_prompt_tokens, lm_hidden_size)`, either as a compact float16
  payload field ``prompt`` (default, :data:`PAYLOAD_FP16`) or as a named multivector ``prompt``
  (:data:`MULTIVECTOR`, float32, never indexed); docs/qdrant.md has the measurements behind the
  default;
* payload: ``edit_id`` (the user's id), ``statement``, ``metadata`` (the user's dict, returned
  unchanged), ``tenant``, provenance (``source``, ``author``, ``created_at``, ``updated_at``,
  ISO 8601 UTC) and the ids of edits it ``conflicts_with`` or ``replaces``.

The input checks (statements, metadata, ids, provenance) and the conditions that filter on a
metadata key (:func:`metadata_key_path`, :func:`metadata_conditions`) are here too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from langchain_core.documents import Document

from langchain_recipe._validation import check_text, check_unicode
from langchain_recipe.errors import InvalidInputError, StoreError
from langchain_recipe.scoring import passes_gate, stored_key

if TYPE_CHECKING:
    from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = [
    "DEFAULT_TENANT",
    "KEY_VECTOR",
    "MULTIVECTOR",
    "PAYLOAD_FP16",
    "PROMPT_FIELD",
    "SCHEMA_VERSION",
    "KnowledgeEdit",
    "RetrievedEdit",
    "decode_prompt_payload",
    "edit_point_id",
    "encode_prompt_payload",
    "metadata_key_path",
    "model_fingerprint",
]

KEY_VECTOR = "key"
PROMPT_FIELD = "prompt"
"""Name of the multivector, or of the payload field, that holds the continuous prompt."""
PAYLOAD_FP16 = "payload_fp16"
MULTIVECTOR = "multivector"
PROMPT_STORAGES = (PAYLOAD_FP16, MULTIVECTOR)
SCHEMA_VERSION = 2
DEFAULT_TENANT = "default"
MAX_TENANT_LENGTH = 128
RESERVED_PAYLOAD = ("edit_id", "statement", "metadata", "tenant", "source", "author", "created_at", "updated_at")
_ID_NAMESPACE = uuid.UUID("6f1c2b1e-7c1a-4c1e-9a57-2f0c1d5e8b31")


def edit_point_id(edit_id: str, tenant: str = DEFAULT_TENANT) -> str:
    """The Qdrant point id (a UUID string) of a user's edit id in a tenant; deterministic (UUID v5).

    The default tenant maps ``edit_id`` alone, so ids are stable for single-tenant stores; other
    tenants map ``[tenant, edit_id]`` written as JSON, so two tenants may use the same edit id.
    A default-tenant id that is itself such a JSON pair (``'["acme", "x"]'``) maps
    ``["default", edit_id]`` instead, or it would be tenant ``acme``'s point for ``"x"``: the
    mapping is injective over ``(tenant, edit_id)`` pairs.
    """
    if tenant == DEFAULT_TENANT and not _is_tenant_pair(edit_id):
        name = edit_id
    else:
        name = json.dumps([tenant, edit_id])
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def _is_tenant_pair(edit_id: str) -> bool:
    """Whether ``edit_id`` is exactly ``json.dumps([a, b])`` for two strings.

    That is the name that :func:`edit_point_id` hashes for a non-default tenant.
    """
    if not edit_id.startswith('["'):
        return False
    try:
        value = json.loads(edit_id)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
        and json.dumps(value) == edit_id
    )


def model_fingerprint(model: RecipeModel) -> str:
    """Fingerprint of a RecipeModel's config and trained weights (16 hex characters)."""
    digest = hashlib.sha256(json.dumps(model.config.model_dump(mode="json"), sort_keys=True).encode())
    for name, tensor in sorted(model.trained_state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def check_tenant(tenant: Any) -> str:
    """Validate a tenant name (a non-empty UTF-8 string of at most 128 characters)."""
    if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > MAX_TENANT_LENGTH:
        msg = f"Tenant {tenant!r} is not valid; use a non-empty string of at most {MAX_TENANT_LENGTH} characters."
        raise InvalidInputError(msg)
    return check_unicode(tenant, f"Tenant {tenant!r}")


# ---------------------------------------------------------------------- continuous prompt codec
def encode_prompt_payload(prompt: torch.Tensor) -> dict[str, Any]:
    """A continuous prompt as a JSON payload value: float16 little-endian bytes in base64.

    Args:
        prompt: shape `(num_prompt_tokens, lm_hidden_size)`.

    Returns:
        ``{"dtype": "float16", "shape": [num_prompt_tokens, lm_hidden_size], "data": str}``;
        2 bytes per value before base64 (4/3 after), against about 20 bytes per value for a
        float written as JSON text.

    Raises:
        StoreError: a value does not fit in float16 (|x| > 65504); use the multivector storage.
    """
    array = prompt.detach().float().cpu().numpy().astype("<f2")
    if not np.isfinite(array).all():
        msg = (
            "A continuous prompt has values outside the float16 range (|x| > 65504); open the "
            "store with prompt_storage='multivector' (float32)."
        )
        raise StoreError(msg)
    return {"dtype": "float16", "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_prompt_payload(value: dict[str, Any]) -> torch.Tensor:
    """Inverse of :func:`encode_prompt_payload`: a float32 tensor of the stored shape."""
    array = np.frombuffer(base64.b64decode(value["data"]), dtype="<f2").reshape(value["shape"])
    return torch.from_numpy(array.astype(np.float32))


def scaled_key(key: torch.Tensor, knowledge_dim: int) -> list[float]:
    """r_k / sqrt(d_r) as a list, so Qdrant's dot product is the scaled dot product."""
    if key.shape[-1] != knowledge_dim:
        msg = (
            f"A knowledge key has {key.shape[-1]} dimensions; this store's RecipeModel uses "
            f"knowledge_dim={knowledge_dim}."
        )
        raise ValueError(msg)
    return stored_key(key).tolist()


# ---------------------------------------------------------------------- records
@dataclass
class KnowledgeEdit:
    """A stored edit: its statement, the user's metadata, provenance and tenant.

    Attributes:
        edit_id: the user's id of the edit.
        statement: the knowledge statement.
        metadata: the user's metadata, exactly as given.
        tenant: the tenant that owns it.
        source: where the statement came from (provenance), or ``None``.
        author: who added it (provenance), or ``None``.
        created_at: when the id was first added (ISO 8601, UTC).
        updated_at: when its statement was last written (ISO 8601, UTC).
        conflicts_with: ids of live edits this one conflicted with (same subject, same relation)
            when it was added and that were kept (policy ``"keep_both"``).
        replaces: ids of edits this one replaced (policy ``"replace"``).
    """

    edit_id: str
    statement: str
    metadata: dict[str, Any]
    tenant: str = DEFAULT_TENANT
    source: str | None = None
    author: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    conflicts_with: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> KnowledgeEdit:
        """The record of a point's payload."""
        return cls(
            edit_id=payload["edit_id"],
            statement=payload["statement"],
            metadata=dict(payload.get("metadata") or {}),
            tenant=payload.get("tenant", DEFAULT_TENANT),
            source=payload.get("source"),
            author=payload.get("author"),
            created_at=payload.get("created_at"),
            updated_at=payload.get("updated_at"),
            conflicts_with=list(payload.get("conflicts_with") or []),
            replaces=list(payload.get("replaces") or []),
        )

    def to_document(self, *, with_provenance: bool = False) -> Document:
        """A ``Document`` with ``id`` = the edit id and the user's metadata.

        The metadata is exactly as stored, as the ``VectorStore`` contract asks; ``with_provenance``
        adds ``edit_id``, ``tenant``, ``source``, ``author``, ``created_at`` and ``updated_at`` to a
        copy of it.
        """
        metadata = dict(self.metadata)
        if with_provenance:
            metadata.update(
                edit_id=self.edit_id,
                tenant=self.tenant,
                source=self.source,
                author=self.author,
                created_at=self.created_at,
                updated_at=self.updated_at,
            )
        return Document(page_content=self.statement, metadata=metadata, id=self.edit_id)

    def to_json(self) -> dict[str, Any]:
        """The export record (JSONL line): statement, metadata, provenance, tenant; no vectors."""
        return {
            "id": self.edit_id,
            "statement": self.statement,
            "metadata": self.metadata,
            "tenant": self.tenant,
            "source": self.source,
            "author": self.author,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class RetrievedEdit:
    """The best edit for a query and the sentinel gate's verdict.

    Attributes:
        edit_id: the user's id of the edit.
        statement: its knowledge statement.
        metadata: the user's metadata.
        score: scaled dot product ``s(q, k)`` (dimensionless).
        sentinel_score: ``s(q, Θ)``, the query's dynamic threshold (RECIPE §3.3).
        prompt: the continuous prompt, shape `(num_prompt_tokens, lm_hidden_size)`, float32.
        tenant: the tenant that owns the edit.
    """

    edit_id: str
    statement: str
    metadata: dict[str, Any]
    score: float
    sentinel_score: float
    prompt: torch.Tensor
    tenant: str = DEFAULT_TENANT

    @property
    def accepted(self) -> bool:
        """Whether the edit passes the knowledge sentinel gate (strictly greater score)."""
        return passes_gate(self.score, self.sentinel_score)

    def to_document(self) -> Document:
        """A LangChain ``Document`` with the statement, the id and plain-float scores."""
        metadata = {
            **self.metadata,
            "edit_id": self.edit_id,
            "score": float(self.score),
            "sentinel_score": float(self.sentinel_score),
        }
        return Document(page_content=self.statement, metadata=metadata, id=self.edit_id)


# ---------------------------------------------------------------------- input validation
def check_statements(statements: Sequence[str]) -> list[str]:
    """Non-empty strings of valid UTF-8, stripped; a bare string is refused (it would be split into characters).

    See :func:`~langchain_recipe._validation.check_text`.
    """
    if isinstance(statements, (str, bytes)):
        msg = "Pass a list of statements, not a single string (e.g. add_knowledge([statement]))."
        raise InvalidInputError(msg)
    return [check_text(statement, f"Statement {index}").strip() for index, statement in enumerate(statements)]


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Qdrant's integers are signed 64-bit: a larger one comes back as a float from the edge engine and
a server, and no filter can match it."""


def check_int64(value: Any, what: str) -> None:
    """Refuse an ``int`` outside Qdrant's signed 64-bit range (``bool`` and other types pass).

    Raises:
        InvalidInputError: ``value`` is an int below -2**63 or above 2**63 - 1.
    """
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        msg = (
            f"{what} is the integer {value}, outside the 64-bit range Qdrant stores and filters "
            f"({INT64_MIN} to {INT64_MAX}): it would come back as a float. Store it as a string (str(value))."
        )
        raise InvalidInputError(msg)


def _check_json_value(value: Any, what: str, path: str = "metadata") -> None:
    """Refuse what JSON or Qdrant would not give back unchanged, naming its path in ``value``.

    A dict key that is not a string (JSON would turn it into one), or an integer beyond 64 bits.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{what}: the key {path}[{key!r}] is not a string; JSON would turn it into one. Use string keys."
                raise InvalidInputError(msg)
            _check_json_value(item, what, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, what, f"{path}[{index}]")
    else:
        check_int64(value, f"{what}: {path}")


def check_metadata(metadata: Any, what: str = "Metadata") -> dict[str, Any]:
    """A dict that JSON and Qdrant represent exactly (a copy).

    String keys, no NaN or infinity, integers within 64 bits, valid UTF-8.

    Raises:
        InvalidInputError: ``metadata`` is not a dict or would not come back unchanged from Qdrant.
    """
    if not isinstance(metadata, dict):
        msg = f"{what} must be a dict, got {type(metadata).__name__}."
        raise InvalidInputError(msg)
    try:
        json.dumps(metadata, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        msg = (
            f"{what} ({metadata!r}) is not JSON-serialisable ({error}); use strings, numbers (not NaN or "
            "infinity), booleans, None, lists and dicts."
        )
        raise InvalidInputError(msg) from None
    _check_json_value(metadata, what)
    return dict(metadata)


def check_ids(ids: Any, count: int) -> list[str]:
    """Unique non-empty string ids, one per statement (random UUIDs when ``None``)."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(count)]
    if isinstance(ids, (str, bytes)):
        msg = "Pass a list of ids, not a single string (e.g. ids=[edit_id])."
        raise InvalidInputError(msg)
    ids = [check_text(i, f"Edit id {index}") for index, i in enumerate(ids)]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        msg = f"Edit ids must be unique within a call; {duplicates[:5]} appear more than once. Nothing was written."
        raise InvalidInputError(msg)
    return ids


def check_provenance(name: str, value: Any) -> str | None:
    """``None`` or a string."""
    if value is not None and not isinstance(value, str):
        msg = f"{name} must be a string or None, got {type(value).__name__}."
        raise InvalidInputError(msg)
    return value


def metadata_key_path(key: Any) -> str:
    """The Qdrant payload path of one metadata key: ``metadata."<key>"``.

    Quoted, so that ``.``, spaces, ``:`` and ``[`` are part of the key; every engine (embedded,
    server, edge) parses this form (docs/qdrant.md).

    Raises:
        InvalidInputError: the key is not a string, or holds a double quote or a backslash, which
            no Qdrant engine can quote in a key path.
    """
    if not isinstance(key, str):
        msg = f"filter keys are metadata keys and must be strings, got {key!r}."
        raise InvalidInputError(msg)
    check_unicode(key, f"The filter key {key!r}")
    if '"' in key or "\\" in key:
        msg = (
            f"Qdrant cannot filter on the metadata key {key!r}: a key path cannot quote '\"' or '\\\\'. The edits "
            "that hold it are stored and read back unchanged; to filter on it, store the value under a key "
            "without those characters (e.g. with update_knowledge)."
        )
        raise InvalidInputError(msg)
    return f'metadata."{key}"'


def _match(key: str, value: Any) -> Any:
    """``MatchValue`` for one value, ``MatchAny`` for a list: checked, so no engine fails on it."""
    from qdrant_client import models

    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in values:
        check_int64(item, f"The filter value for {key!r}")
    if isinstance(value, (list, tuple)):
        if not (all(isinstance(v, str) for v in values) or all(_is_plain_int(v) for v in values)):
            msg = f"filter value for {key!r}: a list must hold only strings or only ints, got {value!r}."
            raise InvalidInputError(msg)
        return models.MatchAny(any=values)
    if isinstance(value, (str, int, bool)):
        return models.MatchValue(value=value)
    msg = f"filter value for {key!r} must be a string, int, bool or a list of them, got {value!r}."
    raise InvalidInputError(msg)


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def metadata_conditions(metadata: Any) -> list[Any]:
    """One ``models.FieldCondition`` per key of a metadata filter dict (equality; a list matches any).

    Raises:
        InvalidInputError: ``metadata`` is not a dict, or a key or value no engine can filter on.
    """
    from qdrant_client import models

    if not isinstance(metadata, dict):
        msg = (
            f"filter must be a dict of metadata values or a qdrant_client.models.Filter, got {type(metadata).__name__}."
        )
        raise InvalidInputError(msg)
    return [
        models.FieldCondition(key=metadata_key_path(key), match=_match(key, value)) for key, value in metadata.items()
    ]


def check_filter_integers(query_filter: Any) -> None:
    """Refuse a ``models.Filter`` that matches an integer beyond 64 bits (no engine can; some fail raw)."""
    from qdrant_client import models

    min_should = query_filter.min_should.conditions if query_filter.min_should is not None else []
    for clause in (query_filter.must, query_filter.should, query_filter.must_not, min_should):
        for condition in clause if isinstance(clause, list) else [clause]:
            if isinstance(condition, models.Filter):
                check_filter_integers(condition)
            elif isinstance(condition, models.NestedCondition):
                check_filter_integers(condition.nested.filter)
            elif isinstance(condition, models.FieldCondition) and condition.match is not None:
                match = condition.match
                found = getattr(match, "value", getattr(match, "any", getattr(match, "except_", None)))
                for value in found if isinstance(found, list) else [found]:
                    check_int64(value, f"The filter value for {condition.key!r}")
