"""LangChain's standard ``VectorStore`` suite (langchain-tests) on RecipeKnowledgeStore with the
trained RecipeModel and the bundled SmolLM2: every test runs, including the ones that assert
that a query equal to a stored text ranks that text first (the trained query and knowledge
encoders do that; the tiny random ones in the unit suite cannot)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_recipe.knowledge_store import RecipeKnowledgeStore

pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")


class TestRecipeKnowledgeStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, recipe_model, base_model) -> Iterator[RecipeKnowledgeStore]:
        """An empty in-memory store per test (documents in the suite are independent: the
        default conflict policy "keep_both" is what a vector store does)."""
        store = RecipeKnowledgeStore(recipe_model, base_model, location=":memory:", collection_name="standard")
        yield store
        store.close()
