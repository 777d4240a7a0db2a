"""Keeping a store's edits across models and machines: JSON Lines export and import, re-encoding.

Re-encoding rebuilds every edit's key and continuous prompt from its stored statement with new
models (RECIPE keeps the statement for this). When the dimensions change the collection is
recreated: the new points go to ``<collection>__reencode_staging`` first, and the collection is
replaced only once they are all there, so a crash at any moment leaves the old or the new edits
whole (:func:`recover_staged_reencode` finishes the job at the next open).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_recipe._validation import check_text
from langchain_recipe.errors import FingerprintMismatchError, InvalidInputError
from langchain_recipe.knowledge_store._collection import (
    SCROLL_PAGE,
    StoreState,
    collection_metadata,
    create_collection,
    differing_settings,
)
from langchain_recipe.knowledge_store._schema import (
    PROMPT_FIELD,
    check_ids,
    check_metadata,
    check_provenance,
    check_tenant,
    edit_point_id,
)
from langchain_recipe.knowledge_store._write import (
    ENCODE_BATCH,
    EditBatch,
    build_point,
    check_policy,
    encode_statements,
    upsert_points,
    write_edits,
)

if TYPE_CHECKING:
    from langchain_recipe.base_models import HuggingFaceBaseModel
    from langchain_recipe.knowledge_store._store import ConflictPolicy, RecipeKnowledgeStore
    from langchain_recipe.nn.recipe_model import RecipeModel

__all__ = [
    "MaintenanceMethods",
    "export_edits",
    "import_records",
    "read_jsonl",
    "recover_staged_reencode",
    "reencode_collection",
]

logger = logging.getLogger(__name__)

STAGING_SUFFIX = "__reencode_staging"


def export_edits(store: RecipeKnowledgeStore, destination: str | Path | io.TextIOBase, *, all_tenants: bool) -> int:
    """Write the store's (or every tenant's) edits as JSON Lines; returns how many."""
    views = [store.for_tenant(t) for t in store.tenants()] if all_tenants else [store]
    records = [edit for view in views for edit in view.list_edits()]
    lines = "".join(jsonl_line(edit.to_json()) for edit in records)
    if isinstance(destination, (str, Path)):
        Path(destination).write_text(lines, encoding="utf-8")
    else:
        destination.write(lines)
    return len(records)


_LINE_BREAKS_IN_JSON = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})
"""The line breaks ``json.dumps(ensure_ascii=False)`` leaves raw, as JSON escapes: JSON text can hold
them only inside strings, where the escape means the same character."""


def jsonl_line(record: dict[str, Any]) -> str:
    """One JSON Lines record: UTF-8 text with no line break but its final newline.

    Carriage returns and the other control characters are escaped by ``json.dumps``; U+2028, U+2029 and
    U+0085 are escaped here, so that a reader that splits on every Unicode line break
    (``str.splitlines``, earlier versions of this library) still sees one record per line.
    """
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS_IN_JSON) + "\n"


def read_jsonl(source: str | Path | io.TextIOBase, tenant: str, *, keep_tenants: bool) -> list[dict[str, Any]]:
    """The checked records of an export; each goes to its own tenant with ``keep_tenants``, else ``tenant``.

    Raises:
        InvalidInputError: the file is not UTF-8, or a line is not a JSON object with a non-empty
            ``statement`` string and valid metadata and provenance (the line number is named).
    """
    try:
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, (str, Path)) else source.read()
    except UnicodeDecodeError as error:
        msg = (
            f"The JSONL is not UTF-8 text ({error}); export_jsonl writes UTF-8, so the file was changed or is "
            "another file."
        )
        raise InvalidInputError(msg) from None
    records = []
    # Records end at "\n" only (JSON Lines): str.splitlines would also split at U+2028, U+2029 and
    # U+0085, which earlier exports hold raw inside strings. A "\r" before the "\n" is JSON whitespace.
    for number, line in enumerate(text.split("\n"), start=1):
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
        statement = check_text(record.get("statement"), f"Line {number} of the JSONL: the 'statement'")
        record["statement"] = statement.strip()
        record.setdefault("id", str(uuid.uuid4()))
        record["metadata"] = check_metadata(record.get("metadata") or {})
        for name in ("source", "author"):
            check_provenance(name, record.get(name))
        record["tenant"] = check_tenant(record.get("tenant", tenant)) if keep_tenants else tenant
        records.append(record)
    return records


def import_records(store: RecipeKnowledgeStore, records: list[dict[str, Any]], policy: str) -> list[str]:
    """Write checked records (:func:`read_jsonl`) tenant by tenant, one author per write; returns their ids.

    Raises:
        InvalidInputError: ids repeat within a tenant, or a statement is one the RecipeModel cannot
            encode faithfully. Nothing is written then.
    """
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_tenant.setdefault(record["tenant"], []).append(record)
    for group in by_tenant.values():  # validate everything before writing anything
        check_ids([r["id"] for r in group], len(group))  # unique non-empty strings per tenant
    store.recipe_model.check_statements([r["statement"] for r in records], store.base_model)
    for tenant, group in by_tenant.items():
        view = store.for_tenant(tenant)
        for start in range(0, len(group), ENCODE_BATCH * 8):
            part = group[start : start + ENCODE_BATCH * 8]
            for author in {r.get("author") for r in part}:  # one author per write
                chunk = [r for r in part if r.get("author") == author]
                batch = EditBatch(
                    tenant,
                    [r["id"] for r in chunk],
                    [r["statement"] for r in chunk],
                    [r["metadata"] for r in chunk],
                    [r.get("source") for r in chunk],
                    author,
                    created={r["id"]: r.get("created_at") for r in chunk},
                    updated={r["id"]: r.get("updated_at") for r in chunk},
                )
                write_edits(view, batch, policy=policy)
    return [r["id"] for r in records]


def recover_staged_reencode(state: StoreState, exists: bool, max_request_bytes: int) -> bool:
    """At open: deal with the staging collection of a re-encode to other sizes that a crash interrupted.

    Returns whether the collection was replaced by it. An incomplete staging collection is dropped
    (the collection was not touched yet). A complete one made for the store's models replaces the
    collection. One made for other models is left for those models to finish.

    Raises:
        FingerprintMismatchError: the collection is gone or half replaced, and only the staging
            collection, made for other models, holds every edit.
    """
    staging = state.collection_name + STAGING_SUFFIX
    if not state.engine.collection_exists(staging):
        return False
    staged = state.metadata(staging)
    if not staged.get("staging_complete"):
        state.engine.delete_collection(staging)
        return False
    if not differing_settings(staged, state.describe()):
        logger.warning("Finishing the re-encode of collection %r that a crash interrupted.", state.collection_name)
        _finish_staged_reencode(state, max_request_bytes)
        return True
    if not exists or state.metadata().get("reencode_in_progress"):
        msg = (
            f"Collection {state.collection_name!r} at {state.where} was being re-encoded for other models "
            f"(RecipeModel {staged.get('recipe_model_fingerprint')}, knowledge_dim {staged.get('knowledge_dim')}) "
            f"when its process stopped; its edits are in {staging!r}. Open the store with those models to finish."
        )
        raise FingerprintMismatchError(msg)
    logger.warning(
        "Collection %r has a re-encoded copy for other models in %r; opening the collection itself.",
        state.collection_name,
        staging,
    )
    return False


def _finish_staged_reencode(state: StoreState, max_request_bytes: int) -> None:
    """Replace the collection with its complete staging collection.

    Recreate it, copy every staged point, then drop the staging collection. Each step may be
    repeated, so a crash during this is finished by the next open.
    """
    from qdrant_client import models

    staging = state.collection_name + STAGING_SUFFIX
    with state.lock:
        state.key_index = None
        if state.engine.collection_exists(state.collection_name):
            state.engine.delete_collection(state.collection_name)
        create_collection(state, metadata={**collection_metadata(state), "reencode_in_progress": True})
        offset = None
        while True:
            points, offset = state.engine.scroll(
                staging, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            copies = [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points]
            upsert_points(state, copies, max_request_bytes)
            if offset is None:
                break
        _mark_reencoding(state, in_progress=False)
        state.engine.delete_collection(staging)
        state.key_index = None


def _mark_reencoding(state: StoreState, *, in_progress: bool, name: str | None = None) -> None:
    metadata = {**collection_metadata(state), "reencode_in_progress": in_progress}
    state.engine.update_collection(name or state.collection_name, metadata=metadata)


def _stored_payloads(state: StoreState) -> list[dict[str, Any]]:
    from qdrant_client import models

    payloads: list[dict[str, Any]] = []
    offset = None
    while True:
        points, offset = state.engine.scroll(
            state.collection_name,
            limit=SCROLL_PAGE,
            offset=offset,
            with_payload=models.PayloadSelectorExclude(exclude=[PROMPT_FIELD]),
        )
        payloads.extend(p.payload for p in points)
        if offset is None:
            return payloads


def reencode_collection(
    state: StoreState,
    new_recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    *,
    batch_size: int,
    max_request_bytes: int,
) -> int:
    """Rebuild every edit (all tenants) with new models; see :meth:`RecipeKnowledgeStore.reencode`."""
    with state.lock:
        state.key_index = None  # rebuilt from the collection at the next search
        payloads = _stored_payloads(state)
        stored = state.metadata()
        old = state.recipe_model.config
        state.set_models(new_recipe_model, base_model)
        new = state.recipe_model.config
        stored_dims = (stored.get("knowledge_dim", old.knowledge_dim), stored.get("lm_hidden_size", old.lm_hidden_size))
        points = []  # everything encoded before the collection is touched
        for start in range(0, len(payloads), batch_size):
            part = payloads[start : start + batch_size]
            keys, prompts, _ = encode_statements(state, [p["statement"] for p in part])
            points.extend(
                build_point(state, edit_point_id(p["edit_id"], p["tenant"]), p, keys[i], prompts[i])
                for i, p in enumerate(part)
            )
        if (new.knowledge_dim, new.lm_hidden_size) != stored_dims:
            staging = state.collection_name + STAGING_SUFFIX
            if state.engine.collection_exists(staging):
                state.engine.delete_collection(staging)
            create_collection(state, staging, metadata={**collection_metadata(state), "staging_complete": False})
            upsert_points(state, points, max_request_bytes, collection_name=staging)
            state.engine.update_collection(staging, metadata={"staging_complete": True})
            _finish_staged_reencode(state, max_request_bytes)
        else:
            _mark_reencoding(state, in_progress=True)
            upsert_points(state, points, max_request_bytes)
            _mark_reencoding(state, in_progress=False)
        state.key_index = None
    logger.info("Re-encoded %d edits of collection %r.", len(payloads), state.collection_name)
    return len(payloads)


class MaintenanceMethods:
    """The knowledge store's export, import and re-encoding methods (see the module docstring)."""

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
        return export_edits(self, destination, all_tenants=all_tenants)

    def import_jsonl(
        self,
        source: str | Path | io.TextIOBase,
        *,
        keep_tenants: bool = False,
        on_conflict: ConflictPolicy | None = None,
    ) -> list[str]:
        """Add the edits of a JSON Lines file written by :meth:`export_jsonl`; existing ids are updated.

        The edits are encoded again with this store's models; provenance timestamps are kept.

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
        records = read_jsonl(source, self.tenant, keep_tenants=keep_tenants)
        policy = check_policy(on_conflict if on_conflict is not None else self._on_conflict)
        return import_records(self, records, policy)

    def reencode(
        self,
        new_recipe_model: RecipeModel | str | Path,
        base_model: HuggingFaceBaseModel | None = None,
        *,
        batch_size: int = 256,
    ) -> int:
        """Rebuild every edit's key and continuous prompt (all tenants) from its stored statement.

        The rebuild uses a retrained RecipeModel and/or a new base LM, and records their fingerprints.
        Payloads (statement, metadata, provenance, tenant, ids) are kept. When the dimensions
        (``knowledge_dim``, ``lm_hidden_size``) change, the collection is recreated with the new
        sizes: the new points are first written to a staging collection, and the old collection
        is replaced only when they are all there, so a crash loses no edit (the next open with the
        new models finishes the job). Otherwise the collection is marked "re-encoding" until done;
        an interrupted run is finished by opening with ``on_mismatch="reencode"``. Every view of
        this store switches to the new models.

        Args:
            new_recipe_model: the RecipeModel (or its checkpoint folder).
            base_model: the base LM for it (``None``: keep this store's).
            batch_size: statements per encoder pass and write.

        Returns:
            How many edits were re-encoded.

        Raises:
            InvalidInputError: the RecipeModel does not fit the base LM's hidden size.
        """
        if isinstance(new_recipe_model, (str, Path)):
            new_recipe_model = RecipeModel.from_pretrained(new_recipe_model)
        base_model = base_model if base_model is not None else self.base_model
        return reencode_collection(
            self._shared, new_recipe_model, base_model, batch_size=batch_size, max_request_bytes=self.max_request_bytes
        )
