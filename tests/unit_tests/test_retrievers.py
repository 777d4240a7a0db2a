"""Tests of SentinelRetriever (langchain_recipe.retrievers) over a tiny in-memory knowledge store."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from facts import IDS, QUERY, STATEMENTS
from langchain_core.documents import Document
from pydantic import ValidationError

from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.retrievers import SentinelRetriever


@pytest.fixture
def store(knowledge_store: RecipeKnowledgeStore) -> RecipeKnowledgeStore:
    knowledge_store.add_knowledge(STATEMENTS, metadatas=[{"topic": i} for i in IDS], ids=IDS)
    return knowledge_store


def _check_documents(documents: list[Document], store: RecipeKnowledgeStore) -> None:
    expected = {e.edit_id: e for e in store.search(QUERY, k=len(IDS))}
    for document in documents:
        assert isinstance(document, Document)
        assert document.id in IDS
        assert document.page_content == STATEMENTS[IDS.index(document.id)]
        assert document.metadata["edit_id"] == document.id
        assert document.metadata["topic"] == document.id
        assert type(document.metadata["score"]) is float
        assert type(document.metadata["sentinel_score"]) is float
        assert document.metadata["score"] == pytest.approx(expected[document.id].score, abs=1e-5)
        assert document.metadata["sentinel_score"] == pytest.approx(expected[document.id].sentinel_score, abs=1e-5)
    scores = [d.metadata["score"] for d in documents]
    assert scores == sorted(scores, reverse=True)


def test_invoke_returns_the_accepted_top_edit(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, accept=[QUERY])
    retriever = SentinelRetriever(store=store)

    documents = retriever.invoke(QUERY)

    assert len(documents) == 1
    _check_documents(documents, store)
    assert documents[0].id == store.search(QUERY)[0].edit_id
    assert documents[0].metadata["score"] > documents[0].metadata["sentinel_score"]


def test_k_limits_the_number_of_documents(store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> None:
    force_gate(store, accept=[QUERY])

    two = SentinelRetriever(store=store, k=2).invoke(QUERY)
    three = SentinelRetriever(store=store).invoke(QUERY, k=3)
    everything = SentinelRetriever(store=store, k=10).invoke(QUERY)

    assert len(two) == 2
    assert len(three) == 3
    assert len(everything) == len(IDS)
    for documents in (two, three, everything):
        _check_documents(documents, store)
    assert [d.id for d in two] == [d.id for d in everything[:2]]


def test_ungated_returns_top_k_even_when_the_gate_rejects(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, reject=[QUERY])

    documents = SentinelRetriever(store=store, k=3, gated=False).invoke(QUERY)

    assert len(documents) == 3
    _check_documents(documents, store)
    assert all(d.metadata["score"] <= d.metadata["sentinel_score"] for d in documents)
    assert [d.id for d in documents] == [e.edit_id for e in store.search(QUERY, k=3)]


def test_gated_with_an_impossible_sentinel_returns_nothing(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(store, reject=[QUERY])

    assert SentinelRetriever(store=store, k=4).invoke(QUERY) == []
    assert SentinelRetriever(store=store, k=4, gated=True).invoke(QUERY) == []


def test_empty_store_returns_nothing(knowledge_store: RecipeKnowledgeStore) -> None:
    assert SentinelRetriever(store=knowledge_store, gated=False, k=3).invoke(QUERY) == []


def test_k_must_be_positive(store: RecipeKnowledgeStore) -> None:
    with pytest.raises(ValidationError):
        SentinelRetriever(store=store, k=0)


async def test_ainvoke(store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> None:
    force_gate(store, accept=[QUERY])
    retriever = SentinelRetriever(store=store, k=2)

    documents = await retriever.ainvoke(QUERY)

    assert [d.id for d in documents] == [d.id for d in retriever.invoke(QUERY)]
    _check_documents(documents, store)


def test_k_per_call_must_be_positive(store: RecipeKnowledgeStore) -> None:
    from langchain_recipe.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="k must be"):
        SentinelRetriever(store=store).invoke(QUERY, k=0)


async def test_ainvoke_ungated_with_k(store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> None:
    force_gate(store, reject=[QUERY])
    retriever = SentinelRetriever(store=store, gated=False)

    documents = await retriever.ainvoke(QUERY, k=3)

    assert [d.id for d in documents] == [e.edit_id for e in store.search(QUERY, k=3)]
    _check_documents(documents, store)
    assert await SentinelRetriever(store=store, k=3).ainvoke(QUERY) == []
