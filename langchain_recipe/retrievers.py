"""SentinelRetriever: LangChain retrieval over a RecipeKnowledgeStore, gated by the knowledge sentinel."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from langchain_recipe.errors import InvalidInputError

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

    Each ``Document`` has ``id`` set to the edit id and, in ``metadata``, ``edit_id``, ``score``
    (the scaled dot product ``s(q, k)`` with the query, RECIPE Eq. 6) and ``sentinel_score``
    (``s(q, Θ)``, the query's own threshold), as plain floats, besides the edit's own metadata.

    Ungated mode (for inspection):
        ``SentinelRetriever(store=store, k=5, gated=False)`` returns the top ``k`` edits whatever
        their score, so you can see what the gate rejects and by how much (``score`` minus
        ``sentinel_score``). The chat model never uses this mode.

    Async:
        ``ainvoke`` runs the query encoder and the Qdrant request in an executor thread.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any
    """The knowledge store to search: a :class:`~langchain_recipe.RecipeKnowledgeStore` (or any
    object with its ``search(query, k=..., gated=...)``)."""
    k: int = Field(default=1, ge=1)
    """At most this many edits (the paper retrieves one)."""
    gated: bool = True
    """Apply the sentinel gate. ``False`` returns the top ``k`` edits whatever their score (for
    inspecting what the gate rejects)."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = kwargs.get("k", self.k)
        if not isinstance(k, int) or k < 1:
            msg = f"k must be a positive integer, got {k!r}."
            raise InvalidInputError(msg)
        return [edit.to_document() for edit in self.store.search(query, k=k, gated=self.gated)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs
        )
