"""Fixtures with the real bundled SmolLM2-135M-Instruct, MiniLM encoder and shipped RecipeModel."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration_tests" in str(item.fspath):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def base_model():
    from langchain_recipe.base_models import load_base_model

    return load_base_model()


@pytest.fixture(scope="session")
def recipe_model():
    from langchain_recipe.base_models import default_recipe_model_path
    from langchain_recipe.nn import RecipeModel

    return RecipeModel.from_pretrained(default_recipe_model_path()).eval()


@pytest.fixture(scope="session")
def demo_records():
    from langchain_recipe.datasets import DEMO_EDITS, iter_edits

    return list(iter_edits(DEMO_EDITS, "zsre"))


@pytest.fixture(scope="session")
def store(base_model, recipe_model, demo_records):
    """An in-memory store holding the first 20 demo edits, ids zsre-0..zsre-19."""
    from langchain_recipe import RecipeKnowledgeStore

    store = RecipeKnowledgeStore(recipe_model, base_model, location=":memory:")
    records = demo_records[:20]
    store.add_knowledge([r.statement for r in records], ids=[f"zsre-{i}" for i in range(len(records))])
    return store
