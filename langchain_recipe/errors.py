"""Exceptions raised by langchain-recipe.

The store, retriever, chat model, tools, checkpoint loading and data loading raise a
:class:`RecipeError` subclass for bad input or a broken state, so an application can catch them
all with one ``except`` clause; each message says what is wrong and how to fix it. Config models
raise pydantic's ``ValidationError`` and unsupported ``VectorStore`` methods ``NotImplementedError``,
as their libraries do (docs/reliability.md).
"""

from __future__ import annotations

__all__ = [
    "BaseModelMismatchError",
    "CheckpointError",
    "DependencyMissingError",
    "EditConflictError",
    "EditConflictWarning",
    "FingerprintMismatchError",
    "InvalidInputError",
    "QueryTruncatedWarning",
    "RecipeError",
    "StoreError",
    "StoreLockedError",
]


class RecipeError(Exception):
    """Base class of every error raised by langchain-recipe."""


class InvalidInputError(RecipeError, ValueError):
    """An argument (a statement, an id, a record, a config value) is malformed."""


class BaseModelMismatchError(InvalidInputError):
    """A RecipeModel was trained for another base LM (another hidden size or other input embeddings)."""


class CheckpointError(RecipeError):
    """A RecipeModel checkpoint is missing, incomplete, corrupted or of an unknown format."""


class FingerprintMismatchError(RecipeError):
    """A knowledge store was made with another RecipeModel or base LM than the one given."""


class StoreError(RecipeError):
    """The Qdrant collection behind a knowledge store cannot be opened or used."""


class StoreLockedError(StoreError):
    """An embedded on-disk store's folder is held by another Qdrant client (in this or another process)."""


class EditConflictError(RecipeError):
    """A new knowledge statement conflicts with an existing edit and the conflict policy is ``"refuse"``.

    Attributes:
        statement: the statement that was refused.
        existing: the existing edits it matched (``KnowledgeEdit`` records), best match first.
    """

    def __init__(self, message: str, *, statement: str, existing: list) -> None:
        super().__init__(message)
        self.statement = statement
        self.existing = existing


class EditConflictWarning(UserWarning):
    """Two live edits about the same subject and relation were kept (conflict policy ``"keep_both"``)."""


class DependencyMissingError(RecipeError, ImportError):
    """An optional package (the bundled model or encoder, matplotlib, ...) is not installed."""


class QueryTruncatedWarning(UserWarning):
    """A query was longer than the query encoder reads; retrieval saw only its beginning."""
