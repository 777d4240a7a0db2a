"""The conflict rule: two statements conflict only when they are about the same subject and the
same relation (docs/qdrant.md, "Conflicts").

The rule function is tested with chosen inputs (gate scores and key cosines given, no model);
the store tests force the knowledge sentinel gate open with the tiny random model, so only the
subject and relation checks decide.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from qdrant_modes import MODES, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import EditConflictError, EditConflictWarning
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.knowledge_store import _write as store_module
from langchain_recipe.knowledge_store._conflicts import CONFLICT_KEY_COSINE, is_conflict, subject_of
from langchain_recipe.nn import RecipeModel

OLD_CEO = "The chief executive of Acme Corporation is Ada Lovelace."
NEW_CEO = "The chief executive of Acme Corporation is Grace Hopper."
TOWER = "The Zephyr Tower is located in Lisbon."
OSKAR = "Oskar Brandt speaks Portuguese."


def conflict(new: str, old: str, *, cosine: float | None = None, gate: bool = True, **subjects: str | None) -> bool:
    """The rule with the gate passed (or not) and a key cosine below the threshold unless given."""
    return is_conflict(new, old, score=1.0 if gate else -1.0, sentinel_score=0.0, key_cosine=cosine, **subjects)


# ---------------------------------------------------------------------- the rule, chosen inputs
@pytest.mark.parametrize(
    ("new", "old"),
    [
        (NEW_CEO, OLD_CEO),
        ("The CEO of Acme is Grace Hopper.", "The CEO of Acme is Ada Lovelace."),
        ("Grace Hopper is the CEO of Acme.", "Ada Lovelace is the CEO of Acme."),
        ("Acme was founded in 2001.", "Acme was founded in 1999."),
        ("Who designed the Heroes Chronicles? Jon Van Caneghem", "Who designed the Heroes Chronicles? Chris Riddell"),
        (
            "What is Vueling's parent company? International Airlines Group",
            "What is Vueling's parent company? Wesfarmers",
        ),
        ("The population of Northvale is 48,500.", "The population of Northvale is 12,000."),
        (OLD_CEO, OLD_CEO),  # a restatement answers the same question too
    ],
)
def test_same_subject_and_relation_with_another_answer_is_a_conflict(new: str, old: str) -> None:
    assert conflict(new, old)


@pytest.mark.parametrize(
    ("new", "old"),
    [
        ("What is the date of birth for Darryl Herrod? 1952", "What is the date of birth for Darrell Spencer? 1944"),
        ("Who designed the Zephyr Tower? Renzo Piano", "Who designed the Heroes Chronicles? Chris Riddell"),
        ("The official religion of Paul is Christianity", "The official religion of Edwin of Northumbria is Islam"),
        (OSKAR, TOWER),
    ],
)
def test_different_subjects_do_not_conflict(new: str, old: str) -> None:
    assert not conflict(new, old)
    assert not conflict(new, old, cosine=0.99)  # not even with nearly parallel keys


@pytest.mark.parametrize(
    ("new", "old", "subject"),
    [
        ("Acme is headquartered in Oslo.", "The CEO of Acme is Ada Lovelace.", "Acme"),
        ("The CFO of Acme is Grace Hopper.", "The CEO of Acme is Ada Lovelace.", "Acme"),
        ("Acme is headquartered in Oslo.", "Acme was founded in 1999.", "Acme"),
        ("Where was Oskar Brandt born? Hamburg", "When was Oskar Brandt born? 1970", "Oskar Brandt"),
        ("Oskar Brandt was born in Hamburg.", OSKAR, "Oskar Brandt"),
        ("Project Helios is led by Dr. Sara Kim.", "Project Helios was launched in 2019.", "Project Helios"),
    ],
)
def test_the_same_subject_with_another_relation_does_not_conflict(new: str, old: str, subject: str) -> None:
    assert not conflict(new, old)
    assert not conflict(new, old, new_subject=subject, old_subject=subject)
    assert not conflict(new, old, new_subject=subject)


def test_the_gate_comes_first() -> None:
    assert not conflict(NEW_CEO, OLD_CEO, gate=False)
    assert not conflict(OLD_CEO, OLD_CEO, gate=False, cosine=1.0)
    assert not is_conflict(NEW_CEO, OLD_CEO, score=0.5, sentinel_score=0.5)  # s > s_Θ, strictly


def test_reworded_questions_conflict_when_their_keys_are_nearly_parallel() -> None:
    new = "Which corporation created USS Leedstown (APA-56)? Arleigh Burke-class aircraft carrier"
    old = "What company made USS Leedstown (APA-56)? Embassy Shipbuilding and Engineering Company"
    assert not conflict(new, old, cosine=CONFLICT_KEY_COSINE - 0.01)
    assert conflict(new, old, cosine=CONFLICT_KEY_COSINE)
    assert conflict(
        new, old, cosine=CONFLICT_KEY_COSINE, new_subject="USS Leedstown (APA-56)", old_subject="USS Leedstown (APA-56)"
    )


def test_metadata_subjects_decide_the_subject() -> None:
    # The same words about two subjects the metadata tells apart ...
    assert not conflict(
        "The CEO is Grace Hopper.", "The CEO is Ada Lovelace.", new_subject="Acme", old_subject="Globex"
    )
    # ... and a subject the text gives no capitalised name for.
    assert conflict("The CEO is Grace Hopper.", "The CEO is Ada Lovelace.", new_subject="acme", old_subject="Acme ")
    assert not conflict("The CEO is Grace Hopper.", "The CEO is Ada Lovelace.")
    # One side names its subject: it must occur in the other statement.
    assert conflict(NEW_CEO, OLD_CEO, new_subject="Acme Corporation")
    assert conflict(NEW_CEO, OLD_CEO, old_subject="acme corporation")
    assert not conflict("The CEO of Globex is Grace Hopper.", "The CEO of Acme is Ada Lovelace.", new_subject="Globex")


@pytest.mark.parametrize(
    ("metadata", "subject"),
    [(None, None), ({}, None), ({"subject": "Acme"}, "Acme"), ({"subject": "  "}, None), ({"subject": 3}, None)],
)
def test_subject_of_reads_only_a_non_blank_string(metadata: dict[str, Any] | None, subject: str | None) -> None:
    assert subject_of(metadata) == subject


# ---------------------------------------------------------------------- the rule in the store
@pytest.fixture
def gate_open(knowledge_store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]) -> Callable[..., None]:
    """``gate_open(*statements)``: these statements, run as queries, pass the gate against every edit."""

    def open_for(*statements: str) -> None:
        force_gate(knowledge_store, accept=list(statements))

    return open_for


def test_a_statement_about_another_subject_is_not_a_conflict_even_when_it_passes_the_gate(
    knowledge_store: RecipeKnowledgeStore, gate_open: Callable[..., None]
) -> None:
    knowledge_store.add_knowledge([TOWER, OLD_CEO], ids=["tower", "acme"])
    gate_open(OSKAR)
    assert [e.edit_id for e in knowledge_store.search(OSKAR, k=2, gated=True)] != []  # the gate passes ...

    with warnings.catch_warnings():
        warnings.simplefilter("error", EditConflictWarning)
        knowledge_store.add_knowledge([OSKAR], ids=["oskar"], on_conflict="refuse")  # ... but nothing conflicts
        knowledge_store.add_knowledge(
            ["The capital of Freedonia is Fredville."],
            metadatas=[{"subject": "Freedonia"}],
            ids=["freedonia"],
            on_conflict="refuse",
        )

    assert knowledge_store.get_edits(["oskar"])[0].conflicts_with == []
    assert len(knowledge_store) == 4


def test_the_same_subject_and_relation_is_still_a_conflict(
    knowledge_store: RecipeKnowledgeStore, gate_open: Callable[..., None]
) -> None:
    knowledge_store.add_knowledge([TOWER, OLD_CEO], ids=["tower", "acme"])
    gate_open(NEW_CEO)

    with pytest.raises(EditConflictError) as raised:
        knowledge_store.add_knowledge([NEW_CEO], ids=["acme-2"], on_conflict="refuse")
    assert [e.edit_id for e in raised.value.existing] == ["acme"]  # not the tower, which also passed the gate

    with pytest.warns(EditConflictWarning, match="acme"):
        knowledge_store.add_knowledge([NEW_CEO], ids=["acme-2"])
    assert knowledge_store.get_edits(["acme-2"])[0].conflicts_with == ["acme"]


def test_metadata_subjects_tell_apart_statements_worded_alike(
    knowledge_store: RecipeKnowledgeStore, gate_open: Callable[..., None]
) -> None:
    knowledge_store.add_knowledge(["The CEO is Ada Lovelace."], metadatas=[{"subject": "Acme"}], ids=["acme"])
    gate_open("The CEO is Grace Hopper.")

    knowledge_store.add_knowledge(
        ["The CEO is Grace Hopper."], metadatas=[{"subject": "Globex"}], ids=["globex"], on_conflict="refuse"
    )
    knowledge_store.add_knowledge(
        ["The CEO is Grace Hopper."], metadatas=[{"subject": "Acme"}], ids=["acme-2"], on_conflict="replace"
    )

    assert sorted(d.id for d in knowledge_store.list()) == ["acme-2", "globex"]
    assert knowledge_store.get_edits(["acme-2"])[0].replaces == ["acme"]


def test_within_a_batch_only_the_same_subject_and_relation_conflict(
    knowledge_store: RecipeKnowledgeStore, gate_open: Callable[..., None]
) -> None:
    batch = [OLD_CEO, TOWER, NEW_CEO, OSKAR]
    gate_open(*batch)

    with pytest.warns(EditConflictWarning, match="one batch never replace each other"):
        knowledge_store.add_knowledge(batch, ids=["acme", "tower", "acme-2", "oskar"], on_conflict="replace")

    edits = {e.edit_id: e for e in knowledge_store.get_edits(["acme", "tower", "acme-2", "oskar"])}
    assert {i: e.conflicts_with for i, e in edits.items()} == {"acme": [], "tower": [], "acme-2": ["acme"], "oskar": []}
    assert len(knowledge_store) == 4  # within a batch: kept, never replaced


@pytest.mark.parametrize("prompt_storage", ["payload_fp16", "multivector"])
def test_the_rule_gets_the_stored_key_cosine_in_every_mode(
    request: pytest.FixtureRequest,
    recipe_model: RecipeModel,
    base_model: HuggingFaceBaseModel,
    tmp_path: Path,
    prompt_storage: str,
    force_gate: Callable[..., torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model,
        base_model=base_model,
        prompt_storage=prompt_storage,
        **store_location(mode, request, tmp_path),
    )
    try:
        store.add_knowledge([OLD_CEO], ids=["acme"])
        force_gate(store, accept=[NEW_CEO])
        calls: list[dict[str, Any]] = []

        def spy(*args: Any, **kwargs: Any) -> bool:
            calls.append(kwargs)
            return is_conflict(*args, **kwargs)

        monkeypatch.setattr(store_module, "is_conflict", spy)
        with pytest.warns(EditConflictWarning):
            store.add_knowledge([NEW_CEO], ids=["acme-2"])

        keys, _ = store._encode([NEW_CEO, OLD_CEO])
        expected = float(torch.nn.functional.cosine_similarity(keys[0], keys[1], dim=0))
        assert len(calls) == 1
        assert calls[0]["key_cosine"] == pytest.approx(expected, abs=1e-4)
    finally:
        store.close()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param
