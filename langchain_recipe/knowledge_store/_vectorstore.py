"""The LangChain ``VectorStore`` side of the knowledge store: documents in, documents out.

Each method here is the ``VectorStore`` contract spelled in the store's own terms:
:meth:`~RecipeKnowledgeStore.add_knowledge`, :meth:`~RecipeKnowledgeStore.search_batch`,
:meth:`~RecipeKnowledgeStore.get_edits` and :meth:`~RecipeKnowledgeStore.list_edits`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever

from langchain_recipe.errors import InvalidInputError

if TYPE_CHECKING:
    from langchain_recipe.knowledge_store._store import RecipeKnowledgeStore

__all__ = ["VectorStoreAdapter"]


class VectorStoreAdapter(VectorStore):
    """``VectorStore`` methods over a knowledge store's own API (see the module docstring)."""

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """``VectorStore.add_texts``: :meth:`add_knowledge` (keyword arguments pass through)."""
        return self.add_knowledge(list(texts), metadatas, ids, **kwargs)

    def add_documents(self, documents: list[Document], ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Add ``Document`` s; the documents are not changed.

        ``page_content`` is the statement, ``metadata`` kept as is, ``id`` (or ``ids``) used when set.
        """
        ids = list(ids) if ids is not None else [doc.id or str(uuid.uuid4()) for doc in documents]
        return self.add_knowledge(
            [d.page_content for d in documents], [dict(d.metadata) for d in documents], ids, **kwargs
        )

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> RecipeKnowledgeStore:
        """A new store (``kwargs`` go to the constructor) holding ``texts`` as edits.

        Raises:
            InvalidInputError: ``embedding`` is given: the store encodes statements and queries
                with its RecipeModel's knowledge/query encoder, never with an ``Embeddings``.
        """
        if embedding is not None:
            msg = (
                "RecipeKnowledgeStore encodes statements with its RecipeModel's knowledge encoder; pass "
                "embedding=None (and recipe_model=... to choose the model)."
            )
            raise InvalidInputError(msg)
        store = cls(**kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The edits with these ids as ``Document`` s, in the given order; unknown ids are skipped.

        Each has ``id`` = edit id and ``metadata`` exactly as given.
        """
        return [edit.to_document() for edit in self.get_edits(ids)]

    def list(
        self,
        limit: int | None = None,
        *,
        filter: dict[str, Any] | Any | None = None,
        source: str | None = None,
        author: str | None = None,
    ) -> list[Document]:
        """:meth:`list_edits` as ``Document`` s (the user's metadata only; ids set)."""
        return [e.to_document() for e in self.list_edits(limit, filter=filter, source=source, author=author)]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Any = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` nearest edits, ungated, with ``s(q, k)`` as score.

        The ``VectorStore`` contract does not threshold; use :class:`SentinelRetriever`,
        :meth:`as_retriever` (gated by default) or ``gated=True`` for the gate.

        Args:
            query: the question.
            k: how many.
            filter: see :meth:`list_edits`.
            **kwargs: ``gated=True`` keeps only edits that pass the sentinel gate.
        """
        gated = bool(kwargs.get("gated", False))
        found = self.search_batch([query], k=k, gated=gated, filter=filter, with_prompt=False)[0]
        return [(Document(page_content=e.statement, metadata=e.metadata, id=e.edit_id), e.score) for e in found]

    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search_with_score` without the scores."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k=k, filter=filter, **kwargs)]

    def as_retriever(self, **kwargs: Any) -> VectorStoreRetriever:
        """A LangChain ``VectorStoreRetriever`` over this store, gated by the knowledge sentinel by default.

        It returns only the edits that pass the gate (RECIPE §3.3: ``s(q, k) > s(q, Θ)``), as the
        chat model and :class:`~langchain_recipe.retrievers.SentinelRetriever` do, so an unrelated
        question retrieves nothing. ``search_kwargs`` go to :meth:`similarity_search` as usual
        (``k``, ``filter``); ``search_kwargs={"gated": False}`` gives the plain top ``k``.
        ``SentinelRetriever`` returns the same edits with their scores in the metadata.

        Args:
            **kwargs: ``VectorStore.as_retriever``'s: ``search_type`` (``"similarity"``; the
                others raise ``NotImplementedError``), ``search_kwargs``, ``tags``.
        """
        search_kwargs = {"gated": True, **(kwargs.pop("search_kwargs", None) or {})}
        return super().as_retriever(search_kwargs=search_kwargs, **kwargs)

    def _select_relevance_score_fn(self) -> Any:
        msg = (
            "RecipeKnowledgeStore scores are scaled dot products judged against a per-query knowledge "
            "sentinel, not a fixed relevance scale; use similarity_search_with_score or SentinelRetriever."
        )
        raise NotImplementedError(msg)

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """Not supported: RECIPE answers a query with its single best edit, so there is nothing to diversify.

        Raises:
            NotImplementedError: always (as LangChain expects of a store without MMR).
        """
        msg = (
            "RecipeKnowledgeStore does not do maximal marginal relevance: RECIPE injects a query's single best "
            "edit. Use similarity_search, search(query, k=...) or SentinelRetriever."
        )
        raise NotImplementedError(msg)
