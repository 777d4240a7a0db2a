"""The LangChain contract of the store, the retriever and the agent tools (issue 17, items 6-10 and 14).

Each test failed on the code before its fix: copying and pickling a store, a JSONL round trip
with Unicode line breaks, metadata keys with ``.``, a space or ``:``, integers beyond 64 bits,
tool arguments sent as one JSON string, and ``as_retriever()`` without the knowledge sentinel.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from facts import IDS, QUERY, STATEMENTS, store_snapshot
from langchain_core.messages import ToolMessage
from langchain_core.vectorstores import VectorStoreRetriever
from qdrant_client import models
from qdrant_modes import MODES, open_store, qdrant_server_url, store_location  # noqa: F401  (fixture import)

from langchain_recipe.base_models import HuggingFaceBaseModel
from langchain_recipe.errors import InvalidInputError, StoreError
from langchain_recipe.knowledge_store import RecipeKnowledgeStore
from langchain_recipe.nn import RecipeModel
from langchain_recipe.retrievers import SentinelRetriever
from langchain_recipe.tools import RecipeToolkit

# The tiny random RecipeModel's gate accepts arbitrary pairs, so adds often "conflict".
pytestmark = pytest.mark.filterwarnings("ignore::langchain_recipe.errors.EditConflictWarning")

EMBEDDED_MODES = [mode for mode in MODES if mode.id != "server"]


@pytest.fixture(params=MODES)
def any_store(
    request: pytest.FixtureRequest, recipe_model: RecipeModel, base_model: HuggingFaceBaseModel, tmp_path: Path
) -> Any:
    """An empty store over the tiny models in each Qdrant mode."""
    yield from open_store(request.param, request, tmp_path, recipe_model, base_model)


@pytest.fixture
def filled(knowledge_store: RecipeKnowledgeStore) -> RecipeKnowledgeStore:
    knowledge_store.add_knowledge(STATEMENTS, metadatas=[{"n": i} for i in range(len(IDS))], ids=IDS)
    return knowledge_store


# ---------------------------------------------------------------------- 6. copying and pickling
def test_a_deep_copy_of_a_store_is_another_handle_on_the_same_edits(filled: RecipeKnowledgeStore) -> None:
    acme = filled.for_tenant("acme")
    copied = copy.deepcopy(filled)
    copied_view = copy.deepcopy(acme)
    retriever = SentinelRetriever(store=acme, k=2).model_copy(deep=True)

    assert copied is not filled
    assert copied.client is filled.client  # one engine, one folder lock, one set of models
    assert copied.recipe_model is filled.recipe_model
    assert copied.base_model is filled.base_model
    assert copied.tenant == "default"
    assert copied_view.tenant == "acme"
    assert retriever.store.tenant == "acme"
    assert retriever.store.client is filled.client
    copied.add_knowledge(["The Orion Bridge spans the river Vell."], ids=["orion"])
    assert [d.id for d in filled.get_by_ids(["orion"])] == ["orion"]
    copied_view.add_knowledge(["Tala Ren owns a red kayak."], ids=["tala"])
    assert [d.id for d in acme.get_by_ids(["tala"])] == ["tala"]
    assert filled.get_by_ids(["tala"]) == []


def test_pickling_a_store_raises_a_clear_error_that_names_the_alternatives(filled: RecipeKnowledgeStore) -> None:
    holders = [filled, filled.for_tenant("acme"), SentinelRetriever(store=filled), RecipeToolkit(store=filled)]
    for holder in holders:
        with pytest.raises(StoreError, match=r"cannot be pickled.*export_jsonl.*for_tenant") as caught:
            pickle.dumps(holder)
        assert isinstance(caught.value, TypeError)  # what pickle's callers catch
    assert len(filled) == len(IDS)
    assert copy.copy(filled).client is filled.client


# ---------------------------------------------------------------------- 7. JSONL round trip
LINE_BREAKS = "\u2028\u2029\u0085\r\x0b\x0c\x1c"
"""Characters ``str.splitlines`` splits on, besides ``\\n``."""


def _odd_records() -> tuple[list[str], list[dict[str, Any]], list[str]]:
    statements = [
        "The Orion Bridge\u2028spans the river Vell.",
        "Tala Ren\u2029owns a red kayak.",
        "Ines Calloway\u0085plays the oboe.",
        "Bram Oduya\rbuilt the Kestrel Mill.",
    ]
    metadatas = [{"note": f"a{ch}b", f"k{ch}": ch} for ch in "\u2028\u2029\u0085\r"]
    ids = [f"id{ch}{n}" for n, ch in enumerate(LINE_BREAKS[:4])]
    return statements, metadatas, ids


@pytest.mark.parametrize("target", ["file", "stream"])
def test_an_export_with_unicode_line_breaks_imports_again(
    target: str, knowledge_store: RecipeKnowledgeStore, tmp_path: Path
) -> None:
    statements, metadatas, ids = _odd_records()
    knowledge_store.add_knowledge(statements, metadatas, ids, source="s\u2028rc")
    before = sorted((e.edit_id, e.statement, json.dumps(e.metadata), e.source) for e in knowledge_store.list_edits())
    destination: Any = tmp_path / "edits.jsonl" if target == "file" else io.StringIO()

    assert knowledge_store.export_jsonl(destination) == len(ids)
    text = destination.read_text(encoding="utf-8") if target == "file" else destination.getvalue()
    assert len(text.splitlines()) == len(ids)  # any line reader sees one record per line
    knowledge_store.delete(filter={})
    if target == "stream":
        destination.seek(0)
    assert sorted(knowledge_store.import_jsonl(destination)) == sorted(ids)

    after = sorted((e.edit_id, e.statement, json.dumps(e.metadata), e.source) for e in knowledge_store.list_edits())
    assert after == before


@pytest.mark.parametrize("target", ["file", "stream"])
def test_an_export_written_with_raw_line_separators_and_crlf_imports(
    target: str, knowledge_store: RecipeKnowledgeStore, tmp_path: Path
) -> None:
    """Files written by earlier versions hold U+2028, U+2029 and U+0085 raw; Windows ends lines with CRLF."""
    records = [
        {"id": "orion", "statement": "The Orion Bridge\u2028spans the river Vell.", "metadata": {"k": "\u0085"}},
        {"id": "tala", "statement": "Tala Ren\u2029owns a red kayak."},
    ]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in records)
    if target == "file":
        source: Any = tmp_path / "old.jsonl"
        source.write_bytes(text.encode("utf-8"))
    else:
        source = io.StringIO(text, newline="")

    assert knowledge_store.import_jsonl(source) == ["orion", "tala"]
    assert [e.statement for e in knowledge_store.get_edits(["orion", "tala"])] == [r["statement"] for r in records]
    assert knowledge_store.get_edits(["orion"])[0].metadata == {"k": "\u0085"}


# ---------------------------------------------------------------------- 8. metadata keys that are not names
ODD_KEYS = ["user.id", "my key", "a:b", "x[0]", "ü-ñ", ""]


def test_metadata_keys_with_dots_spaces_and_colons_filter_and_delete(any_store: RecipeKnowledgeStore) -> None:
    any_store.add_knowledge(
        STATEMENTS,
        metadatas=[
            {key: "u1" for key in ODD_KEYS},
            {"user": {"id": "u1"}},  # a nested key is not the key "user.id"
            {key: "u2" for key in ODD_KEYS},
            {"plain": "u1"},
        ],
        ids=IDS,
    )
    for key in ODD_KEYS:
        assert [d.id for d in any_store.list(filter={key: "u1"})] == ["acme"], key
        assert any_store.count(filter={key: ["u1", "u2"]}) == 2, key
        found = any_store.search(QUERY, k=4, filter={key: "u2"})
        assert [e.edit_id for e in found] == ["oskar"], key
    assert [d.id for d in any_store.list(filter={"plain": "u1"})] == ["mira"]

    assert any_store.delete(filter={"user.id": "u1"}) == 1
    assert sorted(d.id for d in any_store.list()) == ["mira", "oskar", "zephyr"]


def test_a_filter_on_a_key_qdrant_cannot_name_is_refused_and_the_edit_kept(any_store: RecipeKnowledgeStore) -> None:
    metadata = {'say "hi"': 1, "back\\slash": 2}
    any_store.add_knowledge([STATEMENTS[0]], [metadata], ids=["acme"])

    for key in metadata:
        with pytest.raises(InvalidInputError, match="cannot filter on the metadata key"):
            any_store.list(filter={key: 1})
        with pytest.raises(InvalidInputError, match="cannot filter on the metadata key"):
            any_store.delete(filter={key: 1})
    assert any_store.get_edits(["acme"])[0].metadata == metadata


# ---------------------------------------------------------------------- 9. integers beyond 64 bits
I64 = (-(2**63), 2**63 - 1)
BIG_INTEGER_CALLS: dict[str, Callable[[RecipeKnowledgeStore], Any]] = {
    "add 2**64": lambda s: s.add_knowledge(["One."], [{"n": 2**64}]),
    "add 2**63": lambda s: s.add_knowledge(["One."], [{"n": 2**63}]),
    "add -2**63-1": lambda s: s.add_knowledge(["One."], [{"n": -(2**63) - 1}]),
    "add nested 10**30": lambda s: s.add_knowledge(["One."], [{"a": [{"b": 10**30}]}]),
    "update 2**64": lambda s: s.update_knowledge("acme", "New.", metadata={"n": 2**64}),
    "overwrite 2**64": lambda s: s.add_knowledge(["New."], [{"n": 2**64}], ids=["acme"]),
    "filter 2**64": lambda s: s.list(filter={"n": 2**64}),
    "filter any 2**63": lambda s: s.count(filter={"n": [1, 2**63]}),
    "search filter 10**30": lambda s: s.search("Who?", filter={"n": 10**30}),
    "delete filter 2**64": lambda s: s.delete(filter={"n": 2**64}),
    "qdrant filter 2**64": lambda s: s.list(
        filter=models.Filter(must=[models.FieldCondition(key="metadata.n", match=models.MatchValue(value=2**64))])
    ),
}


@pytest.mark.parametrize("call", BIG_INTEGER_CALLS.values(), ids=BIG_INTEGER_CALLS.keys())
def test_integers_beyond_64_bits_are_refused_and_nothing_changes(
    any_store: RecipeKnowledgeStore, call: Callable[[RecipeKnowledgeStore], Any]
) -> None:
    any_store.add_knowledge(STATEMENTS, metadatas=[{"n": I64[0]}, {"n": I64[1]}, {"n": 0}, {"n": 1}], ids=IDS)
    before = store_snapshot(any_store)

    with pytest.raises(InvalidInputError, match="64-bit"):
        call(any_store)

    assert store_snapshot(any_store) == before


def test_the_64_bit_bounds_round_trip_exactly_and_filter(any_store: RecipeKnowledgeStore) -> None:
    any_store.add_knowledge(STATEMENTS[:2], metadatas=[{"n": I64[0]}, {"n": I64[1]}], ids=IDS[:2])

    assert [e.metadata["n"] for e in any_store.get_edits(IDS[:2])] == list(I64)
    assert all(type(e.metadata["n"]) is int for e in any_store.get_edits(IDS[:2]))
    assert [d.id for d in any_store.list(filter={"n": I64[1]})] == [IDS[1]]


def test_an_import_with_an_integer_beyond_64_bits_writes_nothing(
    knowledge_store: RecipeKnowledgeStore, tmp_path: Path
) -> None:
    path = tmp_path / "big.jsonl"
    lines = [{"id": "a", "statement": STATEMENTS[0]}, {"id": "b", "statement": STATEMENTS[1], "metadata": {"n": 2**64}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")

    with pytest.raises(InvalidInputError, match="64-bit"):
        knowledge_store.import_jsonl(path)
    assert len(knowledge_store) == 0


# ---------------------------------------------------------------------- 10. tool arguments as one JSON string
@pytest.fixture
def tools(filled: RecipeKnowledgeStore) -> dict[str, Any]:
    return {tool.name: tool for tool in RecipeToolkit(store=filled).get_tools()}


NEW = "The Orion Bridge spans the river Vell."
JSON_CALLS = {
    "add_fact": {"statement": NEW, "fact_id": "orion"},
    "update_fact": {"fact_id": "acme", "statement": NEW},
    "forget_fact": {"fact_id": "mira"},
    "lookup_facts": {"subject": QUERY, "k": 2},
}


def _check_json_call(name: str, answer: str, store: RecipeKnowledgeStore) -> None:
    if name == "add_fact":
        assert answer == f"Added fact 'orion': {NEW}"
        assert store.get_edits(["orion"])[0].statement == NEW
    elif name == "update_fact":
        assert answer.startswith("Updated fact 'acme'")
        assert store.get_edits(["acme"])[0].statement == NEW
    elif name == "forget_fact":
        assert answer == f"Forgot fact 'mira': {STATEMENTS[3]}"
        assert store.get_edits(["mira"]) == []
    else:
        assert answer.startswith("Stored facts closest to") and answer.count("\n- ") == 2


@pytest.mark.parametrize("form", ["tool call", "string", "tool call async", "under one key"])
@pytest.mark.parametrize("name", JSON_CALLS)
async def test_tools_take_their_arguments_as_one_json_string(
    name: str, form: str, tools: dict[str, Any], filled: RecipeKnowledgeStore
) -> None:
    arguments = json.dumps(JSON_CALLS[name])
    if form == "string":
        answer = tools[name].invoke(arguments)
    else:
        args = {"__arg1": arguments} if form == "under one key" else arguments
        call = {"type": "tool_call", "id": "call-1", "name": name, "args": args}
        message = await tools[name].ainvoke(call) if form.endswith("async") else tools[name].invoke(call)
        assert isinstance(message, ToolMessage)
        assert message.tool_call_id == "call-1"
        assert message.status == "success", message.content
        answer = message.content
    _check_json_call(name, answer, filled)


@pytest.mark.parametrize("form", ["string", "tool call"])
def test_a_quoted_statement_is_stored_without_its_quotes(
    form: str, tools: dict[str, Any], filled: RecipeKnowledgeStore
) -> None:
    """A local model that sends its one argument as a JSON string literal means the text inside."""
    quoted = json.dumps(NEW)
    if form == "string":
        answer = tools["add_fact"].invoke(quoted)
    else:
        call = {"type": "tool_call", "id": "c", "name": "add_fact", "args": {"__arg1": quoted}}
        answer = tools["add_fact"].invoke(call).content
    assert answer.endswith(f": {NEW}"), answer
    assert NEW in [edit.statement for edit in filled.list_edits()]
    assert not any(edit.statement.startswith('"') for edit in filled.list_edits())


BAD_ARGUMENTS = {
    "broken JSON": ("add_fact", '{"statement": "The Orion Bridge spans', "not valid JSON"),
    "JSON without the statement": ("update_fact", '{"fact_id": "acme"}', "statement: Field required"),
    "plain text for two fields": ("update_fact", "acme", "statement: Field required"),
    "JSON list": ("forget_fact", '["mira"]', "not a JSON object"),
    "wrong field name": ("add_fact", '{"fact": "The Orion Bridge spans the river Vell."}', "Field required"),
}


@pytest.mark.parametrize("form", ["tool call", "string"])
@pytest.mark.parametrize("case", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_tool_arguments_that_do_not_fit_get_a_message_naming_what_was_received(
    case: tuple[str, str, str], form: str, tools: dict[str, Any], filled: RecipeKnowledgeStore
) -> None:
    name, arguments, problem = case
    before = store_snapshot(filled)
    if form == "string":
        answer = tools[name].invoke(arguments)
    else:
        message = tools[name].invoke({"type": "tool_call", "id": "c", "name": name, "args": arguments})
        assert isinstance(message, ToolMessage) and message.status == "error"
        answer = message.content

    assert answer.startswith("Error: invalid input"), answer
    assert problem in answer
    assert f"received {arguments[:20]}" in answer or f"received {arguments!r}"[:30] in answer, answer
    assert store_snapshot(filled) == before


# ---------------------------------------------------------------------- 14. as_retriever and the sentinel
def test_as_retriever_applies_the_knowledge_sentinel_by_default(
    filled: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    unrelated = "What is the boiling point of water in Celsius?"
    force_gate(filled, accept=[QUERY], reject=[unrelated])

    retriever = filled.as_retriever(search_kwargs={"k": 3})
    ungated = filled.as_retriever(search_kwargs={"k": 3, "gated": False})

    assert isinstance(retriever, VectorStoreRetriever)
    assert retriever.invoke(unrelated) == []
    assert len(ungated.invoke(unrelated)) == 3
    assert len(retriever.invoke(QUERY)) == 3
    assert len(retriever.invoke(QUERY, k=1)) == 1
    assert filled.as_retriever().invoke(unrelated) == []
    assert filled.as_retriever(search_kwargs={"filter": {"n": 2}}).invoke(unrelated) == []


async def test_as_retriever_is_gated_in_async_too(
    filled: RecipeKnowledgeStore, force_gate: Callable[..., torch.Tensor]
) -> None:
    unrelated = "What is the boiling point of water in Celsius?"
    force_gate(filled, reject=[unrelated])

    assert await filled.as_retriever().ainvoke(unrelated) == []
    assert len(await filled.as_retriever(search_kwargs={"gated": False, "k": 2}).ainvoke(unrelated)) == 2
