"""Tenant isolation through every component: a query for tenant A never retrieves tenant B's edit.

``test_tenants_are_isolated`` (test_knowledge_store_lifecycle.py) covers the store's own reads and
writes on one tenant pair. Here the two tenants hold the SAME edit ids with near-identical
statements, the knowledge sentinel accepts every query (``force_gate``), and each tenant is read
through the chat model (the continuous prompt actually injected is checked), the retriever and the
four agent tools, in every Qdrant mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from facts import IDS, STATEMENTS
from langchain_core.messages import HumanMessage
from qdrant_modes import MODES, qdrant_server_url, store_location  # noqa: F401  (fixture import)

import langchain_recipe.generation as generation
from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.chat_models import RecipeChatModel
from langchain_recipe.errors import InvalidInputError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.nn import RecipeModel
from langchain_recipe.retrievers import SentinelRetriever
from langchain_recipe.tools import RecipeToolkit

# Tenant "globex" holds the same ids with statements that differ from acme's in the object only.
GLOBEX_STATEMENTS = [
    "The chief executive of Acme Corporation is Hank Scorpio.",
    "The Zephyr Tower is located in Porto.",
    "Oskar Brandt speaks Finnish.",
    "Mira Solberg plays for the Boston Celtics.",
]
QUERIES = [
    "Who is the chief executive of Acme Corporation?",
    "In which city is the Zephyr Tower located?",
    "What language does Oskar Brandt speak?",
    "Which team does Mira Solberg play for?",
    "Who runs Acme?",
]
MAX_TOKENS = 3

# The tools write statements close to the stored ones: conflicts are kept and warned about.
pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")


@pytest.fixture(params=MODES)
def store(
    request: pytest.FixtureRequest, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> Iterator[RecipeKnowledgeStore]:
    """acme and globex hold the same ids, near-identical statements; "empty" holds nothing."""
    store = RecipeKnowledgeStore(
        recipe_model=recipe_model, base_model=base_model, **store_location(request.param, request, tmp_path)
    )
    store.for_tenant("acme").add_knowledge(STATEMENTS, metadatas=[{"owner": "acme"}] * 4, ids=IDS)
    store.for_tenant("globex").add_knowledge(GLOBEX_STATEMENTS, metadatas=[{"owner": "globex"}] * 4, ids=IDS)
    yield store
    store.close()


@pytest.fixture
def injected(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor | None]:
    """Every continuous prompt the chat model prefixes to the LM input (``None``: a row without one)."""
    calls: list[torch.Tensor | None] = []
    original = generation.prepend_continuous_prompts

    def spy(token_embeds: torch.Tensor, attention_mask: torch.Tensor, prompts: Any, **kwargs: Any) -> Any:
        calls.extend(None if p is None else p.detach().clone() for p in prompts)
        return original(token_embeds, attention_mask, prompts, **kwargs)

    monkeypatch.setattr(generation, "prepend_continuous_prompts", spy)
    return calls


def _stored(view: RecipeKnowledgeStore) -> dict[str, tuple[str, dict[str, Any], torch.Tensor]]:
    """Each edit of the view's tenant: statement, metadata and stored continuous prompt."""
    return {
        p.payload["edit_id"]: (p.payload["statement"], p.payload["metadata"], view._prompt_of(p))
        for p in view._retrieve_points(IDS, with_vectors=True)
    }


