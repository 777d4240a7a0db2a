"""The life of an edit in RecipeKnowledgeStore: provenance, tenants, conflicts, export/import,
re-encoding, request-size batching, concurrency and the on-disk folder lock.

Tests that take ``store`` run in each Qdrant mode (in memory, on disk, server when Docker runs).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from model_variants import other_recipe_model, smaller_base_model
from qdrant_modes import MODES, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import (
    EditConflictError,
    EditConflictWarning,
    FingerprintMismatchError,
    InvalidInputError,
    StoreError,
    StoreLockedError,
)
from langchain_recipe.knowledge_store import KnowledgeEdit, RecipeKnowledgeStore, model_fingerprint
from langchain_recipe.nn import RecipeModel

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
]
IDS = ["acme", "zephyr", "oskar"]
NEW_CEO = "The chief executive of Acme Corporation is Grace Hopper."


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(
    mode: str,
    request: pytest.FixtureRequest,
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    tmp_path: Path,
) -> Callable[..., RecipeKnowledgeStore]:
    """Open stores in the test's mode (closed at teardown); ``name`` picks another folder/collection."""
    opened: list[RecipeKnowledgeStore] = []

    def make(name: str = "store", **kwargs: Any) -> RecipeKnowledgeStore:
        kwargs.setdefault("recipe_model", recipe_model)
        kwargs.setdefault("base_model", base_model)
        store = RecipeKnowledgeStore(**store_location(mode, request, tmp_path, name), **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., RecipeKnowledgeStore]) -> RecipeKnowledgeStore:
    return make_store()


# ---------------------------------------------------------------------- provenance and filters
def test_provenance_is_recorded_and_filterable(store: RecipeKnowledgeStore) -> None:
    store.add_knowledge(
        STATEMENTS[:2],
        metadatas=[{"topic": "companies"}, {"topic": "places"}],
        ids=IDS[:2],
        source="wiki",
        author="ada",
    )
    store.add_knowledge(STATEMENTS[2:], metadatas=[{"topic": "people", "source": "crm"}], ids=IDS[2:])

    records = {e.edit_id: e for e in store.list_edits()}
    assert records["acme"].source == "wiki"
    assert records["acme"].author == "ada"
    assert records["acme"].tenant == "default"
    assert records["oskar"].source == "crm"  # from metadata["source"] when no source= is given
    assert records["oskar"].author is None
    assert records["oskar"].metadata == {"topic": "people", "source": "crm"}
    assert records["acme"].created_at == records["acme"].updated_at

    assert [e.edit_id for e in store.list_edits(source="wiki", filter={"topic": "places"})] == ["zephyr"]
    assert sorted(e.edit_id for e in store.list_edits(filter={"topic": ["people", "companies"]})) == ["acme", "oskar"]
    assert [d.id for d in store.list(author="ada", filter={"topic": "companies"})] == ["acme"]
    assert store.count(filter={"topic": "places"}) == 1
    found = store.similarity_search("Acme", k=3, filter={"topic": "people"})
    assert [d.id for d in found] == ["oskar"]
    assert found[0].metadata == {"topic": "people", "source": "crm"}
    document = records["acme"].to_document(with_provenance=True)
    assert document.metadata["source"] == "wiki"
    assert document.metadata["edit_id"] == "acme"

    assert store.delete(filter={"topic": "places"}) == 1
    assert sorted(d.id for d in store.list()) == ["acme", "oskar"]
    with pytest.raises(InvalidInputError, match="filter"):
        store.list(filter={"topic": 1.5})
    with pytest.raises(InvalidInputError, match="ids"):
        store.delete()


