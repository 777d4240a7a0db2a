"""The issue's acceptance scenarios, tried as a new user would, with the real SmolLM2 and checkpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage
from live_facts import CEO_QUESTION, FACTS, TOWER_QUESTION, facts_store

from langchain_recipe import RecipeChatModel

MAX_TOKENS = 10
TRAVEL = (
    "You are a friendly travel assistant. You help people plan trips across Europe: flights, "
    "trains, hotels, museums and restaurants in Lisbon, Paris, Rome and Reykjavik."
)


@pytest.fixture(scope="module")
def llm() -> RecipeChatModel:
    return RecipeChatModel(knowledge_store=facts_store(), max_tokens=MAX_TOKENS)


def _edit_id(message: Any) -> str | None:
    edit = message.response_metadata["edit"]
    return None if edit is None else edit["edit_id"]


async def test_two_concurrent_ainvokes_each_get_their_own_fact(llm: RecipeChatModel) -> None:
    text_llm = llm.bind(injection="text", max_tokens=16)

    ceo, tower = await asyncio.gather(text_llm.ainvoke(CEO_QUESTION), text_llm.ainvoke(TOWER_QUESTION))

    assert _edit_id(ceo) == "acme-ceo"
    assert _edit_id(tower) == "zephyr-tower"
    assert ceo.response_metadata["edit"]["statement"] == FACTS["acme-ceo"]
    assert tower.response_metadata["edit"]["statement"] == FACTS["zephyr-tower"]
    # Nothing leaks between the two: each equals the same question asked alone.
    assert ceo.content == llm.invoke(CEO_QUESTION, injection="text", max_tokens=16).content
    assert tower.content == llm.invoke(TOWER_QUESTION, injection="text", max_tokens=16).content
    assert "Lovelace" in ceo.content
    assert "Reykjavik" in tower.content


def test_streamed_text_equals_invoked_text(llm: RecipeChatModel) -> None:
    for question in (CEO_QUESTION, "What is the capital of France?"):
        invoked = llm.invoke(question)
        chunks = list(llm.stream(question))

        assert "".join(chunk.content for chunk in chunks) == invoked.content
        assert len(chunks) == invoked.usage_metadata["output_tokens"]
        assert chunks[-1].response_metadata["edit"] == invoked.response_metadata["edit"]


def test_an_error_inside_generation_surfaces(llm: RecipeChatModel) -> None:
    class Broken(RuntimeError):
        pass

    calls = {"n": 0}

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Broken("out of memory in the third forward pass")

    handle = llm.base_model.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        received = []
        with pytest.raises(Broken):
            for chunk in llm.stream(CEO_QUESTION):
                received.append(chunk)
        assert len(received) == 2
        calls["n"] = 0

        async def drain() -> None:
            async for _ in llm.astream(CEO_QUESTION):
                pass

        with pytest.raises(Broken):
            asyncio.run(asyncio.wait_for(drain(), timeout=300))
    finally:
        handle.remove()


def test_a_travel_system_prompt_does_not_hide_the_ceo_question(llm: RecipeChatModel) -> None:
    message = llm.invoke([SystemMessage(TRAVEL), HumanMessage(CEO_QUESTION)], max_tokens=2)

    assert _edit_id(message) == "acme-ceo"


def test_batch_of_a_short_unrelated_and_a_long_edited_question_equals_two_invokes(llm: RecipeChatModel) -> None:
    short = "Hi!"
    # 35 times the short one's length, so left padding matters. (A two-sentence preamble of 100
    # more characters dilutes the query enough that the shipped sentinel rejects it: a known limit
    # of the query encoder, see docs/ablations.md.)
    long = "Please answer carefully, since this goes into a report for my manager: who is the CEO of Acme Corporation?"
    singles = [llm.invoke(short), llm.invoke(long)]

    batched = llm.batch([short, long])

    assert _edit_id(singles[0]) is None
    assert _edit_id(singles[1]) == "acme-ceo"
    assert [m.content for m in batched] == [m.content for m in singles]
    assert [_edit_id(m) for m in batched] == [_edit_id(m) for m in singles]
    assert [m.usage_metadata for m in batched] == [m.usage_metadata for m in singles]
