"""LangChain's standard unit tests (package ``langchain-tests``) for RecipeChatModel.

These tests only construct the model and inspect it; construction is lazy, so no weights load.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_recipe.chat_models import RecipeChatModel


class TestRecipeChatModelStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[RecipeChatModel]:
        return RecipeChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # A folder that does not exist: constructing must not touch it (lazy loading).
        return {"model_name": "/nonexistent/model-folder"}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    # RecipeChatModel has no tool calling or structured output (a 135M local LM that does not
    # emit tool calls): its `bind_tools` and `with_structured_output` raise NotImplementedError with
    # a message that says what to use instead, so the two flags below say False and the tool and
    # structured-output tests return early. It is not serialisable by LangChain
    # (it holds a knowledge store), so `test_serdes` skips. `test_init_from_env` skips because it
    # reads no environment variables: there is no API key or endpoint, the model runs in-process.


def test_construction_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_recipe import base_models

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("constructing RecipeChatModel loaded a model")

    monkeypatch.setattr(base_models, "load_base_model", fail)
    RecipeChatModel(model_name="/nonexistent/model-folder", temperature=0, max_tokens=8)
