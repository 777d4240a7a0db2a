"""The qdrant-edge engine (``engine="edge"``): what differs from qdrant-client's embedded mode.

The whole store suite (test_knowledge_store.py, test_knowledge_store_lifecycle.py) also runs in
the ``edge`` mode of qdrant_modes.py; this file covers the folder, its lock, the temporary
folder, persistence without close, the filter translation and parallel reads.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from model_variants import other_recipe_model
from qdrant_client import QdrantClient, models

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import FingerprintMismatchError, InvalidInputError, StoreLockedError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore, model_fingerprint
from langchain_recipe.knowledge_store._edge import EdgeClient
from langchain_recipe.nn.recipe_model import RecipeModel

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
]
IDS = ["acme", "zephyr", "oskar"]


def test_reopening_keeps_edits_metadata_and_refuses_another_model(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    make_recipe_model: Callable[..., RecipeModel],
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge") as store:
        store.add_knowledge(STATEMENTS, metadatas=[{"n": i} for i in range(3)], ids=IDS, source="wiki")
        store.for_tenant("acme").add_knowledge(["Globex sells lamps."], ids=["lamps"])
        records = {e.edit_id: e for e in store.list_edits()}
        found = store.search(STATEMENTS[0], k=3)
    assert (path / "recipe_edits").is_dir()
    assert (path / "recipe_edits.metadata.json").is_file()

    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge") as reopened:
        assert {e.edit_id: e for e in reopened.list_edits()} == records
        assert reopened.tenants() == ["acme", "default"]
        metadata = reopened.client.get_collection("recipe_edits").config.metadata
        assert metadata["recipe_model_fingerprint"] == model_fingerprint(recipe_model)
        again = reopened.search(STATEMENTS[0], k=3)
        assert [e.edit_id for e in again] == [e.edit_id for e in found]
        assert [e.score for e in again] == pytest.approx([e.score for e in found], abs=1e-5)

    other = other_recipe_model(make_recipe_model)
    with pytest.raises(FingerprintMismatchError) as raised:
        RecipeKnowledgeStore(other, base_model, path=path, engine="edge")
    assert model_fingerprint(recipe_model) in str(raised.value)
    assert model_fingerprint(other) in str(raised.value)
    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge") as reopened:  # lock released
        assert len(reopened) == 3


def test_a_second_client_on_the_same_folder_gets_a_clear_error(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "edge"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge"):
        with pytest.raises(StoreLockedError, match="in use by another qdrant-edge client") as raised:
            RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge")
        assert "store.close()" in str(raised.value)
        assert "url=" in str(raised.value)
        assert raised.value.__cause__ is None
        assert raised.value.__suppress_context__
    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge") as store:  # free again
        assert len(store) == 0


def test_a_second_process_on_the_same_folder_gets_a_clear_error(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "edge"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            from langchain_recipe.knowledge_store._edge import EdgeClient
            client = EdgeClient({str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
            client.close()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="another qdrant-edge client"):
            RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge")
    finally:
        holder.communicate("\n", timeout=30)
    with RecipeKnowledgeStore(recipe_model, base_model, path=path, engine="edge") as store:
        assert len(store) == 0


def test_edits_survive_a_process_that_ends_without_close(tmp_path: Path) -> None:
    path = tmp_path / "edge"
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import os
            from qdrant_client import models
            from langchain_recipe.knowledge_store._edge import EdgeClient
            client = EdgeClient({str(path)!r})
            client.create_collection("c", {{"key": models.VectorParams(size=2, distance=models.Distance.DOT)}})
            points = [models.PointStruct(id=i, vector={{"key": [1.0, float(i)]}}, payload={{"n": i}}) for i in range(5)]
            client.upsert("c", points)
            os._exit(0)  # no flush, no close: the write-ahead log has the points
        """),
        ],
        check=True,
        timeout=300,  # importing torch in a fresh process is slow on a loaded 2-core machine
    )
    client = EdgeClient(path)  # the dead process's lock went with it
    try:
        assert client.count("c").count == 5
    finally:
        client.close()