def _snapshot(view: RecipeKnowledgeStore) -> list[tuple[Any, ...]]:
    """Everything about a tenant's edits that a write could change, prompts included."""
    return sorted(
        (e.edit_id, e.statement, e.updated_at, tuple(e.metadata.items()), view._prompt_of(p).tolist())
        for e, p in zip(view.get_edits(IDS), view._retrieve_points(IDS, with_vectors=True), strict=True)
    )


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_every_reader_sees_only_its_tenant_under_an_accept_all_gate(
    store: RecipeKnowledgeStore,
    tenant: str,
    force_gate: Callable[..., torch.Tensor],
    injected: list[torch.Tensor | None],
) -> None:
    view, other = store.for_tenant(tenant), store.for_tenant("globex" if tenant == "acme" else "acme")
    mine, theirs = _stored(view), _stored(other)
    assert set(mine) == set(theirs) == set(IDS)  # the same ids in both tenants
    assert all(not torch.equal(mine[i][2], theirs[i][2]) for i in IDS)  # but different prompts
    force_gate(store, accept=QUERIES)

    # The store: ungated top-k, gated, batched.
    for query in QUERIES:
        found = view.search(query, k=10)
        assert {(e.tenant, e.edit_id, e.statement) for e in found} == {(tenant, i, mine[i][0]) for i in IDS}
        assert all(torch.equal(e.prompt, mine[e.edit_id][2]) for e in found)
    accepted = view.retrieve_prompts(QUERIES)
    assert all(e is not None and e.tenant == tenant and torch.equal(e.prompt, mine[e.edit_id][2]) for e in accepted)

    # The retriever, gated and ungated, sync and batched.
    gated, ungated = SentinelRetriever(store=view), SentinelRetriever(store=view, k=10, gated=False)
    for edit, documents in zip(accepted, gated.batch(QUERIES), strict=True):
        assert [(d.id, d.page_content, d.metadata["owner"]) for d in documents] == [
            (edit.edit_id, edit.statement, tenant)
        ]
    for documents in ungated.batch(QUERIES):
        assert {(d.id, d.page_content, d.metadata["owner"]) for d in documents} == {
            (i, mine[i][0], tenant) for i in IDS
        }

    # The chat model: the edit it names and the continuous prompt it injects are this tenant's.
    llm = RecipeChatModel(knowledge_store=view, max_tokens=MAX_TOKENS)
    replies = [llm.invoke(query) for query in QUERIES] + llm.batch(QUERIES)
    assert len(injected) == 2 * len(QUERIES)
    for reply, prompt, edit in zip(replies, injected, accepted * 2, strict=True):
        assert reply.response_metadata["edit"]["edit_id"] == edit.edit_id
        assert reply.response_metadata["edit"]["statement"] == mine[edit.edit_id][0]
        assert prompt is not None and torch.equal(prompt, mine[edit.edit_id][2])
        assert not any(torch.equal(prompt, theirs[i][2]) for i in IDS)


def test_a_tenant_without_edits_gets_nothing_even_when_the_gate_accepts_everything(
    store: RecipeKnowledgeStore,
    force_gate: Callable[..., torch.Tensor],
    injected: list[torch.Tensor | None],
    base_model: HuggingFaceBaseModel,
) -> None:
    empty = store.for_tenant("empty")
    force_gate(store, accept=QUERIES)

    assert [empty.search(q, k=10) for q in QUERIES] == [[] for _ in QUERIES]
    assert empty.retrieve_prompts(QUERIES) == [None] * len(QUERIES)
    assert SentinelRetriever(store=empty, k=10, gated=False).batch(QUERIES) == [[] for _ in QUERIES]
    llm = RecipeChatModel(knowledge_store=empty, max_tokens=MAX_TOKENS)
    bare = RecipeChatModel(knowledge_store=None, max_tokens=MAX_TOKENS)
    bare._base_model = base_model
    replies = llm.batch(QUERIES)
    assert all(r.response_metadata["edit"] is None for r in replies)
    assert all(p is None for p in injected)  # the batched rows got no continuous prompt
    assert [r.content for r in replies] == [bare.invoke(q).content for q in QUERIES]
    assert "No facts are stored yet." == RecipeToolkit(store=empty).get_tools()[3].invoke({"subject": "Acme"})


