"""SentinelRetriever: LangChain retrieval over a RecipeKnowledgeStore, gated by the knowledge sentinel."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from langchain_recipe.knowledge_store import RecipeKnowledgeStore

__all__ = ["SentinelRetriever"]


class SentinelRetriever(BaseRetriever):
    """Retrieves the edits whose similarity to the query beats the knowledge sentinel's.

    RECIPE §3.3 (Chen et al., EMNLP 2024): each query has its own threshold, its similarity to
    the learned knowledge sentinel, so an unrelated question retrieves nothing.

    Instantiate:
        .. code-block:: python

            from langchain_recipe import RecipeKnowledgeStore, SentinelRetriever

            store = RecipeKnowledgeStore()
            store.add_knowledge(["The CEO of Acme is Ada Lovelace."])
            retriever = SentinelRetriever(store=store)
            retriever.invoke("Who is the CEO of Acme?")
            # [Document(id=..., page_content='The CEO of Acme is Ada Lovelace.',
            #           metadata={'edit_id': ..., 'score': 1.9, 'sentinel_score': 0.7})]

    Each ``Document`` has ``id`` set to the edit id and, in ``metadata``, ``score`` (the scaled
    dot product with the query) and ``sentinel_score`` (the query's threshold), as plain floats.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: RecipeKnowledgeStore
    """The knowledge store to search."""
    k: int = Field(default=1, ge=1)
    """At most this many edits (the paper retrieves one)."""
    gated: bool = True
    """Apply the sentinel gate. ``False`` returns the top ``k`` edits whatever their score (for
    inspecting what the gate rejects)."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = kwargs.get("k", self.k)
        return [edit.to_document() for edit in self.store.search(query, k=k, gated=self.gated)]
