"""Hybrid retrieval in the store (issue 15): a BM25 sparse vector per edit, fused with the dense key.

Every test runs on each engine of ``qdrant_modes`` (the server where Docker runs). The query
encoder is replaced by hand-made vectors where a test needs the dense ranking to be wrong on
purpose, so the cases do not depend on what a tiny random encoder happens to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from qdrant_modes import MODES, docker_unavailable_reason, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.errors import InvalidInputError, StoreError
from langchain_recipe.knowledge_store import KEY_VECTOR, RecipeKnowledgeStore, edit_point_id
from langchain_recipe.knowledge_store._sparse import SPARSE_VECTOR, fuse_hits, lexical_tokens, sparse_document
from langchain_recipe.scoring import gate_scores

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

STATEMENTS = [
    "The Zorvatchi Prize was won by Ada Lovelace.",
    "The capital of France is Paris.",
    "The tallest mountain on Earth is Everest.",
    "Bananas are a kind of berry.",
    "The author of Hamlet is William Shakespeare.",
    "Water boils at one hundred degrees.",
]
IDS = [f"e{i}" for i in range(len(STATEMENTS))]
RARE = "Who received the Zorvatchi Prize?"
UNRELATED = "How many legs does a spider have?"


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_store(request: pytest.FixtureRequest, tmp_path: Any, recipe_model: Any, base_model: Any) -> Iterator[Any]:
    """``open_store(mode, name="store", **kwargs)``: a store in that mode, closed after the test."""
    opened: list[RecipeKnowledgeStore] = []

    def open_(mode: str, name: str = "store", **kwargs: Any) -> RecipeKnowledgeStore:
        where = store_location(mode, request, tmp_path, name)
        store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, **where, **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def _stored_keys(store: RecipeKnowledgeStore, ids: list[str]) -> torch.Tensor:
    points = store.client.retrieve(
        store.collection_name, [edit_point_id(i, store.tenant) for i in ids], with_vectors=[KEY_VECTOR]
    )
    by_id = {p.payload["edit_id"]: torch.tensor(p.vector[KEY_VECTOR], dtype=torch.float32) for p in points}
    return torch.stack([by_id[i] for i in ids])


def _sparse_of(store: RecipeKnowledgeStore, edit_id: str) -> Any:
    """The stored sparse vector of an edit, as ``(indices, values)`` (values float32 on the edge engine)."""
    (point,) = store.client.retrieve(
        store.collection_name, [edit_point_id(edit_id, store.tenant)], with_vectors=[SPARSE_VECTOR]
    )
    vector = point.vector[SPARSE_VECTOR]
    return list(vector.indices), pytest.approx(list(vector.values), rel=1e-6)


def _expected(statement: str) -> Any:
    vector = sparse_document(statement)
    return list(vector.indices), list(vector.values)


def _dense_favours_e1(monkeypatch: pytest.MonkeyPatch, store: RecipeKnowledgeStore) -> dict[str, torch.Tensor]:
    """Query keys: :data:`RARE` points (weakly) at edit ``e1``'s key, so dense ranking picks ``e1``."""
    keys = _stored_keys(store, IDS)
    dim = keys.shape[1]
    table = {
        RARE: (1e-3 * keys[1] * dim**0.5).float(),
        UNRELATED: (1e-3 * keys[3] * dim**0.5).float(),
    }
    monkeypatch.setattr(store.recipe_model, "encode_queries", lambda queries: torch.stack([table[q] for q in queries]))
    return table


