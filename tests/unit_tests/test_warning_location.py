"""The store's warnings point at the user's line (``warning.filename`` is this file), whatever the
path into the library: ``add_knowledge``, ``update_knowledge``, ``add_texts``,
``add_documents``, ``import_jsonl``, the agent tools (through langchain-core's ``invoke``) and
``search``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from langchain_core.documents import Document

from langchain_recipe.errors import EditConflictWarning, QueryTruncatedWarning
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.tools import RecipeToolkit

OLD_CEO = "The chief executive of Acme Corporation is Ada Lovelace."
NEW_CEO = "The chief executive of Acme Corporation is Grace Hopper."
TOWER = "The Zephyr Tower is located in Lisbon."


@pytest.fixture
def store(knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> RecipeKnowledgeStore:
    """A store holding the old CEO fact and an unrelated one; the new CEO fact passes the gate."""
    knowledge_store.add_knowledge([OLD_CEO, TOWER], ids=["acme", "tower"])
    force_gate(knowledge_store, accept=[NEW_CEO])
    return knowledge_store


def _only(record: pytest.WarningsRecorder, category: type[Warning]) -> list[Any]:
    found = [w for w in record if issubclass(w.category, category)]
    assert found, f"no {category.__name__}"
    return found


def test_a_conflict_warning_from_add_knowledge_points_at_the_caller(store: RecipeKnowledgeStore) -> None:
    with pytest.warns(EditConflictWarning) as record:
        store.add_knowledge([NEW_CEO], ids=["acme-2"])
    assert _only(record, EditConflictWarning)[0].filename == __file__


def test_a_conflict_warning_from_update_knowledge_points_at_the_caller(store: RecipeKnowledgeStore) -> None:
    with pytest.warns(EditConflictWarning) as record:
        store.update_knowledge("tower", NEW_CEO)
    assert _only(record, EditConflictWarning)[0].filename == __file__


def test_a_conflict_warning_from_the_vector_store_api_points_at_the_caller(store: RecipeKnowledgeStore) -> None:
    with pytest.warns(EditConflictWarning) as record:
        store.add_texts([NEW_CEO], ids=["acme-2"])
    assert _only(record, EditConflictWarning)[0].filename == __file__
    with pytest.warns(EditConflictWarning) as record:
        store.add_documents([Document(page_content=NEW_CEO, id="acme-3")])
    assert _only(record, EditConflictWarning)[0].filename == __file__


def test_a_conflict_warning_from_an_import_points_at_the_caller(store: RecipeKnowledgeStore) -> None:
    lines = io.StringIO(json.dumps({"id": "acme-2", "statement": NEW_CEO}) + "\n")
    with pytest.warns(EditConflictWarning) as record:
        store.import_jsonl(lines)
    assert _only(record, EditConflictWarning)[0].filename == __file__


def test_a_conflict_warning_from_an_agent_tool_points_at_the_line_that_invoked_it(store: RecipeKnowledgeStore) -> None:
    tools = {tool.name: tool for tool in RecipeToolkit(store=store).get_tools()}
    with pytest.warns(EditConflictWarning) as record:
        answer = tools["add_fact"].invoke({"statement": NEW_CEO, "fact_id": "acme-2"})
    assert answer.startswith("Added fact 'acme-2'")
    assert _only(record, EditConflictWarning)[0].filename == __file__
    with pytest.warns(EditConflictWarning) as record:
        tools["update_fact"].invoke({"fact_id": "tower", "statement": NEW_CEO})
    assert _only(record, EditConflictWarning)[0].filename == __file__


def test_a_truncated_query_warning_points_at_the_caller(knowledge_store: RecipeKnowledgeStore) -> None:
    knowledge_store.add_knowledge([TOWER], ids=["tower"])
    long_query = "Tell me, after a long preamble about nothing in particular, " * 6 + "where is the Zephyr Tower?"
    with pytest.warns(QueryTruncatedWarning) as record:
        knowledge_store.search(long_query)
    assert _only(record, QueryTruncatedWarning)[0].filename == __file__
