"""One gate verdict per query on every read path (issue 15: "the tie rule gives one verdict across engines").

A store ranks with its float32 key index (the sole writer, no filter), qdrant-client's local
mode (numpy, with a filter), qdrant-edge (Rust) or a server. Each computes ``s(q, k)`` with its
own arithmetic; the verdict must not depend on which one ran. The queries here are hand-made
vectors (the query encoder is replaced), so a score can be put exactly on, or a few float32 ulps
or 1e-6 either side of, the query's sentinel score.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from qdrant_modes import MODES, docker_unavailable_reason, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.knowledge_store._schema import KEY_VECTOR, edit_point_id
from langchain_recipe.nn import RecipeModel
from langchain_recipe.scoring import gate_scores, passes_gate, sentinel_scores, stored_key

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

STATEMENT = "The chief executive of Acme Corporation is Ada Lovelace."
OTHER = "The Zephyr Tower is located in Lisbon."
FILTERS = [pytest.param(None, id="no-filter"), pytest.param({"group": "a"}, id="filter")]
NUM_QUERIES = 64


def test_gate_scores_depend_only_on_the_two_float32_vectors() -> None:
    """The same pair scores the same bits alone, in any batch, in any order; close to the exact sum."""
    generator = torch.Generator().manual_seed(3)
    queries = torch.randn(9, 100, generator=generator) * 5
    keys = stored_key(torch.randn(9, 100, generator=generator))
    batch = gate_scores(queries, keys)
    assert batch.dtype == torch.float64 and batch.shape == (9,)
    alone = [float(gate_scores(queries[i], keys[i])) for i in range(9)]
    order = torch.randperm(9, generator=generator)
    assert batch.tolist() == alone == gate_scores(queries[order], keys[order])[order.argsort()].tolist()
    assert gate_scores(queries.unsqueeze(1), keys.unsqueeze(0)).diagonal().tolist() == alone
    exact = [
        math.fsum(a * b for a, b in zip(q.tolist(), k.tolist(), strict=True))
        for q, k in zip(queries, keys, strict=True)
    ]
    assert alone == pytest.approx(exact, rel=1e-14, abs=1e-14)
    sentinel = torch.randn(100, generator=generator)
    assert sentinel_scores(queries, sentinel).tolist() == gate_scores(queries, stored_key(sentinel)).tolist()
    assert not passes_gate(float(gate_scores(queries[0], keys[0])), alone[0])  # a tie applies no edit
    with pytest.raises(ValueError, match="knowledge_dim"):
        gate_scores(queries, keys[:, :99])


@pytest.fixture
def open_store(request: pytest.FixtureRequest, tmp_path: Any, recipe_model: Any, base_model: Any) -> Iterator[Any]:
    """``open_store(mode)``: a store in that mode holding edit ``e0`` (``group: a``), closed after the test."""
    opened: list[RecipeKnowledgeStore] = []

    def open_(mode: str) -> RecipeKnowledgeStore:
        store = RecipeKnowledgeStore(
            recipe_model=recipe_model, base_model=base_model, **store_location(mode, request, tmp_path, f"v-{mode}")
        )
        opened.append(store)
        store.add_knowledge([STATEMENT], metadatas=[{"group": "a"}], ids=["e0"])
        return store

    yield open_
    for store in opened:
        store.close()


def _stored_key(store: RecipeKnowledgeStore) -> torch.Tensor:
    """The float32 vector the engine holds for edit ``e0``: ``r_k / sqrt(d_r)``."""
    (record,) = store.client.retrieve(
        store.collection_name, [edit_point_id("e0", store.tenant)], with_vectors=[KEY_VECTOR]
    )
    return torch.tensor(record.vector[KEY_VECTOR], dtype=torch.float32)


def _queries(stored: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """Hand-made query representations around the stored key's direction, float32."""
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(NUM_QUERIES, stored.shape[0], generator=generator)
    keys = (stored * stored.shape[0] ** 0.5 + 0.5 * noise * stored.norm()).float()
    return [f"query {i}" for i in range(NUM_QUERIES)], keys


def _use_query_keys(monkeypatch: pytest.MonkeyPatch, recipe_model: Any, texts: list[str], keys: torch.Tensor) -> None:
    table = dict(zip(texts, keys, strict=True))
    monkeypatch.setattr(recipe_model, "encode_queries", lambda queries: torch.stack([table[q] for q in queries]))