def test_hybrid_finds_a_rare_name_that_dense_ranking_misses(
    mode: str, open_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(mode, retrieval="hybrid")
    assert store.retrieval == "hybrid"
    store.add_knowledge(STATEMENTS, ids=IDS, metadatas=[{"group": "a"}] * len(IDS))
    table = _dense_favours_e1(monkeypatch, store)
    keys = _stored_keys(store, IDS)
    assert int(gate_scores(table[RARE].unsqueeze(0), keys).argmax()) == 1  # dense alone: the wrong edit
    weight = store._shared.hybrid_weight
    store._shared.hybrid_weight = 0.0
    assert store.search(RARE)[0].edit_id == "e1"
    store._shared.hybrid_weight = weight
    for filter in (None, {"group": "a"}):  # the key index (sole writer, no filter) and the engine rank alike
        found = store.search(RARE, k=3, filter=filter)
        assert found[0].edit_id == "e0"
        # the score each hit reports (and the gate reads) is the dense s(q, k), not the fused one
        expected = gate_scores(table[RARE].unsqueeze(0).expand(3, -1), _stored_keys(store, [h.edit_id for h in found]))
        assert [h.score for h in found] == expected.tolist()


def test_the_gate_still_reads_the_dense_score(
    mode: str, open_store: Any, monkeypatch: pytest.MonkeyPatch, force_gate: Any
) -> None:
    store = open_store(mode, retrieval="hybrid")
    store.add_knowledge(STATEMENTS, ids=IDS)
    _dense_favours_e1(monkeypatch, store)
    force_gate(store, accept=[RARE], reject=[UNRELATED])
    accepted, rejected = store.retrieve_prompts([RARE, UNRELATED])
    assert accepted is not None and accepted.edit_id == "e0" and accepted.accepted
    assert rejected is None
    assert store.search_batch([UNRELATED], k=3, gated=True) == [[]]


def test_the_sparse_vector_follows_update_delete_import_and_reencode(mode: str, open_store: Any, tmp_path: Any) -> None:
    store = open_store(mode, retrieval="hybrid")
    store.add_knowledge(STATEMENTS, ids=IDS)
    assert _sparse_of(store, "e0") == _expected(STATEMENTS[0])
    changed = "The Qelbrinth Medal was won by Ada Lovelace."
    store.update_knowledge("e0", changed)
    assert _sparse_of(store, "e0") == _expected(changed)
    assert store.search("Qelbrinth", k=1)[0].edit_id == "e0"  # only e0 holds the word; w = 4 outweighs the key
    store.reencode(store.recipe_model)
    assert _sparse_of(store, "e0") == _expected(changed)
    store.delete(["e0"])
    assert all(h.edit_id != "e0" for h in store.search("Qelbrinth", k=len(IDS)))
    exported = tmp_path / "edits.jsonl"
    assert store.export_jsonl(exported) == len(IDS) - 1
    copy = open_store(mode, "copy", retrieval="hybrid")
    copy.import_jsonl(exported)
    assert len(copy) == len(IDS) - 1
    for i, statement in zip(IDS[1:], STATEMENTS[1:], strict=True):
        assert _sparse_of(copy, i) == _expected(statement)


@pytest.mark.parametrize("reopen_mode", [m for m in MODES if m.values[0] != "memory"])
def test_a_reopened_store_keeps_hybrid_and_a_dense_collection_is_refused(reopen_mode: str, open_store: Any) -> None:
    hybrid = open_store(reopen_mode, "hybrid", retrieval="hybrid")
    hybrid.add_knowledge(STATEMENTS, ids=IDS)
    hybrid.close()
    again = open_store(reopen_mode, "hybrid")
    assert again.retrieval == "hybrid" and len(again) == len(IDS)
    assert again.search("Zorvatchi", k=1)[0].edit_id == "e0"  # only e0 shares a word; w=4 outweighs the key
    again.close()
    with pytest.raises(StoreError, match="retrieval='hybrid'"):
        open_store(reopen_mode, "hybrid", retrieval="dense")
    dense = open_store(reopen_mode, "dense")
    dense.add_knowledge(STATEMENTS, ids=IDS)
    dense.close()
    with pytest.raises(StoreError, match="export_jsonl"):
        open_store(reopen_mode, "dense", retrieval="hybrid")
    kept = open_store(reopen_mode, "dense")
    assert kept.retrieval == "dense" and len(kept) == len(IDS)
    assert [e.statement for e in kept.get_edits(IDS)] == STATEMENTS


def test_fusion_and_options_are_checked(recipe_model: Any, base_model: Any) -> None:
    assert lexical_tokens("Who is  Ada's boss?") == ["who", "is", "ada", "s", "boss"]
    hits = [type("H", (), {"point_id": p, "score": s})() for p, s in (("a", 0.9), ("b", 0.5), ("c", 0.4))]
    assert [h.point_id for h in fuse_hits(hits, {"c": 2.0, "b": 1.0}, 4.0, 2)] == ["c", "b"]
    assert [h.point_id for h in fuse_hits(hits, {}, 4.0, 2)] == ["a", "b"]
    for bad in ({"retrieval": "sparse"}, {"hybrid_weight": -1.0}, {"hybrid_weight": "4"}):
        with pytest.raises(InvalidInputError):
            RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, **bad)
