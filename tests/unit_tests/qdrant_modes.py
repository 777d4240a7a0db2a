"""The Qdrant modes every store test runs in: embedded in memory, embedded on disk, the
qdrant-edge engine on disk, and a server.

The server mode starts the ``qdrant/qdrant`` image with testcontainers once per session; where
no Docker engine answers, its tests are skipped with a one-line reason.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

MODES = [
    pytest.param("memory", id="memory"),
    pytest.param("path", id="path"),
    pytest.param("edge", id="edge"),
    pytest.param("server", id="server", marks=pytest.mark.docker),
]
QDRANT_IMAGE = "qdrant/qdrant:v1.16.3"


@functools.cache
def docker_unavailable_reason() -> str | None:
    """``None`` when a Docker engine answers a ping within 3 seconds, else why not (one line)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as error:  # no socket, no permission, no client package
        return f"no Docker engine for the Qdrant server tests ({type(error).__name__})"
    return None


@pytest.fixture(scope="session")
def qdrant_server_url() -> Iterator[str]:
    """URL of a throw-away Qdrant server container (skips cleanly without Docker)."""
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.qdrant import QdrantContainer

    with QdrantContainer(QDRANT_IMAGE) as container:
        yield f"http://{container.rest_host_address}"


def store_location(mode: str, request: pytest.FixtureRequest, tmp_path: Any, name: str = "store") -> dict[str, Any]:
    """Constructor arguments that open a store in ``mode`` (a fresh collection for servers)."""
    if mode == "memory":
        return {"location": ":memory:"}
    if mode == "path":
        return {"path": tmp_path / name}
    if mode == "edge":
        return {"engine": "edge", "path": tmp_path / f"{name}-edge"}
    url = request.getfixturevalue("qdrant_server_url")
    return {"url": url, "collection_name": f"t_{abs(hash((request.node.nodeid, name)))}"}


def open_store(
    mode: str, request: pytest.FixtureRequest, tmp_path: Any, recipe_model: Any, base_model: Any
) -> Iterator[Any]:
    """An empty store over the given models in ``mode``, closed after the test (for fixtures)."""
    from langchain_recipe.knowledge_store import RecipeKnowledgeStore

    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, **store_location(mode, request, tmp_path)
    )
    yield store
    store.close()
