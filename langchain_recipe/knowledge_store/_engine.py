"""The storage engine under a knowledge store: one interface, one factory, capabilities known once.

Three engines hold a store's points, all spoken to through :class:`StoreEngine` (the part of
``qdrant_client.QdrantClient`` the store calls, with ``qdrant_client.models`` arguments):

* a Qdrant server or cluster (``url=``): a ``QdrantClient`` over HTTP;
* qdrant-client's embedded mode (``location=":memory:"`` or ``path=``): a ``QdrantClient`` that
  runs in Python in this process;
* qdrant-edge-py (``engine="edge"``): :class:`~._edge.EdgeClient`, Qdrant's Rust engine in this
  process.

They differ in what the store may rely on; :func:`open_engine` works that out once, as
:class:`EngineCapabilities`, so no call site asks which engine it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import SecretStr

from langchain_recipe.errors import InvalidInputError, StoreError, StoreLockedError
from langchain_recipe.knowledge_store._edge import LOCK_FILE as EDGE_LOCK_FILE
from langchain_recipe.knowledge_store._edge import EdgeClient

__all__ = ["ENGINES", "Engine", "EngineCapabilities", "OpenedEngine", "StoreEngine", "capabilities_of", "open_engine"]

Engine = Literal["qdrant", "edge"]
ENGINES = ("qdrant", "edge")


class StoreEngine(Protocol):
    """The ``QdrantClient`` methods a knowledge store calls (``qdrant_client.models`` in and out)."""

    def collection_exists(self, collection_name: str) -> bool: ...
    def get_collection(self, collection_name: str) -> Any: ...
    def create_collection(self, collection_name: str, vectors_config: Any, **kwargs: Any) -> bool: ...
    def update_collection(self, collection_name: str, **kwargs: Any) -> bool: ...
    def delete_collection(self, collection_name: str) -> bool: ...
    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any, **kwargs: Any) -> Any: ...
    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True) -> Any: ...
    def scroll(self, collection_name: str, **kwargs: Any) -> tuple[list[Any], Any]: ...
    def retrieve(self, collection_name: str, ids: Any, **kwargs: Any) -> list[Any]: ...
    def query_batch_points(self, collection_name: str, requests: Any, **kwargs: Any) -> list[Any]: ...
    def upsert(self, collection_name: str, points: Any, **kwargs: Any) -> Any: ...
    def delete(self, collection_name: str, points_selector: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class EngineCapabilities:
    """What the store may rely on in an engine, decided once when it is opened.

    Attributes:
        in_process: the engine runs in this process (embedded or edge): a failure is not an
            unreachable server, and an upsert is no HTTP request, so it has no size limit.
        embedded: qdrant-client's embedded mode: plain Python objects (every call is serialised
            under the store's lock), no payload indexes, payload filters evaluated point by point
            (so the store records which tenants wrote, and skips the tenant filter when only its
            own did).
        sole_writer: embedded, and opened by the store itself, so no other client writes to the
            collection: the store may mirror the keys in a float32 :class:`~._key_index.KeyIndex`
            and rely on the tenants it recorded.
        optimizable: the edge engine: :meth:`RecipeKnowledgeStore.optimize` builds its HNSW index.
    """

    in_process: bool
    embedded: bool
    sole_writer: bool
    optimizable: bool


@dataclass(frozen=True)
class OpenedEngine:
    """An engine, its capabilities, and where it is (a folder, URL or ``":memory:"``, for messages)."""

    engine: StoreEngine
    capabilities: EngineCapabilities
    where: str


def capabilities_of(engine: Any, *, owns_client: bool) -> EngineCapabilities:
    """The capabilities of a ``QdrantClient`` or :class:`EdgeClient` (``owns_client``: the store opened it)."""
    from qdrant_client.local.qdrant_local import QdrantLocal

    embedded = isinstance(getattr(engine, "_client", None), QdrantLocal)
    edge = isinstance(engine, EdgeClient)
    return EngineCapabilities(
        in_process=embedded or edge, embedded=embedded, sole_writer=embedded and owns_client, optimizable=edge
    )


def open_engine(
    *,
    location: str | None = None,
    path: str | Path | None = None,
    url: str | None = None,
    api_key: SecretStr | None = None,
    https: bool | None = None,
    engine: str = "qdrant",
    client: Any = None,
) -> OpenedEngine:
    """Open the engine a store's arguments name (or take ``client`` as it is, not owned).

    Raises:
        InvalidInputError: an unknown engine, two locations, ``engine="edge"`` with a server or a
            client, or a folder that holds the other engine's store.
        StoreLockedError: another client or process holds the on-disk folder.
        StoreError: the store cannot be opened (a folder that cannot be made, a bad URL).
    """
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
    if client is not None:
        opened = client
    elif engine == "edge":
        opened = _open_edge(location, path, url)
    else:
        opened = _open_qdrant(location, path, url, api_key, https)
    where = str(path or url or location or (opened.path if isinstance(opened, EdgeClient) else ":memory:"))
    return OpenedEngine(opened, capabilities_of(opened, owns_client=client is None), where)


def _one_location(location: str | None, path: str | Path | None, url: str | None) -> None:
    given = [name for name, value in (("location", location), ("path", path), ("url", url)) if value]
    if len(given) > 1:
        msg = f"Give only one of location, path or url (got {', '.join(given)})."
        raise InvalidInputError(msg)


def _open_edge(location: str | None, path: str | Path | None, url: str | None) -> EdgeClient:
    _one_location(location, path, url)
    if path is not None and (Path(path) / "meta.json").is_file() and (Path(path) / "collection").is_dir():
        msg = (
            f"The folder {path} holds a qdrant-client (engine='qdrant') store. Open it with engine='qdrant', "
            "or move its edits with export_jsonl / import_jsonl into a new edge folder."
        )
        raise InvalidInputError(msg)
    return EdgeClient(path)


def _open_qdrant(
    location: str | None, path: str | Path | None, url: str | None, api_key: SecretStr | None, https: bool | None
) -> Any:
    from qdrant_client import QdrantClient

    _one_location(location, path, url)
    if path is not None and (Path(path) / EDGE_LOCK_FILE).exists():
        msg = (
            f"The folder {path} holds a qdrant-edge store. Open it with engine='edge', or move its edits "
            "with export_jsonl / import_jsonl into a new qdrant-client folder."
        )
        raise InvalidInputError(msg)
    try:
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=str(path))
        if url is not None:
            secret = api_key.get_secret_value() if api_key else None
            return QdrantClient(url=url, api_key=secret, https=https)
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
