"""Exceptions raised by langchain-recipe.

Every error the library raises on purpose derives from :class:`RecipeError`, so an application
can catch them all with one ``except`` clause. Each message says what is wrong and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DependencyMissingError",
    "FingerprintMismatchError",
    "InvalidInputError",
    "RecipeError",
    "StoreError",
]


class RecipeError(Exception):
    """Base class of every error raised by langchain-recipe."""


class InvalidInputError(RecipeError, ValueError):
    """An argument (a statement, an id, a record, a config value) is malformed."""


class CheckpointError(RecipeError):
    """A RecipeModel checkpoint is missing, incomplete, corrupted or of an unknown format."""


class FingerprintMismatchError(RecipeError):
    """A knowledge store was made with another RecipeModel or base LM than the one given."""


class StoreError(RecipeError):
    """The Qdrant collection behind a knowledge store cannot be opened or used."""


class DependencyMissingError(RecipeError, ImportError):
    """An optional package (the bundled model or encoder, matplotlib, ...) is not installed."""