def test_without_a_path_the_temporary_folder_is_removed_at_close(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    store = RecipeKnowledgeStore(recipe_model, base_model, engine="edge")
    folder = store.client.path
    store.add_knowledge(STATEMENTS, ids=IDS)
    assert folder.is_dir()
    assert [e.edit_id for e in store.search(STATEMENTS[1], k=1)] == ["zephyr"]
    store.close()
    assert not folder.exists()
    store.close()  # twice is fine

    forgotten = EdgeClient()  # never closed: removed when collected
    folder = forgotten.path
    del forgotten
    gc.collect()
    assert not folder.exists()


def test_optimize_keeps_every_edit_and_answer(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    with RecipeKnowledgeStore(recipe_model, base_model, engine="edge") as store:
        store.add_knowledge(STATEMENTS, ids=IDS)
        before = [[(e.edit_id, round(e.score, 4)) for e in row] for row in store.search_batch(STATEMENTS, k=2)]
        assert isinstance(store.optimize(), bool)
        assert len(store) == len(STATEMENTS)
        assert [[(e.edit_id, round(e.score, 4)) for e in row] for row in store.search_batch(STATEMENTS, k=2)] == before
    with RecipeKnowledgeStore(recipe_model, base_model) as local:  # qdrant-client: nothing to build
        assert local.optimize() is False


def test_edge_always_filters_by_tenant_on_indexed_fields(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    with RecipeKnowledgeStore(recipe_model, base_model, engine="edge") as store:
        store.add_knowledge(STATEMENTS[:1], ids=["acme"])
        assert store._filter() is not None  # the local-mode shortcut is for qdrant-client only
        shard = store.client._shard(store.collection_name)
        assert {"tenant", "source", "edit_id"} <= set(shard.info().payload_schema)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"url": "http://localhost:6333"}, "not url= or client="),
        ({"client": "a client"}, "not url= or client="),
        ({"location": "http://localhost:6333"}, "location='http"),
        ({"engine": "lucene"}, "engine must be one of"),
    ],
)
def test_edge_arguments_that_do_not_fit_raise(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, arguments: dict[str, Any], message: str
) -> None:
    arguments = {"engine": "edge", **arguments}
    with pytest.raises(InvalidInputError, match=message):
        RecipeKnowledgeStore(recipe_model, base_model, **arguments)


def test_a_folder_of_the_other_engine_is_refused(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    with RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "local"):
        pass
    with pytest.raises(InvalidInputError, match="engine='qdrant'"):
        RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "local", engine="edge")
    with RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "edge", engine="edge"):
        pass
    with pytest.raises(InvalidInputError, match="engine='edge'"):
        RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "edge")


# ---------------------------------------------------------------------- the adapter against qdrant-client
def _fill(client: Any) -> None:
    client.create_collection("c", {"key": models.VectorParams(size=3, distance=models.Distance.DOT)})
    points = [
        models.PointStruct(
            id=f"00000000-0000-0000-0000-{i:012d}",
            vector={"key": [1.0, i / 10, -i / 20]},
            payload={
                "tenant": "a" if i % 3 else "b",
                "n": i,
                "when": f"2026-01-{i + 1:02d}T00:00:00+00:00",
                "metadata": {"topic": ["x", "y", "z"][i % 3], "even": i % 2 == 0},
            },
        )
        for i in range(12)
    ]
    client.upsert("c", points, wait=True)


