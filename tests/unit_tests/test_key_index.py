"""The float32 key index that replaces qdrant-client local mode's float64 scan (issue 7).

Unit tests of :class:`KeyIndex` with hand-made vectors, and congruence tests: a store that owns
its local-mode client (index on) must return exactly what Qdrant's own search returns for the
same collection (a second store on the same client, which does not own it: index off), through
adds, updates, deletes, tenants, conflicts and re-encoding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from model_variants import other_recipe_model

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.knowledge_store._key_index import KeyIndex
from langchain_recipe.nn import RecipeModel

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
    "Mira Solberg plays for the Chicago Bulls.",
    "The capital of Freedonia is Fredville.",
    "Lake Ombra is in the Andes.",
]
QUERIES = [
    "Who is the chief executive of Acme Corporation?",
    "Where is the Zephyr Tower?",
    "What language does Oskar Brandt speak?",
    "What is the capital of Freedonia?",
    "Which team does Mira Solberg play for?",
]


def _unit(*values: float) -> list[float]:
    return list(values)


def test_search_ranks_by_dot_product_and_respects_thresholds() -> None:
    index = KeyIndex(2)
    index.upsert(["a", "b", "c"], [[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]], ["t", "t", "t"])
    query = torch.tensor([[1.0, 0.5]])
    assert index.search(query, 3) == [[("a", 1.0), ("c", pytest.approx(0.9)), ("b", 0.5)]]
    # Inclusive threshold, like Qdrant's score_threshold.
    assert [p for p, _ in index.search(query, 3, score_thresholds=torch.tensor([0.9]))[0]] == ["a", "c"]
    assert index.search(query, 3, score_thresholds=torch.tensor([1.5])) == [[]]
    assert [p for p, _ in index.search(query, 2, exclude=["a"])[0]] == ["c", "b"]


def test_upsert_replaces_and_remove_keeps_the_other_rows() -> None:
    index = KeyIndex(2)
    index.upsert(["a", "b", "c"], [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], ["t"] * 3)
    index.upsert(["a"], [[0.0, -1.0]], ["t"])  # same id: replaced, not duplicated
    assert len(index) == 3
    index.remove(["b", "unknown"])  # "c" moves into b's row
    assert len(index) == 2
    assert dict(index.search(torch.tensor([[-1.0, 0.0]]), 5)[0]) == {"c": 1.0, "a": 0.0}
    assert dict(index.search(torch.tensor([[0.0, -1.0]]), 5)[0]) == {"a": 1.0, "c": 0.0}
    index.remove(["a", "c"])
    assert len(index) == 0
    assert index.search(torch.tensor([[1.0, 0.0]]), 1) == [[]]


def test_tenant_mask_and_growth_past_the_initial_capacity() -> None:
    index = KeyIndex(3)
    generator = torch.Generator().manual_seed(0)
    keys = torch.randn(2500, 3, generator=generator)
    ids = [f"p{i}" for i in range(2500)]
    tenants = ["a" if i % 2 else "b" for i in range(2500)]
    for start in range(0, 2500, 700):  # several upserts: the matrix grows past 1024 rows
        index.upsert(ids[start : start + 700], keys[start : start + 700], tenants[start : start + 700])
    query = torch.randn(4, 3, generator=generator)
    expected = (query @ keys.T).masked_fill(torch.tensor([t != "a" for t in tenants]), -math.inf).topk(5).indices
    found = index.search(query, 5, tenant="a")
    assert [[p for p, _ in row] for row in found] == [[ids[i] for i in row.tolist()] for row in expected]
    assert index.search(query, 5, tenant="nobody") == [[], [], [], []]


@pytest.fixture
def index_pair(recipe_model: RecipeModel, base_model: HuggingFaceBaseModel) -> Any:
    """(store with the key index, store on the same client and collection searching with Qdrant)."""
    owner = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model)
    reader = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, client=owner.client)
    assert owner._shared.sole_writer and not reader._shared.sole_writer
    yield owner, reader
    owner.close()


def _results(store: RecipeKnowledgeStore, **kwargs: Any) -> list[list[tuple[str, float, bool, tuple[int, ...]]]]:
    found = store.search_batch(QUERIES, **kwargs)
    return [[(e.edit_id, round(e.score, 4), e.accepted, tuple(e.prompt.shape)) for e in row] for row in found]


def _assert_congruent(owner: RecipeKnowledgeStore, reader: RecipeKnowledgeStore) -> None:
    for kwargs in ({"k": 3}, {"k": 1, "gated": True}, {"k": 2, "with_prompt": False}):
        assert _results(owner, **kwargs) == _results(reader, **kwargs), kwargs
    mine = owner.search_batch(QUERIES, k=1)
    theirs = reader.search_batch(QUERIES, k=1)
    for a, b in zip(mine, theirs, strict=True):
        if a:
            assert torch.equal(a[0].prompt, b[0].prompt)


def test_store_with_key_index_returns_what_qdrant_returns(index_pair: Any) -> None:
    owner, reader = index_pair
    assert owner.search_batch(QUERIES) == [[] for _ in QUERIES]
    owner.add_knowledge(STATEMENTS, ids=[f"s{i}" for i in range(len(STATEMENTS))])
    _assert_congruent(owner, reader)
    owner.update_knowledge("s0", "The chief executive of Acme Corporation is Grace Hopper.")
    owner.delete(["s3"])
    assert len(owner._shared.key_index) == len(owner) == len(STATEMENTS) - 1
    _assert_congruent(owner, reader)
    other = owner.for_tenant("other")
    other.add_knowledge(["The chief executive of Acme Corporation is Linus Pauling."], ids=["s0"])
    _assert_congruent(owner, reader)
    _assert_congruent(other, reader.for_tenant("other"))
    assert {e.tenant for row in other.search_batch(QUERIES, k=5) for e in row} == {"other"}


def test_key_index_is_filled_from_an_existing_collection_and_after_reencode(
    index_pair: Any, make_recipe_model: Callable[..., RecipeModel]
) -> None:
    owner, reader = index_pair
    reader.add_knowledge(STATEMENTS[:3], ids=["a", "b", "c"])  # written before the index exists
    _assert_congruent(owner, reader)
    owner.add_knowledge(STATEMENTS[3:], ids=["d", "e", "f"])
    assert len(owner._shared.key_index) == 6
    new_model = other_recipe_model(make_recipe_model)
    owner.reencode(new_model)
    reader._shared.set_models(new_model, owner.base_model)
    _assert_congruent(owner, reader)


def test_conflict_check_uses_the_key_index(index_pair: Any, force_gate: Callable[..., torch.Tensor]) -> None:
    owner, _ = index_pair
    new_ceo = "The chief executive of Acme Corporation is Grace Hopper."
    owner.add_knowledge(
        [STATEMENTS[0], "The chief executive of Acme Corporation is Alan Turing.", STATEMENTS[1]], ids=["a", "b", "z"]
    )
    force_gate(owner, accept=[new_ceo])  # the new statement, run as a query, passes the gate for every edit
    with pytest.warns(Warning, match="same subject, same relation"):
        owner.add_knowledge([new_ceo], ids=["c"])
    (edit,) = owner.get_edits(["c"])
    assert set(edit.conflicts_with) == {"a", "b"}  # not "z": another subject


def test_user_filter_searches_with_qdrant(index_pair: Any) -> None:
    owner, reader = index_pair
    owner.add_knowledge(STATEMENTS, metadatas=[{"n": i % 2} for i in range(len(STATEMENTS))])
    got = owner.search_batch(QUERIES, k=6, filter={"n": 1})
    assert all(e.metadata == {"n": 1} for row in got for e in row)
    assert _results(owner, k=6) == _results(reader, k=6)
