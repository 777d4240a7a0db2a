"""LangChain's standard integration suites (package ``langchain-tests``) with the real models."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests
from live_facts import facts_store

from langchain_recipe import RecipeChatModel, SentinelRetriever


class TestRecipeChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[RecipeChatModel]:
        return RecipeChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Few new tokens: each answer costs about 0.1 s per token on a 2-core CPU.
        return {"knowledge_store": facts_store(), "max_tokens": 8}

    @property
    def supports_model_override(self) -> bool:
        # One local LM per instance (the knowledge store's continuous prompts live in its
        # embedding space), so `invoke(model=...)` cannot switch models; it raises instead.
        return False

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    # Skipped by the suite's own flags, with our reasons:
    # - tool calling, tool choice, structured output and JSON mode (`has_tool_calling` is False):
    #   RecipeChatModel's `bind_tools` raises NotImplementedError saying what to use instead; a
    #   135M local LM does not emit tool calls.
    #   Agents use a tool-calling planner next to it (docs/agent_tools.md).
    # - image, audio, video, PDF and Anthropic-format inputs (`supports_*_inputs` are False): the
    #   LM reads text only.
    # - `test_stream_time` ("VCR not set up"): it replays recorded HTTP traffic; there is none,
    #   the model runs in-process.


class TestSentinelRetrieverIntegration(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[SentinelRetriever]:
        return SentinelRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": facts_store()}

    @property
    def retriever_query_example(self) -> str:
        # Three stored facts are about Acme and all pass the sentinel gate for this query, so the
        # suite's k=3 requests can be met by the gated retriever.
        return "Tell me about Acme Corporation."


class TestUngatedSentinelRetrieverIntegration(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[SentinelRetriever]:
        return SentinelRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"store": facts_store(), "gated": False}

    @property
    def retriever_query_example(self) -> str:
        return "What is the capital of France?"  # rejected by the gate; the ungated mode lists edits anyway


def test_gated_retrieval_rejects_an_unrelated_question() -> None:
    assert SentinelRetriever(store=facts_store(), k=3).invoke("What is the capital of France?") == []


@pytest.fixture(autouse=True, scope="module")
def _loaded_once() -> None:
    facts_store()
