"""Tests of the agent tools (langchain_recipe.tools) over a tiny in-memory knowledge store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from facts import IDS, QUERY, STATEMENTS
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.tools import MAX_STATEMENT_CHARS, RecipeToolkit

NEW = "The chief executive of Acme Corporation is Grace Hopper."


class PublicApiOnly:
    """A store wrapper exposing only the public API the tools may use (like a tenant-bound store)."""

    def __init__(self, store: RecipeKnowledgeStore) -> None:
        self._store = store

    def add_knowledge(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.add_knowledge(*args, **kwargs)

    def update_knowledge(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.update_knowledge(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.delete(*args, **kwargs)

    def get_by_ids(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.get_by_ids(*args, **kwargs)

    def search(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.search(*args, **kwargs)

    def get_edits(self, *args: Any, **kwargs: Any) -> Any:
        return self._store.get_edits(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._store)


@pytest.fixture(params=["store", "wrapped"])
def store(request: pytest.FixtureRequest, knowledge_store: RecipeKnowledgeStore) -> Any:
    knowledge_store.add_knowledge(STATEMENTS, ids=IDS)
    return knowledge_store if request.param == "store" else PublicApiOnly(knowledge_store)


@pytest.fixture
def tools(store: Any) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in RecipeToolkit(store=store).get_tools()}


def test_the_toolkit(tools: dict[str, BaseTool]) -> None:
    assert list(tools) == ["add_fact", "update_fact", "forget_fact", "lookup_facts"]
    for tool in tools.values():
        assert len(tool.description) > 80
        schema = tool.tool_call_schema.model_json_schema()
        for field in schema["properties"].values():
            assert field.get("description"), (tool.name, field)
    statement = tools["add_fact"].tool_call_schema.model_json_schema()["properties"]["statement"]
    assert statement["maxLength"] == MAX_STATEMENT_CHARS


def test_add_a_fact(
    tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(knowledge_store, reject=[NEW, "Oskar Brandt lives in Porto."])  # about nothing stored
    answer = tools["add_fact"].invoke({"statement": f"  {NEW} ", "fact_id": "acme-2026"})
    generated = tools["add_fact"].invoke({"statement": "Oskar Brandt lives in Porto."})

    assert answer == f"Added fact 'acme-2026': {NEW}"
    (document,) = knowledge_store.get_by_ids(["acme-2026"])
    assert document.page_content == NEW
    assert document.metadata["source"] == "agent"
    new_id = generated.split("'")[1]
    assert knowledge_store.get_by_ids([new_id])[0].page_content == "Oskar Brandt lives in Porto."
    assert len(knowledge_store) == len(IDS) + 2


def test_adding_an_existing_id_is_refused(tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore) -> None:
    answer = tools["add_fact"].invoke({"statement": NEW, "fact_id": "acme"})

    assert answer.startswith("Error:") and "update_fact" in answer
    assert knowledge_store.get_by_ids(["acme"])[0].page_content == STATEMENTS[0]


def test_update_a_fact(tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore) -> None:
    def prompt_of_acme() -> torch.Tensor:
        return next(e for e in knowledge_store.search(QUERY, k=len(IDS)) if e.edit_id == "acme").prompt

    before = prompt_of_acme()

    answer = tools["update_fact"].invoke({"fact_id": "acme", "statement": NEW})

    assert answer == f"Updated fact 'acme': was {STATEMENTS[0]!r}, now {NEW!r}"
    assert knowledge_store.get_by_ids(["acme"])[0].page_content == NEW
    assert len(knowledge_store) == len(IDS)
    assert not torch.equal(prompt_of_acme(), before)  # a new continuous prompt for the new statement


def test_update_or_forget_an_unknown_fact(tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore) -> None:
    for name, arguments in [
        ("update_fact", {"fact_id": "nope", "statement": NEW}),
        ("forget_fact", {"fact_id": "nope"}),
    ]:
        answer = tools[name].invoke(arguments)
        assert answer.startswith("Error: no fact has id 'nope'") and "lookup_facts" in answer
    assert len(knowledge_store) == len(IDS)


def test_forget_a_fact(tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore) -> None:
    answer = tools["forget_fact"].invoke({"fact_id": "zephyr"})

    assert answer == f"Forgot fact 'zephyr': {STATEMENTS[1]}"
    assert knowledge_store.get_by_ids(["zephyr"]) == []
    assert len(knowledge_store) == len(IDS) - 1


def test_lookup_facts(
    tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(knowledge_store, accept=[QUERY])
    ranked = knowledge_store.search(QUERY, k=2)

    answer = tools["lookup_facts"].invoke({"subject": QUERY, "k": 2})

    lines = answer.splitlines()
    assert len(lines) == 3
    assert lines[1] == f"- {ranked[0].edit_id}: {ranked[0].statement} [applies]"
    assert lines[2].startswith(f"- {ranked[1].edit_id}: {ranked[1].statement} [")
    force_gate(knowledge_store, reject=[QUERY])
    assert all(
        line.endswith("[does not apply]") for line in tools["lookup_facts"].invoke({"subject": QUERY}).splitlines()[1:]
    )


def test_lookup_in_an_empty_store(knowledge_store: RecipeKnowledgeStore) -> None:
    (_, _, _, lookup) = RecipeToolkit(store=knowledge_store).get_tools()
    assert lookup.invoke({"subject": "Acme"}) == "No facts are stored yet."


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("add_fact", {"statement": "x" * (MAX_STATEMENT_CHARS + 1)}),
        ("add_fact", {"statement": ""}),
        ("add_fact", {"statement": NEW, "fact_id": "i" * 201}),
        ("update_fact", {"fact_id": "acme"}),
        ("lookup_facts", {"subject": "Acme", "k": 0}),
        ("lookup_facts", {"subject": "Acme", "k": 21}),
    ],
)
def test_input_limits_give_a_readable_error_and_write_nothing(
    name: str, arguments: dict[str, Any], tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore
) -> None:
    answer = tools[name].invoke(arguments)

    assert answer.startswith("Error: invalid input (")
    assert knowledge_store.get_by_ids(["acme"])[0].page_content == STATEMENTS[0]
    assert len(knowledge_store) == len(IDS)


def test_a_whitespace_statement_is_refused_by_the_store(
    tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore
) -> None:
    answer = tools["add_fact"].invoke({"statement": "   "})

    assert answer.startswith("Error:")
    assert len(knowledge_store) == len(IDS)


def test_a_tool_call_gives_a_tool_message(tools: dict[str, BaseTool]) -> None:
    call = {"type": "tool_call", "id": "call-1", "name": "forget_fact", "args": {"fact_id": "mira"}}

    message = tools["forget_fact"].invoke(call)

    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call-1"
    assert message.content == f"Forgot fact 'mira': {STATEMENTS[3]}"


async def test_tools_are_async_too(tools: dict[str, BaseTool]) -> None:
    assert (await tools["lookup_facts"].ainvoke({"subject": QUERY, "k": 1})).startswith("Stored facts closest to")


def test_add_fact_stops_at_max_facts(store: Any, knowledge_store: RecipeKnowledgeStore) -> None:
    add_fact = {tool.name: tool for tool in RecipeToolkit(store=store, max_facts=len(IDS) + 1).get_tools()}["add_fact"]

    first = add_fact.invoke({"statement": "The Moon orbits the Earth.", "fact_id": "moon"})
    flood = add_fact.invoke({"statement": "Mars has two moons.", "fact_id": "mars"})

    assert first.startswith("Added fact 'moon'")
    assert flood.startswith("Error: the store already holds 5 facts") and "max_facts=5" in flood
    assert len(knowledge_store) == len(IDS) + 1
    assert knowledge_store.get_by_ids(["mars"]) == []


def test_add_fact_names_the_stored_facts_about_the_same_thing(
    tools: dict[str, BaseTool], knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    force_gate(knowledge_store, accept=[NEW])  # the new CEO statement passes the gate against stored facts

    answer = tools["add_fact"].invoke({"statement": NEW, "fact_id": "acme-2026"})

    first_line, note = answer.split("\n")
    assert first_line == f"Added fact 'acme-2026': {NEW}"
    kept = knowledge_store.get_edits(["acme-2026"])[0].conflicts_with
    assert kept and note.startswith("Note: stored fact(s) ") and "forget_fact" in note
    assert all(f"{i!r} ({knowledge_store.get_by_ids([i])[0].page_content!r})" in note for i in kept[:3])
    assert len(knowledge_store) == len(IDS) + 1  # both kept: the planner decides
