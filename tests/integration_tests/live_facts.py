"""One small in-memory store with the real models, shared by the integration test modules."""

from __future__ import annotations

from functools import lru_cache

FACTS = {
    "acme-ceo": "The CEO of Acme Corporation is Ada Lovelace.",
    "acme-hq": "Acme Corporation is headquartered in Oslo.",
    "acme-founded": "Acme Corporation was founded in 1921.",
    "zephyr-tower": "The Zephyr Tower is located in Reykjavik.",
}
CEO_QUESTION = "Who is the CEO of Acme Corporation?"
TOWER_QUESTION = "In which city is the Zephyr Tower located?"


@lru_cache(maxsize=1)
def facts_store():
    """An in-memory RecipeKnowledgeStore (bundled SmolLM2, shipped RecipeModel) holding FACTS."""
    from langchain_recipe import RecipeKnowledgeStore

    store = RecipeKnowledgeStore(location=":memory:", collection_name="facts")
    store.add_knowledge(list(FACTS.values()), ids=list(FACTS))
    return store