def test_the_tools_of_one_tenant_cannot_read_change_or_delete_anothers_edits(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
    add, update, forget, lookup = RecipeToolkit(store=acme).get_tools()
    globex.add_knowledge(["Globex sells hammocks."], ids=["globex-only"])
    force_gate(store, accept=QUERIES)
    before = _snapshot(globex)
    globex_only = globex.get_edits(["globex-only"])

    # Read: lookup lists acme's statements only, whatever the question.
    for query in QUERIES:
        answer = lookup.invoke({"subject": query, "k": 20})
        assert all(s in answer for s in STATEMENTS)
        assert not any(s in answer for s in [*GLOBEX_STATEMENTS, "Globex sells hammocks."])
        assert "globex-only" not in answer

    # Change and delete with globex's own fact id: refused as unknown, globex untouched.
    assert update.invoke({"fact_id": "globex-only", "statement": "Globex sells nothing."}).startswith("Error: no fact")
    assert forget.invoke({"fact_id": "globex-only"}).startswith("Error: no fact")
    # Ids both tenants hold: acme's tools change acme's edit only.
    assert update.invoke(
        {"fact_id": "acme", "statement": "The chief executive of Acme Corporation is Grace Hopper."}
    ).startswith("Updated")
    assert forget.invoke({"fact_id": "zephyr"}).startswith("Forgot")
    # Adding under an id only globex holds makes a separate acme edit.
    assert add.invoke({"statement": "Acme sells anvils.", "fact_id": "globex-only"}).startswith("Added")

    assert _snapshot(globex) == before
    assert globex.get_edits(["globex-only"]) == globex_only
    assert [e.statement for e in acme.get_edits(["acme", "zephyr", "globex-only"])] == [
        "The chief executive of Acme Corporation is Grace Hopper.",
        "Acme sells anvils.",
    ]


def test_an_edit_id_spelled_like_another_tenants_point_name_stays_in_its_tenant(store: RecipeKnowledgeStore) -> None:
    # Other tenants' point ids are UUID v5 of '["tenant", "edit_id"]'; a default-tenant id spelled
    # that way gets its own point (edit_point_id), so it can neither read nor overwrite acme's edit.
    acme = store.for_tenant("acme")
    before = _snapshot(acme)
    crafted = '["acme", "acme"]'
    store.add_knowledge(["Hijacked."], ids=[crafted])
    answer = (
        RecipeToolkit(store=store)
        .get_tools()[0]
        .invoke({"statement": "Hijacked again.", "fact_id": '["acme", "zephyr"]'})
    )
    assert answer.startswith("Added fact")
    assert _snapshot(acme) == before
    assert sorted(e.edit_id for e in store.list_edits()) == sorted([crafted, '["acme", "zephyr"]'])

    # The other way round: the default tenant wrote the crafted id first.
    store.add_knowledge(["Default fact."], ids=['["zeta", "x"]'])
    store.for_tenant("zeta").add_knowledge(["Zeta fact."], ids=["x"])
    assert store.get_by_ids(['["zeta", "x"]'])[0].page_content == "Default fact."
    assert [e.statement for e in store.for_tenant("zeta").list_edits()] == ["Zeta fact."]


def test_a_point_that_holds_another_tenants_edit_is_never_overwritten(store: RecipeKnowledgeStore) -> None:
    """Integrity guard: should a point id ever hold another tenant's edit (a store written by
    another program, or an older mapping), a write to that id is refused, and says nothing of it."""
    from langchain_recipe.knowledge_store._schema import edit_point_id

    acme = store.for_tenant("acme")
    (point,) = acme._retrieve_points(["acme"], with_vectors=True)
    foreign = point.model_copy(update={"id": edit_point_id("planted")})  # acme's edit at default's point for "planted"
    store.client.upsert(store.collection_name, points=[foreign])
    with pytest.raises(InvalidInputError, match="reserved in tenant 'default'") as raised:
        store.add_knowledge(["Overwrite it."], ids=["planted"])
    assert "Ada Lovelace" not in str(raised.value)  # the message does not leak acme's edit
    (kept,) = store.client.retrieve(store.collection_name, [edit_point_id("planted")], with_payload=True)
    assert kept.payload["tenant"] == "acme" and kept.payload["statement"] == point.payload["statement"]


def test_a_chat_model_per_tenant_on_one_store_answers_each_with_its_own_edit(
    store: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor], injected: list[torch.Tensor | None]
) -> None:
    force_gate(store, accept=QUERIES)
    views = {t: store.for_tenant(t) for t in ("acme", "globex")}
    stored = {t: _stored(v) for t, v in views.items()}
    models = {t: RecipeChatModel(knowledge_store=v, max_tokens=MAX_TOKENS) for t, v in views.items()}
    order = [(t, q) for q in QUERIES for t in views]  # interleaved tenants on one LM
    for tenant, query in order:
        reply = models[tenant].invoke([HumanMessage(query)])
        edit_id = reply.response_metadata["edit"]["edit_id"]
        assert reply.response_metadata["edit"]["statement"] == stored[tenant][edit_id][0]
        assert torch.equal(injected[-1], stored[tenant][edit_id][2])
