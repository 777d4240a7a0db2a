"""What copying a knowledge store means: another handle on the same edits; pickling is refused.

A store is a handle on a Qdrant collection: it owns a client (for an on-disk folder, the
folder's lock too), the models and a lock shared by its tenant views. A copy, shallow or deep, is
another handle on the same collection that shares all of these, like :meth:`for_tenant`: it is
what LangChain and pydantic need when they copy an object that holds a store
(``retriever.model_copy(deep=True)``, a chain's ``copy.deepcopy``), and copying the models or
reopening the folder would be slow or impossible. A pickle cannot carry an open client, a
folder lock or an in-memory collection, so pickling raises :class:`StorePickleError` naming the
alternatives.
"""

from __future__ import annotations

from typing import Any

from langchain_recipe.errors import StoreError

__all__ = ["StoreHandle", "StorePickleError"]


class StorePickleError(StoreError, TypeError):
    """A knowledge store, or an object that holds one, was pickled.

    A ``TypeError`` too, which is what pickle's callers (multiprocessing, joblib, caches) catch
    for objects that cannot be pickled.
    """


class StoreHandle:
    """Copy and pickle behaviour of :class:`~langchain_recipe.knowledge_store.RecipeKnowledgeStore`."""

    def __copy__(self) -> Any:
        """Another handle on the same edits, sharing the client, models and lock (as :meth:`for_tenant`)."""
        handle = object.__new__(type(self))
        handle.__dict__.update(self.__dict__)
        return handle

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """Another handle on the same edits: the same as :meth:`__copy__`.

        Its own settings (tenant, conflict policy, request size) are its own; the client, the
        models and the stored edits are shared, so an edit written through the copy is seen
        through the original, and closing either closes both. For edits of its own, open another
        store (``RecipeKnowledgeStore(...)``) and fill it with :meth:`import_jsonl`.
        """
        handle = self.__copy__()
        memo[id(self)] = handle
        return handle

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refuse pickling (see the module docstring).

        Raises:
            StorePickleError: always.
        """
        msg = (
            f"A {type(self).__name__} cannot be pickled: it holds an open Qdrant client (with an on-disk "
            "folder's lock) and its models. To move or back up its edits, use store.export_jsonl(...) and "
            "import_jsonl(...); in another process, open the store there with the same arguments (path=... "
            "or url=...); within this process, share the store, or take another handle on the same edits with "
            "store.for_tenant(...) or copy.deepcopy(store)."
        )
        raise StorePickleError(msg)
