"""The qdrant-edge-py engine behind ``RecipeKnowledgeStore(engine="edge")``.

qdrant-edge-py runs Qdrant's own Rust storage engine in the process (``EdgeShard``: segments,
write-ahead log, HNSW and real payload indexes) without a server. Its API is not the
``QdrantClient`` one: it has no collections (so no collection metadata), its own request,
filter and point classes, and counts by request object. :class:`EdgeClient` offers exactly the
part of the ``QdrantClient`` API that the store calls, takes the same ``qdrant_client.models``
arguments and returns ``qdrant_client.models`` results, so the store runs unchanged on it.

Folder layout (``path``)::

    <path>/.recipe-edge.lock          held by the one client that has the folder open
    <path>/<collection>/              one EdgeShard per collection (segments, WAL, config)
    <path>/<collection>.metadata.json the collection's metadata (fingerprints, dimensions)
    <path>/.<collection>.unfinished-* a shard being created or deleted (removed at the next create)

A shard is created in an ``.unfinished-`` folder and renamed into place once complete, and
renamed out of place before it is deleted, so a process killed in the middle leaves either the
whole shard or none (qdrant-edge cannot load, nor create over, a half-written shard folder).

Nothing in the folder is pickled: segments are Qdrant's binary formats and the metadata is JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_recipe.errors import InvalidInputError, StoreError, StoreLockedError
from langchain_recipe.knowledge_store._edge_translate import (
    client_vector,
    edge_filter,
    edge_vector,
    payload_selector,
    sparse_params_of,
    sparse_vector_params,
    vector_params,
    vector_selector,
)
from langchain_recipe.knowledge_store._edge_translate import edge as _edge

__all__ = ["LOCK_FILE", "EdgeClient"]

LOCK_FILE = ".recipe-edge.lock"
_METADATA_SUFFIX = ".metadata.json"
_UNFINISHED = ".unfinished-"


def _point_id(value: Any) -> int | str:
    """Point ids as qdrant-client gives them: UUIDs as strings, integers as ints."""
    return value if isinstance(value, int) else str(value)


class EdgeClient:
    """A ``QdrantClient`` look-alike over qdrant-edge-py shards in one folder.

    Offers ``collection_exists``, ``get_collection`` (``config.metadata``, ``config.params``,
    ``points_count``), ``create_collection``, ``update_collection`` (metadata only; merged key by
    key as Qdrant does), ``delete_collection``, ``create_payload_index``, ``count``, ``scroll``
    (point-id offset paging), ``upsert``, ``delete`` (ids or filter), ``retrieve``,
    ``query_batch_points``, ``flush`` and ``close``. Filters support ``must``/``should``/
    ``must_not``/``min_should`` with ``FieldCondition`` (``MatchValue`` but not on booleans,
    which qdrant-edge-py 0.9 cannot match, ``MatchAny``,
    ``MatchExcept``, ``MatchText``, ``Range``, ``DatetimeRange``, ``ValuesCount``, ``is_empty``,
    ``is_null``), ``HasIdCondition``, ``IsEmptyCondition``, ``IsNullCondition``,
    ``HasVectorCondition``, ``NestedCondition`` and nested ``Filter`` s; anything else raises
    :class:`InvalidInputError`.

    Thread safety: the shards are safe to read from many threads while one writes (checked with
    4 reader and 4 writer threads on one shard); the store serialises its writes with its own
    lock, and this class serialises opening, creating and deleting collections.

    Durability: every update goes to the shard's write-ahead log first, so an edit survives the
    process ending without :meth:`close` (the next open replays the log); :meth:`close` flushes
    the segments.

    Args:
        path: the folder (created if missing); ``None`` makes a temporary folder that is removed
            at :meth:`close`.

    Raises:
        StoreLockedError: another client (in this or another process) has the folder open.
        StoreError: the folder cannot be created.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        from filelock import FileLock, Timeout

        self._temporary = path is None
        try:
            self.path = Path(tempfile.mkdtemp(prefix="recipe-edge-")) if path is None else Path(path)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            msg = f"Cannot create the edge store folder {path}: {error}"
            raise StoreError(msg) from None
        # Non-blocking and not thread-local: a second EdgeClient on the folder, in this process
        # or another, fails at once instead of waiting.
        self._file_lock = FileLock(self.path / LOCK_FILE, timeout=0, thread_local=False)
        try:
            self._file_lock.acquire()
        except Timeout:
            msg = (
                f"The store folder {self.path} is in use by another qdrant-edge client (in this or another "
                "process). Close that store first (store.close()), or, to share a store between processes, "
                "run a Qdrant server (integrations/qdrant/) and pass url=."
            )
            raise StoreLockedError(msg) from None
        self._shards: dict[str, Any] = {}
        self._guard = threading.RLock()
        self._closed = False
        # A temporary folder also goes when the client is garbage-collected or the process exits
        # without close() (the lock file goes with it).
        self._remove_temporary = weakref.finalize(self, shutil.rmtree, self.path, True) if self._temporary else None

    # ------------------------------------------------------------------ collections
    def _check_name(self, collection_name: str) -> str:
        if (
            not isinstance(collection_name, str)
            or not collection_name
            or collection_name.startswith(".")
            or any(c in collection_name for c in "/\\\0")
        ):
            msg = (
                "An edge collection name must be a plain file name (no '/', not starting with '.'), "
                f"got {collection_name!r}."
            )
            raise InvalidInputError(msg)
        return collection_name

    def _shard_dir(self, collection_name: str) -> Path:
        return self.path / self._check_name(collection_name)

    def _unfinished_dir(self, collection_name: str) -> Path:
        """A fresh scratch folder name for creating or deleting the collection's shard."""
        return self.path / f".{self._check_name(collection_name)}{_UNFINISHED}{uuid.uuid4().hex}"

    def _remove_unfinished(self, collection_name: str) -> None:
        """Remove what a process killed while creating or deleting the shard left behind."""
        for leftover in self.path.glob(f".{self._check_name(collection_name)}{_UNFINISHED}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _metadata_file(self, collection_name: str) -> Path:
        return self.path / f"{self._check_name(collection_name)}{_METADATA_SUFFIX}"

    def _shard(self, collection_name: str) -> Any:
        if self._closed:
            msg = "This edge store is closed; open a new RecipeKnowledgeStore."
            raise StoreError(msg)
        shard = self._shards.get(collection_name)
        if shard is not None:
            return shard
        with self._guard:
            if collection_name not in self._shards:
                if not self.collection_exists(collection_name):
                    msg = f"Collection {collection_name!r} does not exist in {self.path}."
                    raise StoreError(msg)
                self._shards[collection_name] = _edge().EdgeShard.load(str(self._shard_dir(collection_name)))
            return self._shards[collection_name]

    def collection_exists(self, collection_name: str) -> bool:
        """Whether the collection's shard folder exists."""
        return (self._shard_dir(collection_name) / "edge_config.json").is_file()

    def _read_metadata(self, collection_name: str) -> dict[str, Any]:
        try:
            return json.loads(self._metadata_file(collection_name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def _write_metadata(self, collection_name: str, metadata: dict[str, Any]) -> None:
        """Write atomically: a reader (or a crash) sees the old file or the new one, never half."""
        target = self._metadata_file(collection_name)
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(metadata, file, ensure_ascii=False, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get_collection(self, collection_name: str) -> Any:
        """A ``models.CollectionInfo`` with ``config.metadata``, ``config.params`` (vectors) and ``points_count``.

        The server-only fields (optimizer, WAL settings) are left out.
        """
        from qdrant_client import models

        shard = self._shard(collection_name)
        config = json.loads((self._shard_dir(collection_name) / "edge_config.json").read_text(encoding="utf-8"))
        vectors = {}
        for name, params in (config.get("vectors") or {}).items():
            max_sim = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
            vectors[name] = models.VectorParams(
                size=params["size"],
                distance=models.Distance(str(params["distance"])),
                multivector_config=max_sim if params.get("multivector_config") else None,
            )
        info = shard.info()
        return models.CollectionInfo.model_construct(
            status=models.CollectionStatus.GREEN,
            points_count=info.points_count,
            indexed_vectors_count=info.indexed_vectors_count,
            segments_count=info.segments_count,
            payload_schema={},
            config=models.CollectionConfig.model_construct(
                params=models.CollectionParams(vectors=vectors, sparse_vectors=sparse_params_of(config)),
                metadata=self._read_metadata(collection_name),
            ),
        )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Any,
        *,
        on_disk_payload: bool | None = None,
        metadata: dict[str, Any] | None = None,
        sparse_vectors_config: dict[str, Any] | None = None,
        **unsupported: Any,
    ) -> bool:
        """Create the shard from ``models.VectorParams`` (one, or by name) and ``models.SparseVectorParams`` by name.

        Raises:
            StoreError: the collection exists.
            InvalidInputError: a setting the edge engine does not take (shards, sparse modifiers but IDF).
        """
        edge = _edge()
        given = sorted(k for k, v in unsupported.items() if v is not None)
        if given:
            msg = f"The edge engine does not support these collection settings: {', '.join(given)}."
            raise InvalidInputError(msg)
        config = edge.EdgeConfig(
            vectors=vector_params(vectors_config),
            sparse_vectors=sparse_vector_params(sparse_vectors_config),
            on_disk_payload=on_disk_payload,
        )
        with self._guard:
            if self.collection_exists(collection_name):
                msg = f"Collection {collection_name!r} already exists in {self.path}."
                raise StoreError(msg)
            self._remove_unfinished(collection_name)
            self._write_metadata(collection_name, dict(metadata or {}))
            target, scratch = self._shard_dir(collection_name), self._unfinished_dir(collection_name)
            try:
                # Complete (and closed) before it takes the collection's name: see the module docstring.
                edge.EdgeShard.create(str(scratch), config).close()
                scratch.rename(target)
                self._shards[collection_name] = edge.EdgeShard.load(str(target))
            except BaseException:
                self._metadata_file(collection_name).unlink(missing_ok=True)
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        return True

    def update_collection(
        self, collection_name: str, *, metadata: dict[str, Any] | None = None, **unsupported: Any
    ) -> bool:
        """Merge ``metadata`` into the collection's (top-level keys replaced, others kept, as in Qdrant).

        Other settings are not supported.
        """
        given = sorted(k for k, v in unsupported.items() if v is not None)
        if given:
            msg = f"The edge engine can only update a collection's metadata, not {', '.join(given)}."
            raise InvalidInputError(msg)
        with self._guard:
            self._shard(collection_name)  # exists
            if metadata:
                self._write_metadata(collection_name, {**self._read_metadata(collection_name), **metadata})
        return True

    def delete_collection(self, collection_name: str) -> bool:
        """Close and delete the collection's shard and metadata; ``False`` if it did not exist."""
        with self._guard:
            shard = self._shards.pop(collection_name, None)
            if shard is not None:
                shard.close()
            existed = self.collection_exists(collection_name)
            target = self._shard_dir(collection_name)
            if target.exists():
                # Out of place first (one rename), then removed: see the module docstring.
                scratch = self._unfinished_dir(collection_name)
                target.rename(scratch)
                shutil.rmtree(scratch, ignore_errors=True)
            self._metadata_file(collection_name).unlink(missing_ok=True)
        return existed

    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any, **_: Any) -> None:
        """A payload index: ``models.PayloadSchemaType`` or ``models.KeywordIndexParams``."""
        from qdrant_client import models

        edge = _edge()
        if isinstance(field_schema, models.KeywordIndexParams):
            schema: Any = edge.KeywordIndexParams(is_tenant=field_schema.is_tenant, on_disk=field_schema.on_disk)
        elif isinstance(field_schema, (models.PayloadSchemaType, str)):
            schema = getattr(edge.PayloadSchemaType, models.PayloadSchemaType(field_schema).value.capitalize())
        else:
            msg = (
                "The edge engine takes a PayloadSchemaType or KeywordIndexParams here, "
                f"got {type(field_schema).__name__}."
            )
            raise InvalidInputError(msg)
        self._shard(collection_name).update(edge.UpdateOperation.create_field_index(field_name, schema))

    @staticmethod
    def _edge_id(point_id: Any) -> Any:
        return uuid.UUID(point_id) if isinstance(point_id, str) else point_id

    @staticmethod
    def _record(point: Any) -> Any:
        from qdrant_client import models

        # model_construct: the values come from Qdrant already typed; validating every prompt
        # float again would cost more than the search.
        vector = client_vector(point.vector)
        return models.Record.model_construct(id=_point_id(point.id), payload=point.payload, vector=vector)

    # ------------------------------------------------------------------ reads
    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True, **_: Any) -> Any:
        """``models.CountResult`` of the points matching ``count_filter``."""
        from qdrant_client import models

        shard = self._shard(collection_name)
        return models.CountResult(
            count=shard.count(_edge().CountRequest(exact=exact, filter=edge_filter(count_filter)))
        )

    def scroll(
        self,
        collection_name: str,
        scroll_filter: Any = None,
        limit: int = 10,
        offset: Any = None,
        with_payload: Any = True,
        with_vectors: Any = False,
        **_: Any,
    ) -> tuple[list[Any], Any]:
        """A page of points in id order and the id to pass as ``offset`` for the next page (``None`` after the last)."""
        request = _edge().ScrollRequest(
            offset=None if offset is None else self._edge_id(offset),
            limit=limit,
            filter=edge_filter(scroll_filter),
            with_payload=payload_selector(with_payload),
            with_vector=vector_selector(with_vectors),
        )
        points, next_offset = self._shard(collection_name).scroll(request)
        return [self._record(p) for p in points], None if next_offset is None else _point_id(next_offset)

    def retrieve(
        self, collection_name: str, ids: Sequence[Any], with_payload: Any = True, with_vectors: Any = False, **_: Any
    ) -> list[Any]:
        """The points with these ids that exist (``models.Record``)."""
        points = self._shard(collection_name).retrieve(
            [self._edge_id(i) for i in ids],
            with_payload=payload_selector(with_payload),
            with_vector=vector_selector(with_vectors),
        )
        return [self._record(p) for p in points]

    def query_batch_points(self, collection_name: str, requests: Sequence[Any], **_: Any) -> list[Any]:
        """Nearest-neighbour queries (``models.QueryRequest`` with a dense vector and ``using``).

        Run as one planned batch; one ``QueryResponse`` per request.
        """
        from qdrant_client import models
        from qdrant_client.http.models import QueryResponse

        edge = _edge()
        translated = []
        # The store sends one filter object for a whole batch (with every new point of a large
        # add excluded, for its conflict check): translate each distinct filter once.
        filters: dict[int, Any] = {}
        for request in requests:
            vector = edge_vector(request.query)  # a dense or sparse nearest-vector query, else refused
            if id(request.filter) not in filters:
                filters[id(request.filter)] = edge_filter(request.filter)
            translated.append(
                edge.QueryRequest(
                    limit=request.limit if request.limit is not None else 10,
                    offset=request.offset,
                    query=edge.Query.Nearest(vector, using=request.using),
                    filter=filters[id(request.filter)],
                    with_payload=payload_selector(request.with_payload if request.with_payload is not None else False),
                    with_vector=vector_selector(request.with_vector if request.with_vector is not None else False),
                    score_threshold=request.score_threshold,
                )
            )
        if not translated:
            return []
        results = self._shard(collection_name).query_batch(edge.QueryBatchRequest(translated))
        return [
            QueryResponse(
                points=[
                    models.ScoredPoint.model_construct(
                        id=_point_id(p.id),
                        version=p.version,
                        score=p.score,
                        payload=p.payload,
                        vector=client_vector(p.vector),
                    )
                    for p in points
                ]
            )
            for points in results
        ]

    # ------------------------------------------------------------------ writes
    def upsert(self, collection_name: str, points: Iterable[Any], wait: bool = True, **_: Any) -> None:
        """Insert or replace ``models.PointStruct`` s (or a ``models.Batch``).

        The update is in the write-ahead log when this returns (``wait`` is always true here).
        """
        from qdrant_client import models

        edge = _edge()
        if isinstance(points, models.Batch):
            vectors = points.vectors

            def vector(i: int) -> Any:
                return (
                    {name: values[i] for name, values in vectors.items()} if isinstance(vectors, dict) else vectors[i]
                )

            structs = [
                models.PointStruct(
                    id=point_id, vector=vector(i), payload=points.payloads[i] if points.payloads else None
                )
                for i, point_id in enumerate(points.ids)
            ]
        else:
            structs = list(points)
        converted = []
        for point in structs:
            converted.append(edge.Point(self._edge_id(point.id), edge_vector(point.vector), point.payload))
        if converted:
            self._shard(collection_name).update(edge.UpdateOperation.upsert_points(converted))

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True, **_: Any) -> None:
        """Delete by ``models.PointIdsList`` (or a plain list of ids) or ``models.FilterSelector``."""
        from qdrant_client import models

        edge = _edge()
        shard = self._shard(collection_name)
        if isinstance(points_selector, models.FilterSelector):
            shard.update(edge.UpdateOperation.delete_points_by_filter(edge_filter(points_selector.filter)))
            return
        ids = points_selector.points if isinstance(points_selector, models.PointIdsList) else list(points_selector)
        if ids:
            shard.update(edge.UpdateOperation.delete_points([self._edge_id(i) for i in ids]))

    def flush(self) -> None:
        """Write every open shard's pending changes into its segments."""
        with self._guard:
            for shard in self._shards.values():
                shard.flush()

    def optimize(self, collection_name: str) -> bool:
        """Run the shard's optimizers now; blocks until done. ``True`` if anything changed.

        They merge segments and build the HNSW index when a segment passes the indexing threshold.
        """
        return bool(self._shard(collection_name).optimize())

    def close(self, **_: Any) -> None:
        """Flush and close every shard, release the folder lock, and remove a temporary folder.

        Closing twice does nothing.
        """
        with self._guard:
            if self._closed:
                return
            self._closed = True
            try:
                for shard in self._shards.values():
                    try:
                        shard.flush()
                    finally:
                        shard.close()
                self._shards.clear()
            finally:
                self._file_lock.release()
                if self._remove_temporary is not None:
                    self._remove_temporary()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self.path)!r}{', temporary' if self._temporary else ''})"