def _verdicts(store: RecipeKnowledgeStore, texts: list[str], filter: Any) -> list[bool]:
    """Each query's verdict, from the ungated top-1 (``accepted``) and the gated read (both must agree)."""
    ungated = [hits[0].accepted for hits in store.search_batch(texts, k=1, filter=filter, with_prompt=False)]
    gated = [bool(hits) for hits in store.search_batch(texts, k=1, gated=True, filter=filter, with_prompt=False)]
    assert ungated == gated
    return gated


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("filter", FILTERS)
def test_a_query_that_ties_its_sentinel_is_rejected_on_every_path(
    mode: str, filter: Any, open_store: Any, recipe_model: RecipeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sentinel's key is the edit's key, so ``s(q, k*) == s(q, Θ)`` exactly: strict ``>`` rejects."""
    store = open_store(mode)
    stored = _stored_key(store)
    dim = stored.shape[0]
    assert math.isqrt(dim) ** 2 == dim  # sqrt(d_r) a power of two below: the sentinel's stored key is exact
    monkeypatch.setattr(store, "_sentinel_key", stored * math.sqrt(dim))
    texts, keys = _queries(stored)
    _use_query_keys(monkeypatch, recipe_model, texts, keys)
    assert _verdicts(store, texts, filter) == [False] * NUM_QUERIES
    found = store.search_batch(texts, k=1, filter=filter, with_prompt=False)
    assert all(hits[0].score == hits[0].sentinel_score for hits in found)
    assert store.retrieve_prompts(texts) == [None] * NUM_QUERIES


def _shifted(keys: torch.Tensor, stored: torch.Tensor, shift: str) -> torch.Tensor:
    """``s(q, k*)`` moved by ``shift``, float64.

    ``"±Nulp"``: from torch's float32 product, N float32 ulps away (the size of the engines'
    disagreements); ``"0"``, ``"±1e-6"``: from the float64 product (exact to ~1e-16 here).
    """
    if shift.endswith("ulp"):
        steps = int(shift[:-3])
        moved = (keys @ stored).float()
        target = torch.full_like(moved, math.copysign(math.inf, steps))
        for _ in range(abs(steps)):
            moved = torch.nextafter(moved, target)
        return moved.double()
    return keys.double() @ stored.double() + float(shift)


SHIFTS = ["0", "+0ulp", "+1ulp", "-1ulp", "+3ulp", "-3ulp", "+1e-6", "-1e-6"]


def test_the_tie_rule_gives_one_verdict_across_engines(
    open_store: Any, recipe_model: RecipeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentinel scores on, a few ulps from and 1e-6 from ``s(q, k*)``: the same verdicts on every path."""
    modes = ["memory", "path", "edge"] + ([] if docker_unavailable_reason() else ["server"])
    stores = {mode: open_store(mode) for mode in modes}
    stored = _stored_key(stores["memory"])
    texts, keys = _queries(stored)
    _use_query_keys(monkeypatch, recipe_model, texts, keys)
    for shift in SHIFTS:
        sentinel = _shifted(keys, stored, shift)
        for store in stores.values():
            monkeypatch.setattr(store, "_sentinel_scores", lambda query_keys, s=sentinel: s[: query_keys.shape[0]])
        verdicts = {
            (mode, str(filter)): _verdicts(store, texts, filter)
            for mode, store in stores.items()
            for filter in (None, {"group": "a"})
        }
        first = next(iter(verdicts.values()))
        differing = {path: sum(a != b for a, b in zip(v, first, strict=True)) for path, v in verdicts.items()}
        assert all(v == first for v in verdicts.values()), (shift, differing)
        if shift.endswith("e-6"):  # far beyond float rounding: the sign of the shift decides
            assert first == [shift.startswith("-")] * NUM_QUERIES, shift


def test_conflict_detection_gates_with_the_same_verdict(
    recipe_model: RecipeModel, base_model: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored edit whose key is the sentinel's ties every query: it is never a conflict candidate."""
    from langchain_recipe.knowledge_store import _write

    seen: list[tuple[float, float]] = []

    def spy(new: str, old: str, *, score: float, sentinel_score: float, **_: Any) -> bool:
        seen.append((score, sentinel_score))
        return False

    monkeypatch.setattr(_write, "is_conflict", spy)
    for engine in ({"location": ":memory:"}, {"engine": "edge", "path": tmp_path / "edge"}):
        store = RecipeKnowledgeStore(recipe_model=recipe_model, base_model=base_model, **engine)
        try:
            store.add_knowledge([STATEMENT], ids=["e0"])
            stored = _stored_key(store)
            monkeypatch.setattr(store, "_sentinel_key", stored * math.sqrt(stored.shape[0]))
            seen.clear()
            store.add_knowledge([STATEMENT, OTHER], ids=["e1", "e2"])
            assert all(passes_gate(score, sentinel) for score, sentinel in seen), seen
            assert not any(score == sentinel for score, sentinel in seen)
        finally:
            store.close()
