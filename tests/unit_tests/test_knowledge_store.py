"""Tests of RecipeKnowledgeStore (langchain_recipe.knowledge_store) with the tiny models.

Every test that takes ``knowledge_store`` runs in each Qdrant mode (congruence): in memory, an
embedded on-disk folder under ``tmp_path``, and a Qdrant server container (skipped without
Docker). The RecipeModel and base LM are the tiny random ones from ``conftest``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from facts import store_snapshot
from langchain_core.documents import Document
from model_variants import other_recipe_model
from pydantic import SecretStr
from qdrant_modes import MODES, open_store, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import FingerprintMismatchError, InvalidInputError, StoreError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore, RetrievedEdit, model_fingerprint
from langchain_recipe.nn import RecipeModel

# The tiny random RecipeModel's sentinel gate accepts arbitrary pairs, so adds often "conflict";
# the conflict tests check the warning explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

STORE_STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
    "Mira Solberg plays for the Chicago Bulls.",
]
STORE_IDS = ["acme", "zephyr", "oskar", "mira"]
QUERY = "Who is the chief executive of Acme Corporation?"
OTHER_QUERY = "In which city is the Zephyr Tower located?"


@pytest.fixture(params=MODES)
def knowledge_store(
    request: pytest.FixtureRequest, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> Any:
    """An empty store over the tiny models, in each Qdrant mode (overrides conftest's)."""
    yield from open_store(request.param, request, tmp_path, recipe_model, base_model)


def _filled(store: RecipeKnowledgeStore) -> RecipeKnowledgeStore:
    store.add_knowledge(STORE_STATEMENTS, metadatas=[{"n": i} for i in range(len(STORE_IDS))], ids=STORE_IDS)
    return store


def _stored_key(store: RecipeKnowledgeStore, edit_id: str) -> torch.Tensor:
    (point,) = store._retrieve_points([edit_id], with_vectors=True)
    return torch.tensor(point.vector["key"])


# ---------------------------------------------------------------------- writing and reading
def test_add_knowledge_returns_new_unique_ids(knowledge_store: RecipeKnowledgeStore) -> None:
    ids = knowledge_store.add_knowledge(STORE_STATEMENTS[:2])

    assert len(ids) == 2
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == 2
    assert len(knowledge_store) == 2
    by_id = {d.id: d.page_content for d in knowledge_store.get_by_ids(ids)}
    assert by_id == dict(zip(ids, STORE_STATEMENTS[:2], strict=True))


def test_given_ids_are_kept_and_get_by_ids_returns_documents(knowledge_store: RecipeKnowledgeStore) -> None:
    ids = knowledge_store.add_knowledge(
        ["  The Zephyr Tower is located in Lisbon.  ", "Oskar Brandt speaks Portuguese."],
        metadatas=[{"source": "wiki", "tags": ["a", "b"]}, {}],
        ids=["zephyr", "oskar"],
    )

    assert ids == ["zephyr", "oskar"]
    documents = knowledge_store.get_by_ids(["oskar", "unknown", "zephyr"])
    assert len(documents) == 2  # unknown ids are skipped
    by_id = {d.id: d for d in documents}
    assert set(by_id) == {"zephyr", "oskar"}
    zephyr = by_id["zephyr"]
    assert isinstance(zephyr, Document)
    assert zephyr.page_content == "The Zephyr Tower is located in Lisbon."  # stripped
    assert zephyr.metadata["source"] == "wiki"
    assert zephyr.metadata == {"source": "wiki", "tags": ["a", "b"]}  # exactly as given
    assert by_id["oskar"].metadata == {}
    (record,) = knowledge_store.get_edits(["zephyr"])
    assert record.source == "wiki"  # provenance source taken from metadata["source"]
    assert datetime.fromisoformat(record.created_at) <= datetime.fromisoformat(record.updated_at)
    assert [d.id for d in documents] == ["oskar", "zephyr"]  # the order asked for
    # A bare string is one id.
    assert [d.id for d in knowledge_store.get_by_ids("zephyr")] == ["zephyr"]
    assert knowledge_store.get_by_ids([]) == []


def test_add_with_an_existing_id_replaces_that_edit(knowledge_store: RecipeKnowledgeStore) -> None:
    knowledge_store.add_knowledge(["Oskar Brandt speaks Portuguese."], ids=["oskar"])
    knowledge_store.add_knowledge(["Oskar Brandt speaks Finnish."], ids=["oskar"])

    assert len(knowledge_store) == 1
    assert knowledge_store.get_by_ids(["oskar"])[0].page_content == "Oskar Brandt speaks Finnish."


def test_add_documents_keeps_ids_and_metadata(knowledge_store: RecipeKnowledgeStore) -> None:
    ids = knowledge_store.add_documents(
        [
            Document(page_content=STORE_STATEMENTS[0], metadata={"k": 1}, id="acme"),
            Document(page_content=STORE_STATEMENTS[1]),
        ]
    )

    assert ids[0] == "acme"
    assert len(ids) == 2
    assert knowledge_store.get_by_ids(["acme"])[0].metadata["k"] == 1


def test_add_nothing_returns_nothing(knowledge_store: RecipeKnowledgeStore) -> None:
    assert knowledge_store.add_knowledge([]) == []
    assert len(knowledge_store) == 0


def test_update_knowledge_replaces_statement_keeping_id_and_created_at(
    knowledge_store: RecipeKnowledgeStore, recipe_model: RecipeModel
) -> None:
    _filled(knowledge_store)
    (before,) = knowledge_store.get_edits(["oskar"])
    key_before = _stored_key(knowledge_store, "oskar")

    knowledge_store.update_knowledge("oskar", "Oskar Brandt speaks Finnish.")

    (after,) = knowledge_store.get_edits(["oskar"])
    assert after.edit_id == "oskar"
    assert after.statement == "Oskar Brandt speaks Finnish."
    assert after.created_at == before.created_at
    assert after.updated_at >= before.updated_at
    assert after.metadata == before.metadata  # metadata kept when not given
    assert len(knowledge_store) == len(STORE_IDS)
    key_after = _stored_key(knowledge_store, "oskar")
    assert not torch.allclose(key_after, key_before)
    with torch.no_grad():
        expected = recipe_model.encode_knowledge(["Oskar Brandt speaks Finnish."])[0]
    assert torch.allclose(key_after, expected / math.sqrt(recipe_model.config.knowledge_dim), atol=1e-5)
    # The other edits are untouched.
    assert knowledge_store.get_by_ids(["acme"])[0].page_content == STORE_STATEMENTS[0]

    knowledge_store.update_knowledge("oskar", "Oskar Brandt speaks Danish.", metadata={"n": 99})
    assert knowledge_store.get_by_ids(["oskar"])[0].metadata["n"] == 99


def test_update_of_an_unknown_id_raises(knowledge_store: RecipeKnowledgeStore) -> None:
    _filled(knowledge_store)
    before = store_snapshot(knowledge_store)

    with pytest.raises(InvalidInputError, match="missing"):
        knowledge_store.update_knowledge("missing", "Some statement.")

    assert store_snapshot(knowledge_store) == before


def test_delete_returns_the_count_and_removes(knowledge_store: RecipeKnowledgeStore) -> None:
    _filled(knowledge_store)

    assert knowledge_store.delete(["acme", "zephyr", "unknown"]) == 2
    assert len(knowledge_store) == 2
    assert knowledge_store.get_by_ids(["acme", "zephyr"]) == []
    assert {d.id for d in knowledge_store.list()} == {"oskar", "mira"}
    assert knowledge_store.delete(["acme"]) == 0
    assert knowledge_store.delete([]) == 0
    assert all(e.edit_id in {"oskar", "mira"} for e in knowledge_store.search(QUERY, k=4))


def test_delete_of_a_bare_string_deletes_that_one_id(knowledge_store: RecipeKnowledgeStore) -> None:
    # Regression: delete("acme") used to delete the edits "a", "c", "m" and "e" instead.
    knowledge_store.add_knowledge(["One.", "Two.", "Three."], ids=["a", "c", "acme"])

    assert knowledge_store.delete("acme") == 1
    assert {d.id for d in knowledge_store.list()} == {"a", "c"}


def test_len_and_list(knowledge_store: RecipeKnowledgeStore) -> None:
    assert len(knowledge_store) == 0
    assert knowledge_store.list() == []
    _filled(knowledge_store)

    assert len(knowledge_store) == 4
    documents = knowledge_store.list()
    assert sorted(d.id for d in documents) == sorted(STORE_IDS)
    assert {d.id: d.page_content for d in documents} == dict(zip(STORE_IDS, STORE_STATEMENTS, strict=True))
    assert len(knowledge_store.list(limit=2)) == 2
    assert sorted(knowledge_store.statements()) == sorted(STORE_STATEMENTS)
    assert "edits=4" in repr(knowledge_store)


# ---------------------------------------------------------------------- search and the gate
def test_search_scores_are_the_scaled_dot_product(
    knowledge_store: RecipeKnowledgeStore, recipe_model: RecipeModel
) -> None:
    _filled(knowledge_store)

    found = knowledge_store.search(QUERY, k=4)

    assert [type(e) for e in found] == [RetrievedEdit] * 4
    assert sorted(e.edit_id for e in found) == sorted(STORE_IDS)
    scores = [e.score for e in found]
    assert scores == sorted(scores, reverse=True)
    with torch.no_grad():
        query_key = recipe_model.encode_queries([QUERY])
        keys = recipe_model.encode_knowledge(STORE_STATEMENTS)
        expected = recipe_model.similarity(query_key, keys)[0]
        sentinel = recipe_model.similarity(query_key, recipe_model.sentinel_key().unsqueeze(0))[0, 0]
        raw = (query_key @ keys.T)[0]
    for edit in found:
        index = STORE_IDS.index(edit.edit_id)
        assert type(edit.score) is float
        assert type(edit.sentinel_score) is float
        assert edit.score == pytest.approx(float(expected[index]), abs=1e-4)
        # Not the raw dot product: the key is stored divided by sqrt(d_r).
        assert edit.score == pytest.approx(float(raw[index]) / math.sqrt(recipe_model.config.knowledge_dim), abs=1e-4)
        assert abs(edit.score - float(raw[index])) > 1.0
        assert edit.sentinel_score == pytest.approx(float(sentinel), abs=1e-4)
        assert edit.accepted == (edit.score > edit.sentinel_score)
        assert edit.statement == STORE_STATEMENTS[index]
        assert edit.metadata == {"n": index}
    assert len(knowledge_store.search(QUERY, k=2)) == 2
    assert knowledge_store.search(QUERY)[0].edit_id == found[0].edit_id


def test_accepted_is_strictly_greater() -> None:
    prompt = torch.zeros(3, 32)
    assert not RetrievedEdit("a", "s", {}, score=1.5, sentinel_score=1.5, prompt=prompt).accepted
    assert not RetrievedEdit("a", "s", {}, score=1.0, sentinel_score=1.5, prompt=prompt).accepted
    assert RetrievedEdit("a", "s", {}, score=math.nextafter(1.5, 2.0), sentinel_score=1.5, prompt=prompt).accepted
    document = RetrievedEdit("a", "s", {"x": 1}, score=2.0, sentinel_score=1.5, prompt=prompt).to_document()
    assert document.id == "a"
    assert document.metadata == {"x": 1, "edit_id": "a", "score": 2.0, "sentinel_score": 1.5}


def test_search_of_an_empty_store(knowledge_store: RecipeKnowledgeStore) -> None:
    assert knowledge_store.search(QUERY, k=3) == []
    assert knowledge_store.retrieve_prompts([QUERY, OTHER_QUERY]) == [None, None]
    assert knowledge_store.search_batch([]) == []


def test_retrieve_prompts_returns_the_edit_prompt(
    knowledge_store: RecipeKnowledgeStore,
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    force_gate: Callable[..., torch.Tensor],
) -> None:
    _filled(knowledge_store)
    force_gate(knowledge_store, accept=[QUERY])
    best = knowledge_store.search(QUERY, k=1)[0]

    (edit,) = knowledge_store.retrieve_prompts([QUERY])

    assert edit is not None
    assert edit.accepted
    assert edit.edit_id == best.edit_id
    config = recipe_model.config
    assert edit.prompt.shape == (config.num_prompt_tokens, config.lm_hidden_size)
    with torch.no_grad():
        _, prompts = recipe_model.encode_edits([edit.statement], base_model)
    # The default storage keeps prompts in float16: about 3 significant digits.
    assert knowledge_store.prompt_storage == "payload_fp16"
    assert torch.allclose(edit.prompt.float(), prompts[0], rtol=1e-3, atol=1e-4)
    assert not torch.equal(edit.prompt.float(), prompts[0])


def test_gate_forced_high_rejects_and_forced_low_accepts(
    knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    _filled(knowledge_store)
    top = knowledge_store.search(QUERY, k=1)[0]

    force_gate(knowledge_store, reject=[QUERY])
    assert knowledge_store.search(QUERY, k=4, gated=True) == []
    assert knowledge_store.retrieve_prompts([QUERY]) == [None]
    ungated = knowledge_store.search(QUERY, k=4)
    assert len(ungated) == 4
    assert not any(e.accepted for e in ungated)

    force_gate(knowledge_store, accept=[QUERY])
    gated = knowledge_store.search(QUERY, k=1, gated=True)
    assert [e.edit_id for e in gated] == [top.edit_id]
    assert gated[0].accepted
    assert gated[0].score == pytest.approx(top.score, abs=1e-5)
    assert len(knowledge_store.search(QUERY, k=4, gated=True)) == 4


def test_gate_is_per_query_in_a_batch(
    knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    _filled(knowledge_store)
    force_gate(knowledge_store, accept=[OTHER_QUERY], reject=[QUERY])

    rejected, accepted = knowledge_store.retrieve_prompts([QUERY, OTHER_QUERY])

    assert rejected is None
    assert accepted is not None
    assert accepted.edit_id == knowledge_store.search(OTHER_QUERY)[0].edit_id


# ---------------------------------------------------------------------- bad input
LONG_STATEMENT = (
    "The longest river of the imaginary land of Zembla " + "and its many tributaries " * 12 + "is the Zemba."
)
"""Beyond the tiny encoder's 32 tokens and the prompt encoder's 16 base-LM tokens: refused."""

BAD_CALLS: dict[str, Callable[[RecipeKnowledgeStore], Any]] = {
    "empty statement": lambda s: s.add_knowledge([""]),
    "whitespace statement": lambda s: s.add_knowledge(["   \n"]),
    "non-string statement": lambda s: s.add_knowledge(["Fine.", 3]),
    "None statement": lambda s: s.add_knowledge([None]),
    "valid then empty": lambda s: s.add_knowledge(["A valid new statement.", ""], ids=["new", "new2"]),
    "bare string statement": lambda s: s.add_knowledge("The Moon is made of cheese."),
    "duplicate ids": lambda s: s.add_knowledge(["One.", "Two."], ids=["x", "x"]),
    "bare string ids": lambda s: s.add_knowledge(["One.", "Two."], ids="xy"),
    "empty id": lambda s: s.add_knowledge(["One."], ids=[""]),
    "non-string id": lambda s: s.add_knowledge(["One."], ids=[5]),
    "fewer ids": lambda s: s.add_knowledge(["One.", "Two."], ids=["x"]),
    "more metadatas": lambda s: s.add_knowledge(["One."], metadatas=[{}, {}]),
    "non-dict metadata": lambda s: s.add_knowledge(["One."], metadatas=["not a dict"]),
    "non-JSON metadata": lambda s: s.add_knowledge(["One."], metadatas=[{"when": datetime(2024, 1, 1)}]),
    "set metadata": lambda s: s.add_knowledge(["One."], metadatas=[{"tags": {1, 2}}]),
    "overwrite with bad metadata": lambda s: s.add_knowledge(["New."], metadatas=[{"f": object()}], ids=["acme"]),
    "update unknown id": lambda s: s.update_knowledge("unknown", "New."),
    "update empty statement": lambda s: s.update_knowledge("acme", "  "),
    "update non-string statement": lambda s: s.update_knowledge("acme", 42),
    "update non-JSON metadata": lambda s: s.update_knowledge("acme", "New.", metadata={"when": datetime(2024, 1, 1)}),
    "update non-dict metadata": lambda s: s.update_knowledge("acme", "New.", metadata="oops"),
    "unicode whitespace statement": lambda s: s.add_knowledge(["\u3000\u00a0\t"]),
    "huge statement": lambda s: s.add_knowledge([LONG_STATEMENT], ids=["long"]),
    "valid then huge": lambda s: s.add_knowledge(["A valid new statement.", LONG_STATEMENT], ids=["new", "long"]),
    "bytes statement": lambda s: s.add_knowledge([b"The Moon is made of rock."]),
    "non-UTF-8 statement": lambda s: s.add_knowledge([b"The Moon is \xff rock.".decode("utf-8", "surrogateescape")]),
    "bytes ids": lambda s: s.add_knowledge(["One."], ids=[b"x"]),
    "whitespace id": lambda s: s.add_knowledge(["One."], ids=["  "]),
    "non-UTF-8 id": lambda s: s.add_knowledge(["One."], ids=["x\udcff"]),
    "NaN metadata": lambda s: s.add_knowledge(["One."], metadatas=[{"score": float("nan")}]),
    "infinite metadata": lambda s: s.add_knowledge(["One."], metadatas=[{"score": float("inf")}]),
    "non-string metadata key": lambda s: s.add_knowledge(["One."], metadatas=[{"tags": {1: "a"}}]),
    "non-UTF-8 metadata": lambda s: s.add_knowledge(["One."], metadatas=[{"note": "x\udcff"}]),
    "update huge statement": lambda s: s.update_knowledge("acme", LONG_STATEMENT),
    "update bytes statement": lambda s: s.update_knowledge("acme", b"New."),
    "search k=0": lambda s: s.search("Who?", k=0),
    "search k=True": lambda s: s.search("Who?", k=True),
    "list negative limit": lambda s: s.list_edits(limit=-1),
    "update non-string id": lambda s: s.update_knowledge(3, "New."),
    "search empty query": lambda s: s.search(""),
    "search bytes query": lambda s: s.search(b"Who?"),
    "search non-UTF-8 query": lambda s: s.search("Who \udcff?"),
    "retrieve non-UTF-8 query": lambda s: s.retrieve_prompts(["Fine?", "Who \udcff?"]),
    "search_batch bare string": lambda s: s.search_batch("Who?"),
    "search non-string query": lambda s: s.search(3),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_and_changes_nothing(
    knowledge_store: RecipeKnowledgeStore, call: Callable[[RecipeKnowledgeStore], Any]
) -> None:
    _filled(knowledge_store)
    before = store_snapshot(knowledge_store)

    with pytest.raises(InvalidInputError):
        call(knowledge_store)

    assert store_snapshot(knowledge_store) == before
    assert len(knowledge_store) == len(STORE_IDS)
    # The store still reads back fine (no half-written or corrupted point).
    assert len(knowledge_store.list()) == len(STORE_IDS)


# ---------------------------------------------------------------------- persistence and opening
def test_on_disk_store_keeps_edits_after_reopening(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> None:
    path = tmp_path / "store"
    store = _filled(RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path))
    documents = {d.id: d for d in store.list()}
    found = store.search(QUERY, k=4)
    store.client.close()

    reopened = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path)
    try:
        assert len(reopened) == len(STORE_IDS)
        assert {d.id: d for d in reopened.list()} == documents
        again = reopened.search(QUERY, k=4)
        assert [e.edit_id for e in again] == [e.edit_id for e in found]
        for a, b in zip(again, found, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
            assert torch.allclose(a.prompt, b.prompt)
        reopened.add_knowledge(["A fifth statement."], ids=["fifth"])
        assert len(reopened) == 5
    finally:
        reopened.client.close()


def test_reopening_with_another_recipe_model_raises_fingerprint_mismatch(
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    make_recipe_model: Callable[..., RecipeModel],
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    store = _filled(RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path))
    store.client.close()
    other = other_recipe_model(make_recipe_model)
    ours, theirs = model_fingerprint(recipe_model), model_fingerprint(other)
    assert ours != theirs

    with pytest.raises(FingerprintMismatchError) as raised:
        RecipeKnowledgeStore(recipe_model=other, base_model=base_model, path=path)

    message = str(raised.value)
    assert ours in message
    assert theirs in message
    # The failed open released the folder: the right model opens it again in this process.
    reopened = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, path=path)
    try:
        assert len(reopened) == len(STORE_IDS)
    finally:
        reopened.client.close()


def test_a_same_seed_model_has_the_same_fingerprint(make_recipe_model: Callable[..., RecipeModel]) -> None:
    assert model_fingerprint(make_recipe_model()) == model_fingerprint(make_recipe_model())


def test_a_foreign_collection_raises_store_error(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(location=":memory:")
    client.create_collection("recipe_edits", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))

    with pytest.raises(StoreError, match="not made by langchain-recipe"):
        RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, client=client)
    # A client passed in stays usable.
    assert client.collection_exists("recipe_edits")
    client.close()


@pytest.mark.parametrize(
    "where",
    [{"location": ":memory:", "path": "PATH"}, {"url": "http://localhost:6333", "path": "PATH"}],
    ids=["location+path", "url+path"],
)
def test_giving_two_locations_raises(
    recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path, where: dict[str, str]
) -> None:
    where = {k: (str(tmp_path / "store") if v == "PATH" else v) for k, v in where.items()}

    with pytest.raises(InvalidInputError, match="only one"):
        RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, **where)


def test_a_recipe_model_for_another_hidden_size_raises(
    make_recipe_model: Callable[..., RecipeModel], base_model: HuggingFaceBaseModel
) -> None:
    with pytest.raises(InvalidInputError, match="hidden size"):
        RecipeKnowledgeStore(recipe_model=make_recipe_model(lm_hidden_size=16), base_model=base_model)


def test_api_key_is_secret(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> None:
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, location=":memory:", api_key="s3cr3t-key"
    )
    try:
        assert isinstance(store._api_key, SecretStr)
        assert store._api_key.get_secret_value() == "s3cr3t-key"
        assert "s3cr3t-key" not in repr(store)
        assert "s3cr3t-key" not in str(store)
        assert "s3cr3t-key" not in repr(store._api_key)
    finally:
        store.client.close()