FILTERS = {
    "match value": models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="a"))]),
    "match any nested key": models.Filter(
        must=[models.FieldCondition(key="metadata.topic", match=models.MatchAny(any=["x", "z"]))]
    ),
    "match except": models.Filter(
        must=[models.FieldCondition(key="metadata.topic", match=models.MatchExcept(**{"except": ["x"]}))]
    ),
    "int value and range": models.Filter(
        must=[
            models.FieldCondition(key="metadata.topic", match=models.MatchValue(value="y")),
            models.FieldCondition(key="n", range=models.Range(gte=3, lt=9)),
        ]
    ),
    "should, must_not, has id, nested filter": models.Filter(
        should=[
            models.FieldCondition(key="n", match=models.MatchValue(value=1)),
            models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="b"))]),
        ],
        must_not=[models.HasIdCondition(has_id=["00000000-0000-0000-0000-000000000003"])],
    ),
    "datetime range": models.Filter(
        must=[
            models.FieldCondition(
                key="when", range=models.DatetimeRange(gt="2026-01-03T00:00:00Z", lte="2026-01-07T00:00:00Z")
            )
        ]
    ),
    "single condition, not a list": models.Filter(
        must=models.FieldCondition(key="tenant", match=models.MatchValue(value="b"))
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_select_what_qdrant_client_selects(name: str, tmp_path: Path) -> None:
    local, edge = QdrantClient(location=":memory:"), EdgeClient(tmp_path / "edge")
    try:
        for client in (local, edge):
            _fill(client)
        query_filter = FILTERS[name]
        expected = sorted(str(p.id) for p in local.scroll("c", scroll_filter=query_filter, limit=100)[0])
        assert expected  # a filter that selects nothing would prove nothing
        assert sorted(p.id for p in edge.scroll("c", scroll_filter=query_filter, limit=100)[0]) == expected
        assert edge.count("c", count_filter=query_filter).count == len(expected)
        request = models.QueryRequest(
            query=[0.0, 1.0, 0.0], using="key", limit=3, filter=query_filter, with_payload=["n"]
        )
        (ours,), (theirs,) = edge.query_batch_points("c", [request]), local.query_batch_points("c", [request])
        assert [(p.id, p.payload) for p in ours.points] == [(str(p.id), p.payload) for p in theirs.points]
        assert [p.score for p in ours.points] == pytest.approx([p.score for p in theirs.points], rel=1e-5)
    finally:
        local.close()
        edge.close()


def test_a_boolean_filter_is_refused_not_silently_empty(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    # qdrant-edge-py 0.9 reads MatchValue(True) as the integer 1, which matches no boolean payload.
    with RecipeKnowledgeStore(recipe_model, base_model, engine="edge") as store:
        store.add_knowledge(STATEMENTS[:1], metadatas=[{"checked": True, "n": 1}], ids=["acme"])
        with pytest.raises(InvalidInputError, match="boolean"):
            store.list(filter={"checked": True})
        assert [d.id for d in store.list(filter={"n": 1})] == ["acme"]


def test_scroll_pages_retrieve_delete_and_metadata_merge(tmp_path: Path) -> None:
    edge = EdgeClient(tmp_path / "edge")
    try:
        _fill(edge)
        seen, offset = [], None
        while True:
            page, offset = edge.scroll(
                "c", limit=5, offset=offset, with_payload=models.PayloadSelectorExclude(exclude=["metadata"])
            )
            seen.extend(page)
            assert all(set(p.payload) == {"tenant", "n", "when"} for p in page)
            if offset is None:
                break
        assert len({p.id for p in seen}) == 12
        assert all(isinstance(p.id, str) for p in seen)
        (record,) = edge.retrieve("c", [seen[0].id, "00000000-0000-0000-0000-999999999999"], with_vectors=True)
        assert record.vector["key"][0] == pytest.approx(1.0)
        edge.delete("c", models.PointIdsList(points=[seen[0].id]))
        edge.delete(
            "c",
            models.FilterSelector(
                filter=models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="b"))])
            ),
        )
        assert edge.count("c").count == 12 - 1 - 4 + (1 if seen[0].payload["tenant"] == "b" else 0)
        edge.update_collection("c", metadata={"a": 1, "b": 2})
        edge.update_collection("c", metadata={"b": 3})
        assert edge.get_collection("c").config.metadata == {"a": 1, "b": 3}
        assert edge.delete_collection("c")
        assert not edge.collection_exists("c")
        assert not (tmp_path / "edge" / "c.metadata.json").exists()
        with pytest.raises(InvalidInputError, match="plain file name"):
            edge.collection_exists("../elsewhere")
    finally:
        edge.close()
    EdgeClient(tmp_path / "edge").close()  # the lock was released (its file may stay)


@pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")  # similar statements, tiny model
def test_reads_run_in_parallel_with_writes(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    errors: list[BaseException] = []
    with RecipeKnowledgeStore(recipe_model, base_model, engine="edge") as store:
        store.add_knowledge(STATEMENTS, ids=IDS)

        def read() -> None:
            try:
                for _ in range(10):
                    assert [e.edit_id for e in store.search(STATEMENTS[1], k=1)] == ["zephyr"]
                    assert len(store) >= 3
            except BaseException as error:
                errors.append(error)

        def write(thread: int) -> None:
            try:
                for i in range(5):
                    store.add_knowledge(
                        [f"Parcel {i} of courier {thread} weighs {thread * 5 + i} kilograms."], ids=[f"w{thread}-{i}"]
                    )
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=read) for _ in range(3)] + [
            threading.Thread(target=write, args=(t,)) for t in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(store) == 3 + 15


def test_payload_indexes_cut_short_at_creation_are_made_at_the_next_open(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_recipe.knowledge_store._edge import EdgeClient

    made: list[str] = []
    real = EdgeClient.create_payload_index

    def dies_at_the_second(self: EdgeClient, collection_name: str, field_name: str, *args: Any, **kwargs: Any) -> None:
        if made:
            raise KeyboardInterrupt  # the process stops here
        made.append(field_name)
        real(self, collection_name, field_name, *args, **kwargs)

    monkeypatch.setattr(EdgeClient, "create_payload_index", dies_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "store", engine="edge")
    monkeypatch.setattr(EdgeClient, "create_payload_index", real)

    with RecipeKnowledgeStore(recipe_model, base_model, path=tmp_path / "store", engine="edge") as store:
        shard = store.client._shard(store.collection_name)
        assert made == ["tenant"]
        assert {"tenant", "source", "edit_id"} <= set(shard.info().payload_schema)
        assert store.client.get_collection(store.collection_name).config.metadata["payload_indexes"] == "complete"
        store.add_knowledge(STATEMENTS[:1], ids=["acme"])
        assert len(store) == 1
