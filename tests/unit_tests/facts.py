"""Hand-made edits shared by the store, retriever and chat-model tests, and a snapshot of a
store's contents for "nothing changed" checks."""

from __future__ import annotations

from typing import Any

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
    "Mira Solberg plays for the Chicago Bulls.",
]
IDS = ["acme", "zephyr", "oskar", "mira"]
QUERY = "Who is the chief executive of Acme Corporation?"


def store_snapshot(store: Any) -> list[tuple[Any, ...]]:
    """Everything a user can read back from a ``RecipeKnowledgeStore``: ids, statements, metadata,
    timestamps, continuous prompts and stored key vectors, sorted by id."""
    points = store._retrieve_points([d.id for d in store.list()], with_vectors=True)
    return sorted(
        (p.payload["edit_id"], p.payload["statement"], repr(p.payload), repr(p.vector["key"])) for p in points
    )