def test_re_adding_an_id_after_reopening_updates_it(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:
        store.add_knowledge(["The Zephyr Tower is located in Lisbon."], ids=["fact-1"], source="v1")
        (first,) = store.get_edits(["fact-1"])

    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:
        store.add_knowledge(["The Zephyr Tower is located in Porto."], ids=["fact-1"], source="v2")
        assert len(store) == 1
        (second,) = store.get_edits(["fact-1"])
        assert second.statement == "The Zephyr Tower is located in Porto."
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert second.source == "v2"
        assert [d.id for d in store.similarity_search("Zephyr Tower", k=5)] == ["fact-1"]


# ---------------------------------------------------------------------- tenants
def test_tenants_are_isolated(store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> None:
    acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
    acme.add_knowledge(STATEMENTS[:2], ids=["ceo", "tower"])
    globex.add_knowledge(["The chief executive of Globex is Hank Scorpio."], ids=["ceo"])

    assert (len(store), len(acme), len(globex)) == (0, 2, 1)
    assert store.tenants() == ["acme", "globex"]
    assert acme.get_by_ids(["ceo"])[0].page_content == STATEMENTS[0]
    assert globex.get_by_ids(["ceo"])[0].page_content == "The chief executive of Globex is Hank Scorpio."
    assert globex.get_by_ids(["tower"]) == []
    force_gate(store, accept=["Who runs Acme?"])
    assert {e.tenant for e in globex.search("Who runs Acme?", k=10)} == {"globex"}
    assert [e.edit_id for e in globex.search("Who runs Acme?", k=10, gated=True)] == ["ceo"]
    assert globex.retrieve_prompts(["Who runs Acme?"])[0].tenant == "globex"
    assert {d.page_content for d in globex.similarity_search("Acme", k=10)} == {
        "The chief executive of Globex is Hank Scorpio."
    }
    # Writes through one tenant never touch another's edit with the same id.
    assert globex.delete(["ceo", "tower"]) == 1
    assert len(acme) == 2
    with pytest.raises(InvalidInputError, match="No edit"):
        globex.update_knowledge("tower", "The Zephyr Tower is located in Porto.")
    # Views share the client and models; the constructor's tenant= is the same thing.
    assert acme.client is store.client
    assert acme.recipe_model is store.recipe_model
    assert acme.tenant == "acme"
    with pytest.raises(InvalidInputError, match="Tenant"):
        store.for_tenant("")


# ---------------------------------------------------------------------- conflicts
def test_default_conflict_policy_keeps_both_and_reports(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    store.add_knowledge(STATEMENTS, ids=IDS)
    force_gate(store, accept=[NEW_CEO])  # the new statement, as a query, passes the gate

    assert store.on_conflict == "keep_both"
    with pytest.warns(EditConflictWarning, match="acme"):
        store.add_knowledge([NEW_CEO], ids=["acme-2"])

    assert len(store) == 4
    (record,) = store.get_edits(["acme-2"])
    assert "acme" in record.conflicts_with
    assert record.replaces == []


def test_conflict_replace_removes_the_old_edit(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    store.add_knowledge(STATEMENTS[:1], ids=IDS[:1])
    force_gate(store, accept=[NEW_CEO])

    store.add_knowledge([NEW_CEO], ids=["acme-2"], on_conflict="replace")

    assert [d.id for d in store.list()] == ["acme-2"]
    assert store.get_edits(["acme-2"])[0].replaces == ["acme"]


def test_statements_of_one_batch_that_match_each_other_are_kept_and_recorded(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    # Three answers to one question (same subject, same relation), and a fact about another subject.
    batch = [STATEMENTS[0], NEW_CEO, "The chief executive of Acme Corporation is Alan Turing.", STATEMENTS[1]]
    ids = ["acme", "acme-2", "acme-3", "zephyr"]
    force_gate(store, accept=batch)  # each statement, as a query, passes the gate for the others

    store.add_knowledge(batch, ids=ids, on_conflict="replace")  # within a batch: kept, never replaced

    edits = {e.edit_id: e for e in store.get_edits(ids)}
    assert len(store) == 4
    assert edits["acme"].conflicts_with == []
    assert edits["acme-2"].conflicts_with == ["acme"]
    assert sorted(edits["acme-3"].conflicts_with) == ["acme", "acme-2"]
    assert edits["zephyr"].conflicts_with == []  # passed the gate too, but is about another subject
    assert all(e.replaces == [] for e in edits.values())


def test_conflict_refuse_raises_with_the_existing_edit_and_writes_nothing(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    store.add_knowledge(STATEMENTS[:1], ids=IDS[:1])
    mira = "Mira Solberg plays for the Chicago Bulls."
    force_gate(store, accept=[NEW_CEO], reject=[mira])

    with pytest.raises(EditConflictError) as raised:
        store.add_knowledge([NEW_CEO, mira], ids=["acme-2", "mira"], on_conflict="refuse")

    assert isinstance(raised.value.existing[0], KnowledgeEdit)
    assert raised.value.existing[0].edit_id == "acme"
    assert raised.value.statement == NEW_CEO
    assert "on_conflict='replace'" in str(raised.value)
    assert [d.id for d in store.list()] == ["acme"]


def test_no_conflict_when_the_gate_rejects_and_same_id_is_an_update(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    store.add_knowledge(STATEMENTS[:1], ids=IDS[:1], on_conflict="refuse")
    force_gate(store, reject=[NEW_CEO])
    with warnings.catch_warnings():
        warnings.simplefilter("error", EditConflictWarning)
        store.add_knowledge([NEW_CEO], ids=["acme-2"], on_conflict="refuse")
    with pytest.raises(InvalidInputError, match="on_conflict"):
        store.add_knowledge(["Anything."], on_conflict="merge")  # type: ignore[arg-type]
    assert sorted(d.id for d in store.list()) == ["acme", "acme-2"]


def test_updating_an_id_does_not_conflict_with_itself(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    store.add_knowledge([STATEMENTS[0]], ids=["acme"])
    force_gate(store, accept=[NEW_CEO])

    store.add_knowledge([NEW_CEO], ids=["acme"], on_conflict="refuse")

    assert [d.page_content for d in store.list()] == [NEW_CEO]


# ---------------------------------------------------------------------- export and import
def test_export_import_round_trip(make_store: Callable[..., RecipeKnowledgeStore]) -> None:
    source = make_store("source")
    source.add_knowledge(STATEMENTS[:2], metadatas=[{"n": 1}, {"n": 2}], ids=IDS[:2], source="wiki", author="ada")
    source.for_tenant("acme").add_knowledge(STATEMENTS[2:], ids=IDS[2:])
    buffer = io.StringIO()

    assert source.export_jsonl(buffer, all_tenants=True) == 3

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert {line["id"] for line in lines} == set(IDS)
    assert all(
        set(line) == {"id", "statement", "metadata", "tenant", "source", "author", "created_at", "updated_at"}
        for line in lines
    )
    target = make_store("target")
    assert sorted(target.import_jsonl(io.StringIO(buffer.getvalue()), keep_tenants=True)) == sorted(IDS)
    before = {
        (e.tenant, e.edit_id): e.to_json() for view in (source, source.for_tenant("acme")) for e in view.list_edits()
    }
    after = {
        (e.tenant, e.edit_id): e.to_json() for view in (target, target.for_tenant("acme")) for e in view.list_edits()
    }
    assert after == before  # statements, metadata, provenance and timestamps
    (found,) = target.search(STATEMENTS[0], k=1)
    assert found.prompt.shape == (3, 32)
    # Without keep_tenants every record lands in the importing store's tenant.
    other = make_store("other")
    other.import_jsonl(io.StringIO(buffer.getvalue()))
    assert len(other) == 3


def test_export_to_a_file_and_import_refuses_a_bad_line(
    make_store: Callable[..., RecipeKnowledgeStore], tmp_path: Path
) -> None:
    store = make_store()
    store.add_knowledge(STATEMENTS, ids=IDS)
    path = tmp_path / "edits.jsonl"
    assert store.export_jsonl(path) == 3
    path.write_text(path.read_text() + '{"statement": "   "}\n')
    target = make_store("target")

    with pytest.raises(InvalidInputError, match="Line 4"):
        target.import_jsonl(path)
    assert len(target) == 0
    path.write_text("not json\n")
    with pytest.raises(InvalidInputError, match="Line 1"):
        target.import_jsonl(path)


# ---------------------------------------------------------------------- reencode and the fingerprint guard
def test_reencode_rebuilds_keys_and_records_the_new_fingerprint(
    store: RecipeKnowledgeStore, make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel
) -> None:
    store.add_knowledge(STATEMENTS, metadatas=[{"n": i} for i in range(3)], ids=IDS, source="wiki")
    store.for_tenant("acme").add_knowledge(["Globex sells lamps."], ids=["lamps"])
    records = {e.edit_id: e for e in store.list_edits()}
    new_model = other_recipe_model(make_recipe_model)

    assert store.reencode(new_model) == 4

    assert store.fingerprints["recipe_model"] == model_fingerprint(new_model)
    stored = store.client.get_collection(store.collection_name).config.metadata
    assert stored["recipe_model_fingerprint"] == model_fingerprint(new_model)
    assert not stored["reencode_in_progress"]
    assert {e.edit_id: e for e in store.list_edits()} == records  # payloads kept
    (point,) = store._retrieve_points(["acme"], with_vectors=True)
    with torch.no_grad():
        expected = new_model.encode_knowledge([STATEMENTS[0]])[0] / math.sqrt(new_model.config.knowledge_dim)
    assert torch.allclose(torch.tensor(point.vector["key"]), expected, atol=1e-5)
    assert store.for_tenant("acme").recipe_model is new_model  # views switch too
    assert len(store.for_tenant("acme")) == 1


def test_reencode_to_other_dimensions_recreates_the_collection(
    store: RecipeKnowledgeStore, make_recipe_model: Callable[..., RecipeModel]
) -> None:
    store.add_knowledge(STATEMENTS, ids=IDS)
    new_model = make_recipe_model(knowledge_dim=48)

    store.reencode(new_model)

    assert store.client.get_collection(store.collection_name).config.params.vectors["key"].size == 48
    assert sorted(d.id for d in store.list()) == sorted(IDS)
    assert len(store.search(STATEMENTS[0], k=3)) == 3


def test_opening_with_another_model_or_hidden_size_fails_at_open_naming_both(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    make_recipe_model: Callable[..., RecipeModel],
    tokenizer: Any,
    tmp_path: Path,
) -> None:

    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:
        store.add_knowledge(STATEMENTS, ids=IDS)
    # Another checkpoint (same sizes).
    other = other_recipe_model(make_recipe_model)
    with pytest.raises(FingerprintMismatchError) as raised:
        RecipeKnowledgeStore(other, base_model, path=path)
    message = str(raised.value)
    assert model_fingerprint(recipe_model) in message
    assert model_fingerprint(other) in message
    assert "reencode" in message
    assert "new collection_name" in message
    # Another base LM with another hidden size, and a RecipeModel for it.
    small_lm = smaller_base_model(tokenizer)
    small_recipe = make_recipe_model(lm_hidden_size=16)
    with pytest.raises(FingerprintMismatchError) as raised:
        RecipeKnowledgeStore(small_recipe, small_lm, path=path)
    message = str(raised.value)
    assert "hidden size 32" in message
    assert "hidden size 16" in message
    assert "'tiny-llama'" in message
    assert "'tiny-llama-16'" in message
    # The failed opens released the folder; on_mismatch="reencode" moves the store to the new models.
    with RecipeKnowledgeStore(small_recipe, small_lm, path=path, on_mismatch="reencode") as moved:
        assert sorted(d.id for d in moved.list()) == sorted(IDS)
        assert moved.search(STATEMENTS[0], k=1)[0].prompt.shape == (3, 16)
    with RecipeKnowledgeStore(small_recipe, small_lm, path=path) as reopened:
        assert len(reopened) == 3
    with pytest.raises(FingerprintMismatchError):
        RecipeKnowledgeStore(recipe_model, base_model, path=path)


# ---------------------------------------------------------------------- storage and requests
@pytest.mark.parametrize("prompt_storage", ["payload_fp16", "multivector"])
def test_both_prompt_storages_return_the_prompt(
    make_store: Callable[..., RecipeKnowledgeStore], base_model: HuggingFaceBaseModel, prompt_storage: str
) -> None:
    store = make_store(prompt_storage=prompt_storage)
    store.add_knowledge(STATEMENTS, ids=IDS)
    with torch.no_grad():
        _, prompts = store.recipe_model.encode_edits(STATEMENTS, base_model)

    found = {e.edit_id: e for e in store.search(STATEMENTS[1], k=3)}

    tolerance = {"rtol": 1e-3, "atol": 1e-4} if prompt_storage == "payload_fp16" else {"rtol": 0, "atol": 1e-6}
    for i, edit_id in enumerate(IDS):
        assert torch.allclose(found[edit_id].prompt, prompts[i], **tolerance)
    assert store.prompt_storage == prompt_storage
    assert store.request_bytes_per_edit() > 0


def test_upserts_are_split_under_the_request_size_limit(make_store: Callable[..., RecipeKnowledgeStore]) -> None:
    probe = make_store("probe")
    point_bytes = probe.request_bytes_per_edit(STATEMENTS[0])
    store = make_store(max_request_bytes=int(point_bytes * 2.5))
    in_process = store._shared.capabilities.in_process
    # Only a request to a server has a size limit; an in-process engine is sized as if it were one
    # here, so that the splitting is tested in every mode (the server mode needs Docker).
    store._shared.capabilities = replace(store._shared.capabilities, in_process=False)
    calls: list[int] = []
    upsert = store.client.upsert

    def counting_upsert(collection_name: str, points: Any, **kwargs: Any) -> Any:
        calls.append(len(points))
        return upsert(collection_name, points, **kwargs)

    store.client.upsert = counting_upsert  # type: ignore[method-assign]
    statements = [f"Fact number {i} is about the object {i}." for i in range(7)]
    store.add_knowledge(statements)

    assert len(store) == 7
    assert calls == [2, 2, 2, 1]
    tiny = make_store("tiny", max_request_bytes=1024)
    tiny._shared.capabilities = replace(tiny._shared.capabilities, in_process=False)
    with pytest.raises(StoreError, match="max_request_bytes"):
        tiny.add_knowledge(STATEMENTS[:1])
    assert len(tiny) == 0
    if in_process:  # no request, no limit: chunked by count only
        tiny._shared.capabilities = replace(tiny._shared.capabilities, in_process=True)
        tiny.add_knowledge(STATEMENTS[:1])
        assert len(tiny) == 1


# ---------------------------------------------------------------------- concurrency and locking
def test_eight_threads_adding_twenty_each_store_exactly_160(store: RecipeKnowledgeStore) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(20):
                store.add_knowledge(
                    [f"Item {i} of worker {thread} is coloured shade {thread * 20 + i}."], ids=[f"t{thread}-{i}"]
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(store) == 160
    ids = [f"t{t}-{i}" for t in range(8) for i in range(20)]
    assert [d.id for d in store.get_by_ids(ids)] == ids
    assert {d.id for d in store.similarity_search("shade", k=200)} == set(ids)
    statement = "Item 7 of worker 3 is coloured shade 67."
    assert store.get_by_ids(["t3-7"])[0].page_content == statement


def test_a_second_client_on_the_same_folder_gets_a_clear_error(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path):
        with pytest.raises(StoreLockedError, match="in use by another Qdrant client") as raised:
            RecipeKnowledgeStore(recipe_model, base_model, path=path)
        assert raised.value.__cause__ is None  # no chained stack trace from qdrant-client
        assert raised.value.__suppress_context__


def test_a_second_process_on_the_same_folder_gets_a_clear_error(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    path.mkdir()
    holder = subprocess.Popen(  # another process that holds the folder's lock
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from qdrant_client import QdrantClient
            client = QdrantClient(path={str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match="another Qdrant client"):
            RecipeKnowledgeStore(recipe_model, base_model, path=path)
    finally:
        holder.communicate("\n", timeout=30)
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:  # free again
        assert len(store) == 0


def test_an_unreachable_server_is_a_store_error_without_the_api_key(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel
) -> None:
    with pytest.raises(StoreError, match="Cannot reach Qdrant") as raised:
        RecipeKnowledgeStore(recipe_model, base_model, url="http://127.0.0.1:9", api_key="s3cr3t-key")
    assert "s3cr3t-key" not in str(raised.value)
    assert "s3cr3t-key" not in repr(raised.value)


# ---------------------------------------------------------------------- LangChain VectorStore
def test_vectorstore_interface(store: RecipeKnowledgeStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.embeddings is None
    documents = [Document(page_content=s, metadata={"n": i}) for i, s in enumerate(STATEMENTS)]
    ids = store.add_documents(documents, ids=IDS)
    assert ids == IDS
    assert all(d.id is None for d in documents)  # not changed

    scored = store.similarity_search_with_score(STATEMENTS[0], k=3)
    assert sorted(d.id for d, _ in scored) == sorted(IDS)
    assert all(type(score) is float for _, score in scored)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    retriever = store.as_retriever(search_kwargs={"k": 2})
    assert isinstance(retriever, VectorStoreRetriever)
    assert len(retriever.invoke(STATEMENTS[0])) == 2
    assert store.add_texts(["Mira Solberg plays for the Chicago Bulls."], [{"n": 9}], ids=["mira"]) == ["mira"]
    assert store.get_by_ids(["mira"]) == [
        Document(id="mira", page_content="Mira Solberg plays for the Chicago Bulls.", metadata={"n": 9})
    ]
    with pytest.raises(NotImplementedError):
        store.similarity_search_with_relevance_scores("x")


async def test_vectorstore_async_methods(store: RecipeKnowledgeStore) -> None:
    ids = await store.aadd_documents([Document(page_content=STATEMENTS[0], metadata={"a": 1})], ids=["acme"])
    assert ids == ["acme"]
    assert [d.id for d in await store.asimilarity_search("Acme", k=1)] == ["acme"]
    assert (await store.aget_by_ids(["acme"]))[0].metadata == {"a": 1}
    await store.adelete(["acme"])
    assert len(store) == 0


def test_from_texts(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    store = RecipeKnowledgeStore.from_texts(
        STATEMENTS, metadatas=[{"n": i} for i in range(3)], ids=IDS, recipe_model=recipe_model, base_model=base_model
    )
    try:
        assert sorted(d.id for d in store.list()) == sorted(IDS)
    finally:
        store.close()
    with pytest.raises(InvalidInputError, match="embedding=None"):
        from langchain_core.embeddings import DeterministicFakeEmbedding

        RecipeKnowledgeStore.from_texts(
            STATEMENTS, DeterministicFakeEmbedding(size=8), recipe_model=recipe_model, base_model=base_model
        )


def test_embedded_single_tenant_skips_the_payload_filter_until_a_second_tenant_writes(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    # Embedded Qdrant filters payloads in a Python loop over every point (docs/qdrant.md has the
    # cost); a collection that only one tenant ever wrote to needs no filter.
    path = tmp_path / "store"
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as store:
        store.add_knowledge(STATEMENTS[:1], ids=["acme"])
        assert store._filter() is None
        acme = store.for_tenant("acme")
        assert acme._filter() is not None  # a tenant that never wrote still filters (reads nothing)
        assert acme.search(STATEMENTS[0], k=5) == []
        acme.add_knowledge(STATEMENTS[1:2], ids=["zephyr"])
        assert store._filter() is not None
        assert [e.edit_id for e in store.search(STATEMENTS[1], k=5)] == ["acme"]
    with RecipeKnowledgeStore(recipe_model, base_model, path=path) as reopened:  # remembered
        assert reopened._filter() is not None
        assert [e.edit_id for e in reopened.search(STATEMENTS[1], k=5)] == ["acme"]


def test_import_with_duplicate_ids_writes_nothing(store: RecipeKnowledgeStore) -> None:
    lines = [
        {"id": "a", "statement": "One.", "tenant": "t1"},
        {"id": "b", "statement": "Two.", "tenant": "t2"},
        {"id": "b", "statement": "Three.", "tenant": "t2"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)

    with pytest.raises(InvalidInputError, match="unique"):
        store.import_jsonl(io.StringIO(text), keep_tenants=True)

    assert store.tenants() == []


@pytest.mark.parametrize("engine", ["qdrant", "edge"])
@pytest.mark.parametrize("crash", ["while staging", "while replacing"])
def test_a_reencode_to_other_sizes_cut_short_loses_no_edit(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    make_recipe_model: Callable[..., RecipeModel],
    tmp_path: Path,
    engine: str,
    crash: str,
) -> None:
    """The process stops at the first write of a phase (as a kill would); the next open, with the
    old or the new models, finds every edit."""
    path, new_model = tmp_path / "store", make_recipe_model(knowledge_dim=48)
    store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path, engine=engine)
    store.add_knowledge(STATEMENTS, ids=IDS, metadatas=[{"n": i} for i in range(len(IDS))])
    real_upsert = store.client.upsert
    staging = store.collection_name + "__reencode_staging"

    def dying_upsert(collection_name: str, *args: Any, **kwargs: Any) -> Any:
        if (collection_name == staging) == (crash == "while staging"):
            raise KeyboardInterrupt  # the process stops here
        return real_upsert(collection_name, *args, **kwargs)

    store.client.upsert = dying_upsert
    with pytest.raises(KeyboardInterrupt):
        store.reencode(new_model)
    store.client.upsert = real_upsert
    store.close()

    if crash == "while staging":  # the collection was not touched: the old models open it whole
        with RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path, engine=engine) as old:
            assert sorted((e.edit_id, e.metadata["n"]) for e in old.list_edits()) == sorted(
                (edit_id, n) for n, edit_id in enumerate(IDS)
            )
            assert not old.client.collection_exists(staging)
    else:  # the staged edits are the only whole copy: the old models are refused, the new ones finish
        with pytest.raises(FingerprintMismatchError, match="was being re-encoded for other models"):
            RecipeKnowledgeStore(
                recipe_model=recipe_model, base_model=base_model, path=path, engine=engine, on_mismatch="reencode"
            )
        with RecipeKnowledgeStore(recipe_model=new_model, base_model=base_model, path=path, engine=engine) as new:
            assert sorted((e.edit_id, e.metadata["n"]) for e in new.list_edits()) == sorted(
                (edit_id, n) for n, edit_id in enumerate(IDS)
            )
            assert new.client.get_collection(new.collection_name).config.params.vectors["key"].size == 48
            assert not new.client.collection_exists(staging)
            assert len(new) == len(new.search(STATEMENTS[0], k=10)) == len(IDS)
